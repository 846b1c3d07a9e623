"""Features derived from one raw hourly record, and the scikit-learn transformer that applies them.

The transformer is the first stage of every logged model, so training, evaluation and serving all
compute features with this same code. It reads only the columns below: `instant`, `casual` and
`registered` (which leak the target) never reach a model.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
from pandas.tseries.holiday import USFederalHolidayCalendar
from sklearn.base import BaseEstimator, TransformerMixin

HOLIDAY_HORIZON_DAYS = 14  # farther than this from a holiday counts as this far

RECORD_FEATURES = {
    "season": "season (1 spring .. 4 winter), as recorded",
    "yr": "year (0: 2011, 1: 2012): the level of demand grew between the years",
    "mnth": "month 1..12",
    "hr": "hour of day 0..23",
    "holiday": "1 on a public holiday",
    "weekday": "day of week (0: Sunday)",
    "workingday": "1 when neither weekend nor holiday",
    "weathersit": "weather situation 1 (clear) .. 4 (heavy rain, snow)",
    "temp": "temperature, normalised by 41 C",
    "atemp": "feeling temperature, normalised by 50 C",
    "hum": "humidity, normalised by 100",
    "windspeed": "wind speed, normalised by 67",
}
DERIVED_FEATURES = {
    "day_of_year": "day of the year from dteday, 1..366",
    "hour_sin": "sin(2 pi hr / 24): hour 23 sits next to hour 0",
    "hour_cos": "cos(2 pi hr / 24)",
    "month_sin": "sin(2 pi (mnth - 1) / 12): December sits next to January",
    "month_cos": "cos(2 pi (mnth - 1) / 12)",
    "hour_of_workday": "hr + 24 * workingday: commuting peaks exist on working days only",
    "days_to_holiday": f"days until the next US federal holiday, at most {HOLIDAY_HORIZON_DAYS}",
    "days_since_holiday": f"days since the last US federal holiday, at most {HOLIDAY_HORIZON_DAYS}",
}
FEATURE_DESCRIPTIONS = RECORD_FEATURES | DERIVED_FEATURES
FEATURE_NAMES = tuple(FEATURE_DESCRIPTIONS)
# Codes rather than quantities: a linear model needs them one-hot encoded.
CATEGORICAL_FEATURES = ("season", "mnth", "hr", "weekday", "weathersit", "hour_of_workday")


def derive_features(records: pd.DataFrame) -> pd.DataFrame:
    """The model's feature matrix for raw hourly records (hour.csv columns; counts not needed)."""
    features = records.loc[:, list(RECORD_FEATURES)].astype("float64")
    dates = pd.to_datetime(records["dteday"])
    features["day_of_year"] = dates.dt.day_of_year.astype("float64")
    hour_angle = 2 * np.pi * features["hr"] / 24
    month_angle = 2 * np.pi * (features["mnth"] - 1) / 12
    features["hour_sin"] = np.sin(hour_angle)
    features["hour_cos"] = np.cos(hour_angle)
    features["month_sin"] = np.sin(month_angle)
    features["month_cos"] = np.cos(month_angle)
    features["hour_of_workday"] = features["hr"] + 24 * features["workingday"]
    features["days_to_holiday"], features["days_since_holiday"] = holiday_distances(dates)
    return features.reset_index(drop=True)


@cache
def federal_holidays() -> np.ndarray:
    """US federal holidays 1990-2100 (a calendar known years ahead), as sorted days."""
    days = USFederalHolidayCalendar().holidays("1990-01-01", "2100-12-31")
    return days.to_numpy().astype("datetime64[D]")


def holiday_distances(dates: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Days to the next and since the last federal holiday (0 on one), capped at HOLIDAY_HORIZON_DAYS."""
    days, holidays = dates.to_numpy().astype("datetime64[D]"), federal_holidays()
    following = holidays[np.minimum(np.searchsorted(holidays, days), len(holidays) - 1)]
    preceding = holidays[np.maximum(np.searchsorted(holidays, days, side="right") - 1, 0)]
    # Outside the calendar's years the nearest holiday lies on the wrong side: count it as far away.
    to_next = np.where(following >= days, (following - days).astype("int64"), HOLIDAY_HORIZON_DAYS)
    since_last = np.where(preceding <= days, (days - preceding).astype("int64"), HOLIDAY_HORIZON_DAYS)
    return tuple(np.minimum(gap, HOLIDAY_HORIZON_DAYS).astype("float64") for gap in (to_next, since_last))


def describe_features(train: pd.DataFrame) -> dict[str, dict[str, object]]:
    """How each feature is made and its range on the training rows."""
    matrix = derive_features(train)
    return {
        name: {"description": text, "min": float(matrix[name].min()), "max": float(matrix[name].max())}
        for name, text in FEATURE_DESCRIPTIONS.items()
    }


class HourlyFeatures(TransformerMixin, BaseEstimator):
    """Stateless transformer: raw hourly records in, `derive_features` out."""

    def fit(self, records: pd.DataFrame, target: object = None) -> HourlyFeatures:
        return self

    def transform(self, records: pd.DataFrame) -> pd.DataFrame:
        return derive_features(records)

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        return np.asarray(FEATURE_NAMES, dtype=object)
