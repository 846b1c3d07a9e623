"""Hours missing from the series are counted and said, never filled or passed over in silence."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from demand.hourly import describe_gaps, describe_table, missing_hours
from demand.hourly import hourly_table as hourly_table_from_bytes
from demand.schema import parse_hourly
from plumbing.data_source import read_hourly
from tests.synthetic import hourly_table


def typed(frame: pd.DataFrame) -> pd.DataFrame:
    return parse_hourly(frame.astype(str), "hour.csv")


def test_a_complete_series_misses_nothing() -> None:
    table = typed(hourly_table(days=3))
    assert len(missing_hours(table)) == 0
    assert describe_table(table)["missing_hours"] == 0


@pytest.mark.parametrize(
    ("drop", "count", "longest", "start"),
    [
        (lambda t: t.iloc[::2], 35, 1, "2012-06-01 01:00"),  # every second hour, up to 22:00 on day 3
        (lambda t: t.drop(index=range(30, 40)), 10, 10, "2012-06-02 06:00"),
        (lambda t: t.drop(index=[5, 50, 51]), 3, 2, "2012-06-03 02:00"),
    ],
)
def test_gaps_are_counted_with_their_longest_stretch(drop, count: int, longest: int, start: str) -> None:
    table = typed(drop(hourly_table(days=3)))
    missing = missing_hours(table)
    assert len(missing) == count
    assert describe_table(table)["missing_hours"] == count
    assert describe_gaps(missing, len(table), "hour.csv") == (
        f"hour.csv: {count} of {len(table) + count} hours have no row, "
        f"the longest stretch {longest} hour(s) from {start}; they are left out, not filled"
    )


def test_hours_outside_the_first_and_last_are_not_gaps() -> None:
    table = typed(hourly_table(days=3).iloc[5:-5])
    assert len(missing_hours(table)) == 0


@pytest.mark.real_data
def test_the_uci_file_lacks_165_hours_the_longest_during_hurricane_sandy(real_data: Path) -> None:
    hourly = read_hourly(str(real_data), None, Path("unused"), timeout_seconds=1)
    table = hourly_table_from_bytes(hourly.content, "hour.csv")
    missing = missing_hours(table)
    assert describe_gaps(missing, len(table), "hour.csv") == (
        "hour.csv: 165 of 17544 hours have no row, the longest stretch 36 hour(s) from 2012-10-29 01:00; "
        "they are left out, not filled"
    )
