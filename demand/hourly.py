"""From the bytes of a UCI download to the validated table: hour.csv found in the zip (or the bytes are
hour.csv itself), read as text cells, checked against the contract (demand/schema.py). No I/O: where the
bytes come from is plumbing/data_source.py's business."""

from __future__ import annotations

import io
import zipfile
from pathlib import PurePosixPath

import pandas as pd

from demand.csv_text import read_csv_text
from demand.errors import PipelineError, shown_path
from demand.schema import TARGET, parse_hourly

HOURLY_FILE = "hour.csv"
ZIP_MAGIC = b"PK\x03\x04"


def hourly_csv(data: bytes, label: str) -> tuple[bytes, str]:
    """The bytes of hour.csv in `data` (a UCI zip, or hour.csv itself) and how to name them."""
    if not data.startswith(ZIP_MAGIC):
        return data, label
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = [m for m in archive.namelist() if PurePosixPath(m).name == HOURLY_FILE]
            if not members:
                raise PipelineError(f"{label} holds no {HOURLY_FILE}; expected the UCI Bike Sharing zip")
            return archive.read(members[0]), f"{label}!{shown_path(members[0])}"
    except zipfile.BadZipFile:
        raise PipelineError(f"{label} is not a readable zip; expected the UCI Bike Sharing zip") from None


def hourly_table(content: bytes, label: str) -> pd.DataFrame:
    """The validated, typed, time-ordered table from the raw bytes of hour.csv."""
    return parse_hourly(read_csv_text(content, label), label)


def describe_table(table: pd.DataFrame) -> dict[str, float]:
    return {
        "rows": len(table),
        "days": table["dteday"].nunique(),
        "cnt_total": float(table[TARGET].sum()),
        "missing_hours": len(missing_hours(table)),
    }


def missing_hours(table: pd.DataFrame) -> pd.DatetimeIndex:
    """The hours between the table's first and last that have no row (the UCI file itself lacks 165)."""
    stamps = pd.DatetimeIndex(table["dteday"] + pd.to_timedelta(table["hr"], unit="h"))
    return pd.date_range(stamps.min(), stamps.max(), freq="h").difference(stamps)


def describe_gaps(missing: pd.DatetimeIndex, rows: int, label: str) -> str:
    """One line on the hours a table lacks: how many, and the longest stretch."""
    stretches = pd.Series(missing).diff().ne(pd.Timedelta(hours=1)).cumsum()
    lengths = stretches.value_counts()
    start = missing[int((stretches == lengths.idxmax()).to_numpy().argmax())]
    return (
        f"{label}: {len(missing)} of {rows + len(missing)} hours have no row, the longest stretch "
        f"{lengths.max()} hour(s) from {start:%Y-%m-%d %H:00}; they are left out, not filled"
    )
