"""Which rows train the model and which test it (pure: a table in, two tables out).

time: the last `test_days` calendar days of the data are the test rows.
kaggle: days 20 and later of each month are the test rows, as in Kaggle's "Bike Sharing Demand".
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from demand.errors import PipelineError, quoted

SPLITS = ("time", "kaggle")
KAGGLE_LAST_TRAIN_DAY = 19  # Kaggle "Bike Sharing Demand": days 1-19 of each month train, 20+ test

DAY_RANGE = re.compile(r"\d{4}-\d{2}-\d{2}\.\.\d{4}-\d{2}-\d{2}")


def split_table(table: pd.DataFrame, split: str, test_days: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train and test rows. `time` holds out the last `test_days` calendar days of the data."""
    if split == "kaggle":
        is_test = table["dteday"].dt.day > KAGGLE_LAST_TRAIN_DAY
    else:
        days = table["dteday"].nunique()
        if test_days >= days:
            raise PipelineError(
                f"parameter test_days={test_days} leaves no training rows: the table spans {days} days"
            )
        first_test_day = table["dteday"].max() - pd.Timedelta(days=test_days - 1)
        is_test = table["dteday"] >= first_test_day
    train, test = table[~is_test].reset_index(drop=True), table[is_test].reset_index(drop=True)
    if train.empty or test.empty:
        side = "training" if train.empty else "test"
        raise PipelineError(f"split={split} leaves no {side} rows in this data; choose the other split")
    return train, test


def describe_split(train: pd.DataFrame, test: pd.DataFrame) -> dict[str, str]:
    """The first and last day of each side, e.g. {"train_period": "2011-01-01..2012-09-30", ...}."""

    def span(frame: pd.DataFrame) -> str:
        return f"{frame['dteday'].min().date()}..{frame['dteday'].max().date()}"

    return {"train_period": span(train), "test_period": span(test)}


def day_ranges(days: pd.Series) -> str:
    """The calendar days present, as runs of consecutive days: '2011-01-01..2011-01-19,2011-02-01..'."""
    unique = pd.DatetimeIndex(pd.to_datetime(days).dt.normalize().unique()).sort_values()
    if unique.empty:
        return ""
    breaks = np.flatnonzero((unique[1:] - unique[:-1]) != pd.Timedelta(days=1))
    starts, ends = unique[np.r_[0, breaks + 1]], unique[np.r_[breaks, len(unique) - 1]]
    return ",".join(f"{start.date()}..{end.date()}" for start, end in zip(starts, ends, strict=True))


def in_day_ranges(days: pd.Series, ranges: str) -> np.ndarray:
    """For each of `days`, whether it lies in one of `ranges` (as day_ranges writes them); a PipelineError
    when `ranges` is not in that form."""
    dates = pd.to_datetime(days).dt.normalize().to_numpy()
    inside = np.zeros(len(dates), dtype=bool)
    for span in filter(None, ranges.split(",")):
        if not DAY_RANGE.fullmatch(span):
            raise PipelineError(f"{quoted(span)} is not a range of days YYYY-MM-DD..YYYY-MM-DD")
        start, _, end = span.partition("..")
        try:
            inside |= (dates >= np.datetime64(start)) & (dates <= np.datetime64(end))
        except ValueError:  # 2012-02-31
            raise PipelineError(f"{quoted(span)} names a day that does not exist") from None
    return inside
