"""Features: derived from the record alone, never from the counts or the row number."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from demand.features import (
    FEATURE_NAMES,
    HOLIDAY_HORIZON_DAYS,
    HourlyFeatures,
    derive_features,
    holiday_distances,
)
from demand.schema import LEAKY_COLUMNS, MODEL_INPUT_COLUMNS
from tests.synthetic import hourly_table


@pytest.fixture
def records() -> pd.DataFrame:
    return hourly_table(days=2).loc[:, list(MODEL_INPUT_COLUMNS)]


def test_feature_names_in_order(records: pd.DataFrame) -> None:
    assert tuple(derive_features(records).columns) == FEATURE_NAMES


def test_no_leaky_column_is_a_feature() -> None:
    assert not set(LEAKY_COLUMNS) & set(FEATURE_NAMES)
    assert "cnt" not in FEATURE_NAMES


def test_features_ignore_counts_and_row_numbers() -> None:
    table = hourly_table(days=2)
    scrambled = table.assign(instant=table["instant"][::-1].to_numpy(), casual=0, registered=0, cnt=0)
    pd.testing.assert_frame_equal(derive_features(table), derive_features(scrambled))


def test_cyclical_hour_puts_midnight_next_to_23h(records: pd.DataFrame) -> None:
    features = derive_features(records)
    point = features[["hour_sin", "hour_cos"]].to_numpy()
    distance_23_to_0 = np.linalg.norm(point[23] - point[24])
    distance_0_to_12 = np.linalg.norm(point[0] - point[12])
    assert distance_23_to_0 < 0.3 < distance_0_to_12


def test_calendar_features_from_the_date(records: pd.DataFrame) -> None:
    features = derive_features(records)
    assert features.loc[0, "day_of_year"] == pd.Timestamp(records.loc[0, "dteday"]).day_of_year
    working = records["workingday"].to_numpy() == 1
    assert (features["hour_of_workday"][working] >= 24).all()
    assert (features["hour_of_workday"][~working] < 24).all()


def test_transformer_accepts_text_or_datetime_dates(records: pd.DataFrame) -> None:
    as_dates = records.assign(dteday=pd.to_datetime(records["dteday"]))
    transformer = HourlyFeatures().fit(records)
    pd.testing.assert_frame_equal(transformer.transform(records), transformer.transform(as_dates))
    assert list(transformer.get_feature_names_out()) == list(FEATURE_NAMES)


def test_holiday_distances_come_from_the_federal_calendar() -> None:
    dates = pd.Series(pd.to_datetime(["2012-12-24", "2012-12-25", "2012-12-27", "2012-07-01", "1950-06-01"]))
    to_next, since_last = holiday_distances(dates)
    assert list(to_next) == [1, 0, 5, 3, HOLIDAY_HORIZON_DAYS]  # 1950: outside the calendar, far away
    assert list(since_last) == [HOLIDAY_HORIZON_DAYS, 0, 2, HOLIDAY_HORIZON_DAYS, HOLIDAY_HORIZON_DAYS]
