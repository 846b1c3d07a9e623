"""Splits: the time split holds out the last days, the Kaggle split days 20 and later."""

from __future__ import annotations

import pandas as pd
import pytest

from demand.errors import PipelineError
from demand.features import FEATURE_NAMES, describe_features
from demand.schema import parse_hourly
from demand.split import split_table
from tests.synthetic import hourly_table


@pytest.fixture
def table() -> pd.DataFrame:
    return parse_hourly(hourly_table(days=62, start="2012-10-31").astype(str), "hour.csv")


def test_time_split_holds_out_the_last_days(table: pd.DataFrame) -> None:
    train, test = split_table(table, "time", 14)
    assert test["dteday"].nunique() == 14
    assert test["dteday"].min() == pd.Timestamp("2012-12-18")
    assert train["dteday"].max() < test["dteday"].min()
    assert len(train) + len(test) == len(table)


def test_kaggle_split_by_day_of_month(table: pd.DataFrame) -> None:
    train, test = split_table(table, "kaggle", 92)
    assert train["dteday"].dt.day.max() == 19
    assert test["dteday"].dt.day.min() == 20
    assert len(train) + len(test) == len(table)


def test_test_window_longer_than_data(table: pd.DataFrame) -> None:
    with pytest.raises(PipelineError, match="test_days=62 leaves no training rows: the table spans 62 days"):
        split_table(table, "time", 62)


def test_feature_description_covers_every_feature(table: pd.DataFrame) -> None:
    description = describe_features(table)
    assert list(description) == list(FEATURE_NAMES)
    assert description["hr"]["min"] == 0 and description["hr"]["max"] == 23


def test_a_split_that_leaves_one_side_empty_is_an_error() -> None:
    early_days = parse_hourly(hourly_table(days=10, start="2012-06-01").astype(str), "hour.csv")  # days 1-10
    with pytest.raises(PipelineError, match="split=kaggle leaves no test rows in this data"):
        split_table(early_days, "kaggle", 92)
