"""The hour.csv contract: its columns, their types, and the value ranges the dataset's Readme documents.

`parse_hourly` turns the raw text of a CSV into a typed, time-ordered table, or raises a PipelineError
naming the file, the column and the first offending lines. `parse_records` checks records for the model
(a batch file, a served request) the same way and keeps their order.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from pandas.api.types import is_float_dtype, is_integer_dtype, is_numeric_dtype

from demand.errors import PipelineError, quoted, shown

TARGET = "cnt"
PREDICTION_COLUMN = "predicted_cnt"  # what the model predicts: its signature's output, predict's column
# `casual + registered == cnt`, and `instant` is a row counter: none of them may ever be a feature.
LEAKY_COLUMNS = ("instant", "casual", "registered")
KEY_COLUMNS = ("dteday", "hr")

# Inclusive ranges; None means unbounded. Integer columns first, in hour.csv order.
INTEGER_RANGES: dict[str, tuple[int | None, int | None]] = {
    "instant": (1, None),
    "season": (1, 4),
    "yr": (0, 1),
    "mnth": (1, 12),
    "hr": (0, 23),
    "holiday": (0, 1),
    "weekday": (0, 6),
    "workingday": (0, 1),
    "weathersit": (1, 4),
    "casual": (0, None),
    "registered": (0, None),
    "cnt": (0, None),
}
LARGEST_WHOLE_NUMBER = 2.0**63  # int64, what a whole-number column is stored as, holds less
# Normalised by the Readme's maxima, so all lie in [0, 1].
FLOAT_RANGES: dict[str, tuple[float, float]] = {
    "temp": (0.0, 1.0),
    "atemp": (0.0, 1.0),
    "hum": (0.0, 1.0),
    "windspeed": (0.0, 1.0),
}
HOURLY_COLUMNS = (
    "instant",
    "dteday",
    "season",
    "yr",
    "mnth",
    "hr",
    "holiday",
    "weekday",
    "workingday",
    "weathersit",
    "temp",
    "atemp",
    "hum",
    "windspeed",
    "casual",
    "registered",
    "cnt",
)
COUNT_COLUMNS = ("casual", "registered", TARGET)
# What the model takes: a raw hourly record without the counts (records that carry them are accepted).
MODEL_INPUT_COLUMNS = tuple(c for c in HOURLY_COLUMNS if c not in COUNT_COLUMNS)
FIRST_YEAR = 2011  # yr == 0
DATE_FORMAT = "%Y-%m-%d"
MISSING_MARKERS = frozenset({"", "na", "nan", "null", "none"})
SHOWN_ROWS = 5
CELL_CHARS = 40  # of a cell or a column name in a message


@dataclass(frozen=True)
class RowNames:
    """How an error points at rows: `noun` and the number of the first data row; with or without values."""

    noun: str
    first: int
    show_values: bool


CSV_LINES = RowNames("line", 2, show_values=True)  # the header is line 1
# A served request's values are never echoed back: an error names the column, the rule and the records.
REQUEST_RECORDS = RowNames("record", 1, show_values=False)


def model_inputs(table: pd.DataFrame) -> pd.DataFrame:
    """Raw records as the model takes them: the hour.csv columns minus the counts, dates as text."""
    records = table.loc[:, list(MODEL_INPUT_COLUMNS)].copy()
    records["dteday"] = pd.to_datetime(records["dteday"]).dt.strftime(DATE_FORMAT)
    return records


def parse_hourly(raw: pd.DataFrame, label: str) -> pd.DataFrame:
    """Validate the string cells of hour.csv and return typed rows sorted by time, one per hour."""
    typed = parse_records(raw, label, HOURLY_COLUMNS, CSV_LINES)
    _reject_rows(
        typed,
        typed.duplicated(list(KEY_COLUMNS), keep=False),
        label,
        "duplicate timestamps: more than one row for the same dteday and hr",
        CSV_LINES,
    )
    return typed.sort_values(list(KEY_COLUMNS), kind="stable").reset_index(drop=True)


def parse_records(
    raw: pd.DataFrame, label: str, columns: tuple[str, ...] = MODEL_INPUT_COLUMNS, rows: RowNames = CSV_LINES
) -> pd.DataFrame:
    """Validate cells against the hour.csv contract and return the typed `columns`, in input order.

    Cells are text (a CSV read by read_csv_text) or already typed (a parsed JSON request): numeric columns
    skip the text parsing, and get the same checks. For model input (the default `columns`) the count
    columns of hour.csv may be present; they are dropped.
    """
    if raw.empty and len(raw.columns) == 0:
        raise PipelineError(f"{label} holds no records; send records with the columns {','.join(columns)}")
    _check_columns(raw, label, columns, rows)
    if raw.empty:
        raise PipelineError(f"{label} has a header but no data rows")
    cells = raw.loc[:, list(columns)].apply(_stripped_text_or_numbers)
    _check_missing(cells, label, rows)
    typed = pd.DataFrame(index=cells.index)
    for column in columns:
        typed[column] = _parse_column(cells[column], column, label, rows)
    _check_consistency(typed, label, rows)
    return typed.reset_index(drop=True)


def describe_rows(index: pd.Index, rows: RowNames = CSV_LINES, values: pd.Series | None = None) -> str:
    """'lines 5 ('25'), 9 ('x')' for the first few rows; 'records 4, 8' when values are not shown."""
    parts = []
    show_values = values is not None and rows.show_values
    for position in list(index[:SHOWN_ROWS]):
        value = f" ({quoted(values.loc[position], CELL_CHARS)})" if show_values else ""
        parts.append(f"{position + rows.first}{value}")
    more = f" and {len(index) - SHOWN_ROWS} more" if len(index) > SHOWN_ROWS else ""
    return f"{rows.noun}{'s' if len(index) > 1 else ''} {', '.join(parts)}{more}"


def _check_columns(raw: pd.DataFrame, label: str, columns: tuple[str, ...], rows: RowNames) -> None:
    missing = [c for c in columns if c not in raw.columns]
    ignored = COUNT_COLUMNS if columns == MODEL_INPUT_COLUMNS else ()
    unexpected = [c for c in raw.columns if c not in columns and c not in ignored]
    if missing:
        raise PipelineError(
            f"{label} is missing column(s) {', '.join(missing)}; expected the columns of UCI hour.csv: "
            f"{','.join(columns)}"
        )
    if unexpected:
        names = ""
        if rows.show_values:  # a served request's column names are not repeated back, like its values
            names = ": " + ", ".join(shown(c, CELL_CHARS) for c in unexpected[:SHOWN_ROWS])
            names += f" and {len(unexpected) - SHOWN_ROWS} more" if len(unexpected) > SHOWN_ROWS else ""
        raise PipelineError(
            f"{label} has {len(unexpected)} unexpected column(s){names}; expected exactly {','.join(columns)}"
        )


def _stripped_text_or_numbers(cells: pd.Series) -> pd.Series:
    if is_integer_dtype(cells.dtype) or is_float_dtype(cells.dtype):
        return cells
    return cells.astype(str).str.strip()  # bools and anything else become text, and are checked as such


def _check_missing(cells: pd.DataFrame, label: str, rows: RowNames) -> None:
    for column in cells.columns:
        missing = cells[column].isna()
        if not is_numeric_dtype(cells[column].dtype):
            missing |= cells[column].str.lower().isin(MISSING_MARKERS)
        empty = cells.index[missing]
        if len(empty):
            raise PipelineError(
                f"{label}: column '{column}' has missing values on {describe_rows(empty, rows)}; "
                "fill every cell"
            )


def _parse_column(cells: pd.Series, column: str, label: str, rows: RowNames) -> pd.Series:
    if column == "dteday":
        dates = pd.to_datetime(cells, format="%Y-%m-%d", errors="coerce")
        _reject(cells, dates.isna(), label, column, "is not a date in YYYY-MM-DD form", rows=rows)
        return dates
    if column in INTEGER_RANGES:
        if is_integer_dtype(cells.dtype):
            numbers = cells
        elif is_float_dtype(cells.dtype):
            numbers = cells.where(cells == cells.round())
        else:
            numbers = pd.to_numeric(cells.where(cells.str.fullmatch(r"[+-]?\d+")), errors="coerce")
        _reject(cells, numbers.isna(), label, column, "is not a whole number", rows=rows)
        too_large = numbers.astype("float64").abs() >= LARGEST_WHOLE_NUMBER
        _reject(cells, too_large, label, column, "is beyond the 64-bit range (±9.2e18)", rows=rows)
        low, high = INTEGER_RANGES[column]
        values = numbers.astype("int64")
    else:
        numbers = cells if is_numeric_dtype(cells.dtype) else pd.to_numeric(cells, errors="coerce")
        _reject(cells, numbers.isna(), label, column, "is not a number", rows=rows)
        low, high = FLOAT_RANGES[column]
        values = numbers.astype("float64")
    outside = (values < low if low is not None else False) | (values > high if high is not None else False)
    bounds = f"{low if low is not None else '-inf'}..{high if high is not None else 'inf'}"
    _reject(cells, outside, label, column, f"is outside the documented range {bounds}", rows=rows)
    return values


def _reject(
    cells: pd.Series, bad: pd.Series, label: str, column: str, problem: str, *, rows: RowNames
) -> None:
    if bad.any():
        index = cells.index[bad.to_numpy()]
        raise PipelineError(f"{label}: column '{column}' {problem} on {describe_rows(index, rows, cells)}")


def _check_consistency(typed: pd.DataFrame, label: str, rows: RowNames) -> None:
    """Rules that tie columns together: the parts of the date and the counts."""
    if "dteday" in typed:
        _reject_rows(
            typed,
            typed["yr"] != typed["dteday"].dt.year - FIRST_YEAR,
            label,
            "yr does not match the year of dteday (0: 2011, 1: 2012)",
            rows,
        )
        _reject_rows(
            typed,
            typed["mnth"] != typed["dteday"].dt.month,
            label,
            "mnth does not match the month of dteday",
            rows,
        )
    if {"casual", "registered", TARGET} <= set(typed.columns):
        _reject_rows(
            typed,
            typed["casual"] + typed["registered"] != typed[TARGET],
            label,
            "casual + registered != cnt",
            rows,
        )


def _reject_rows(typed: pd.DataFrame, bad: pd.Series, label: str, problem: str, rows: RowNames) -> None:
    if bad.any():
        raise PipelineError(f"{label}: {problem} on {describe_rows(typed.index[bad.to_numpy()], rows)}")
