"""Behaviour of the model that ships (Made-With-ML's "behavioural tests"): directions the domain guarantees.

The default model (MLproject's `train` default) is fitted once, with its config.yaml hyperparameters and
target under split=time, on the real UCI training rows. Each test takes real records from the test window,
changes one thing, and compares the model's predictions before and after.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import Pipeline

from demand.hourly import hourly_table
from demand.models import fit
from demand.schema import INTEGER_RANGES, model_inputs, parse_records
from demand.split import split_table
from plumbing import settings
from plumbing.data_source import fetch_data

pytestmark = pytest.mark.real_data

SPLIT = "time"
TEST_DAYS = 92  # MLproject's default: the last quarter of 2012 (Oct 1 .. Dec 31)
HEAVY_RAIN = INTEGER_RANGES["weathersit"][1]  # 4: heavy rain, ice pellets, thunderstorm, snow
DAYTIME = range(8, 20)


@pytest.fixture(scope="module")
def split(real_data: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The real hour.csv's training and test rows under split=time."""
    hourly = fetch_data(str(real_data))
    return split_table(hourly_table(hourly.content, hourly.label), SPLIT, TEST_DAYS)


@pytest.fixture(scope="module")
def model(split: tuple[pd.DataFrame, pd.DataFrame]) -> Pipeline:
    """The shipped configuration, fitted once (a few seconds: xgb, 500 trees, 3 bagged seeds, 2 riders)."""
    name = settings.parameter_defaults("train")["model"]
    hyperparameters, target = settings.model_defaults(name, SPLIT), settings.split_options(SPLIT)["target"]
    return fit(split[0], name, hyperparameters, settings.config()["seed"], target)


@pytest.fixture(scope="module")
def records(split: tuple[pd.DataFrame, pd.DataFrame]) -> pd.DataFrame:
    """The raw test-window records, as a caller of `predict` sends them."""
    return model_inputs(split[1])


def valid(records: pd.DataFrame) -> pd.DataFrame:
    """Changed records still satisfy the hour.csv contract, so the model could be sent them."""
    parse_records(records.astype(str), "changed records")
    return records


def by_day_and_hour(model: Pipeline, records: pd.DataFrame) -> pd.DataFrame:
    """Predictions as a table: one row per day, one column per hour of day."""
    predicted = records.assign(predicted=model.predict(records))
    return predicted.pivot(index="dteday", columns="hr", values="predicted")


def test_heavy_rain_lowers_predicted_demand(model: Pipeline, records: pd.DataFrame) -> None:
    clear = records[records["hr"].isin(DAYTIME) & (records["weathersit"] == 1)]
    assert len(clear) > 200, "the test window should hold many clear daytime hours"
    rain = valid(clear.assign(weathersit=HEAVY_RAIN, hum=np.maximum(clear["hum"], 0.94)))
    before, after = model.predict(clear), model.predict(rain)
    assert after.mean() <= 0.8 * before.mean(), f"mean {before.mean():.0f} -> {after.mean():.0f}"
    assert (after < before).mean() >= 0.9, "heavy rain should lower the forecast for most hours"


def test_eight_oclock_beats_three_oclock_on_every_working_day(model: Pipeline, records: pd.DataFrame) -> None:
    working = records[(records["workingday"] == 1) & records["hr"].isin([3, 8])]
    hours = by_day_and_hour(model, working).dropna()  # a few days lack 03:00 (no rentals were recorded)
    assert len(hours) >= 50, "the test window should hold about 60 working days"
    slower = hours.index[hours[8] <= hours[3]]
    assert slower.empty, f"03:00 forecast at least 08:00 on {[str(day)[:10] for day in slower]}"


def test_a_holiday_looks_like_a_weekend(model: Pipeline, records: pd.DataFrame) -> None:
    """The same working days made holidays: weekday kept (UCI's holidays fall on weekdays, and the contract
    ties only yr and mnth to the date), workingday 0 as for every holiday in hour.csv."""
    hours = [8, 13, 17, 18]
    working = records[(records["workingday"] == 1) & records["hr"].isin(hours)]
    holiday = valid(working.assign(holiday=1, workingday=0))
    as_working = by_day_and_hour(model, working).dropna()
    as_holiday = by_day_and_hour(model, holiday).dropna()
    assert len(as_working) >= 50 and as_holiday.index.equals(as_working.index)
    for peak in (8, 17, 18):  # the commute peaks fall on (nearly) every day, and clearly on average
        assert (as_holiday[peak] < as_working[peak]).mean() >= 0.95, f"{peak}:00 should fall on a holiday"
        assert as_holiday[peak].mean() <= 0.8 * as_working[peak].mean(), f"{peak}:00 barely falls"
    # The shape moves toward a weekend's: morning commute no longer above the early afternoon.
    working_shape, holiday_shape = as_working[8] / as_working[13], as_holiday[8] / as_holiday[13]
    assert working_shape.median() > 1.5, "a working day's 08:00 should exceed its 13:00"
    assert holiday_shape.median() < 0.8 * working_shape.median()
    assert (holiday_shape < working_shape).all()
    weekend = records[(records["workingday"] == 0) & (records["holiday"] == 0) & records["hr"].isin(hours)]
    weekend_shape = by_day_and_hour(model, weekend).dropna().pipe(lambda day: day[8] / day[13])
    assert abs(holiday_shape.median() - weekend_shape.median()) < abs(
        working_shape.median() - weekend_shape.median()
    ), "a holiday's 08:00/13:00 ratio should be nearer a weekend's than a working day's"
