"""The hour.csv contract: valid data in any order or line ending passes; each kind of bad data is named."""

from __future__ import annotations

import pandas as pd
import pytest

from demand.csv_text import read_csv_text
from demand.errors import PipelineError, quoted, shown
from demand.schema import HOURLY_COLUMNS, MODEL_INPUT_COLUMNS, REQUEST_RECORDS, parse_hourly, parse_records
from tests.synthetic import hourly_table


def as_text(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.astype(str)


def parse(frame: pd.DataFrame) -> pd.DataFrame:
    return parse_hourly(as_text(frame), "hour.csv")


def test_valid_table_is_typed_and_sorted() -> None:
    table = parse(hourly_table(days=2))
    assert list(table.columns) == list(HOURLY_COLUMNS)
    assert table["dteday"].dtype.kind == "M"
    assert table["hr"].dtype == "int64" and table["temp"].dtype == "float64"
    assert table[["dteday", "hr"]].equals(table[["dteday", "hr"]].sort_values(["dteday", "hr"]))


def test_rows_in_another_order_give_the_same_table() -> None:
    frame = hourly_table(days=2)
    shuffled = frame.sample(frac=1, random_state=1)
    pd.testing.assert_frame_equal(parse(shuffled), parse(frame))


@pytest.mark.parametrize("ending", ["\n", "\r\n"])
def test_line_endings_do_not_matter(ending: str) -> None:
    frame = hourly_table(days=1)
    data = frame.to_csv(index=False, lineterminator=ending).encode()
    pd.testing.assert_frame_equal(parse_hourly(read_csv_text(data, "hour.csv"), "hour.csv"), parse(frame))


def test_columns_in_another_order_are_accepted() -> None:
    frame = hourly_table(days=1)
    assert len(parse(frame[list(reversed(frame.columns))])) == 24


def test_missing_column_is_named() -> None:
    with pytest.raises(PipelineError, match=r"hour.csv is missing column\(s\) atemp"):
        parse(hourly_table(days=1).drop(columns="atemp"))


def test_unexpected_column_is_named() -> None:
    with pytest.raises(PipelineError, match=r"has 1 unexpected column\(s\): extra; expected exactly"):
        parse(hourly_table(days=1).assign(extra=1))


def test_wrong_type_names_column_and_line() -> None:
    frame = as_text(hourly_table(days=1))
    frame.loc[3, "hum"] = "humid"
    with pytest.raises(PipelineError, match=r"column 'hum' is not a number on line 5 \('humid'\)"):
        parse_hourly(frame, "hour.csv")


def test_fraction_in_integer_column_is_a_wrong_type() -> None:
    frame = as_text(hourly_table(days=1))
    frame.loc[0, "hr"] = "1.5"
    with pytest.raises(PipelineError, match=r"column 'hr' is not a whole number on line 2"):
        parse_hourly(frame, "hour.csv")


@pytest.mark.parametrize("marker", ["", "NaN", "NA", "null"])
def test_missing_value_names_column_and_line(marker: str) -> None:
    frame = as_text(hourly_table(days=1))
    frame.loc[[2, 7], "temp"] = marker
    with pytest.raises(PipelineError, match=r"column 'temp' has missing values on lines 4, 9"):
        parse_hourly(frame, "hour.csv")


@pytest.mark.parametrize(
    ("column", "value", "bounds"),
    [("hr", 24, "0..23"), ("weathersit", 5, "1..4"), ("temp", 1.5, "0.0..1.0"), ("cnt", -1, "0..inf")],
)
def test_out_of_range_names_the_documented_range(column: str, value: float, bounds: str) -> None:
    frame = hourly_table(days=1)
    frame[column] = frame[column].astype(type(value))
    frame.loc[0, column] = value
    with pytest.raises(PipelineError, match=rf"column '{column}' is outside the documented range {bounds}"):
        parse(frame)


@pytest.mark.parametrize("value", ["9223372036854775808", "-99999999999999999999", 2**64 - 1, -(2**70)])
@pytest.mark.parametrize("column", ["cnt", "instant", "hr"])
def test_a_whole_number_beyond_64_bits_is_named_as_such(column: str, value: str | int) -> None:
    frame = hourly_table(days=1).astype(object)  # text cells from a CSV, Python ints from a JSON request
    frame.loc[0, column] = value
    for cells in (frame, as_text(frame)):
        with pytest.raises(
            PipelineError, match=rf"column '{column}' is beyond the 64-bit range .* on line 2"
        ):
            parse_hourly(cells, "hour.csv")


def test_counts_must_add_up() -> None:
    frame = hourly_table(days=1)
    frame.loc[5, "casual"] += 1
    with pytest.raises(PipelineError, match=r"casual \+ registered != cnt on line 7"):
        parse(frame)


def test_duplicate_timestamps_are_named() -> None:
    frame = hourly_table(days=1)
    frame = pd.concat([frame, frame.iloc[[4]]], ignore_index=True)
    with pytest.raises(PipelineError, match=r"duplicate timestamps.* on lines 6, 26"):
        parse(frame)


def test_date_parts_must_agree() -> None:
    frame = hourly_table(days=1)
    frame.loc[0, "mnth"] = 1
    with pytest.raises(PipelineError, match="mnth does not match the month of dteday on line 2"):
        parse(frame)


def test_header_without_rows() -> None:
    with pytest.raises(PipelineError, match="has a header but no data rows"):
        parse_hourly(read_csv_text(",".join(HOURLY_COLUMNS).encode(), "hour.csv"), "hour.csv")


def test_empty_file() -> None:
    with pytest.raises(PipelineError, match=r"hour\.csv is empty"):
        read_csv_text(b"", "hour.csv")


def test_many_bad_rows_are_summarised() -> None:
    frame = as_text(hourly_table(days=1))
    frame.loc[:, "hr"] = "x"
    with pytest.raises(
        PipelineError, match=r"lines 2 \('x'\), 3 \('x'\), 4 \('x'\), 5 \('x'\), 6 \('x'\) and 19 more"
    ):
        parse_hourly(frame, "hour.csv")


def test_model_input_contract_has_no_counts() -> None:
    assert not {"cnt", "casual", "registered"} & set(MODEL_INPUT_COLUMNS)
    frame = hourly_table(days=1).loc[:, list(MODEL_INPUT_COLUMNS)]
    assert len(parse_records(frame.astype(str), "records")) == 24


@pytest.mark.parametrize("where", ["cell", "column name"])
def test_a_message_repeats_only_a_short_prefix_of_what_was_sent(where: str) -> None:
    huge = "x" * 100_000 + "\nsecond line"
    frame = as_text(hourly_table(days=1))
    if where == "cell":
        frame.loc[3, "hr"] = huge
    else:
        frame = frame.rename(columns={"windspeed": huge})
        frame[huge] = frame[huge]  # an unexpected column (and windspeed missing: named first)
        frame["windspeed"] = "0.1"
    with pytest.raises(PipelineError) as raised:
        parse(frame)
    message = str(raised.value)
    assert len(message) < 500 and "\n" not in message
    assert "x" * 40 in message and "(100,012 characters)" in message


def test_shown_cuts_and_escapes() -> None:
    assert shown("short") == "short"
    assert shown("a\nb") == "a\\nb"
    assert shown("y" * 100, limit=10) == "yyyyyyyyyy… (100 characters)"
    assert quoted("it's") == "'it's'"


def test_many_unexpected_columns_are_counted_and_five_named() -> None:
    base = as_text(hourly_table(days=1))
    extra = pd.DataFrame("1", index=base.index, columns=[f"extra_{number}" for number in range(3000)])
    frame = pd.concat([base, extra], axis=1)
    with pytest.raises(PipelineError) as raised:
        parse(frame)
    message = str(raised.value)
    assert (
        "has 3000 unexpected column(s): extra_0, extra_1, extra_2, extra_3, extra_4 and 2995 more" in message
    )
    assert len(message) < 500


def test_a_request_gets_no_column_name_back() -> None:
    records = hourly_table(days=1).loc[:, list(MODEL_INPUT_COLUMNS)].assign(secret_column_name=1)
    with pytest.raises(PipelineError, match=r"^request has 1 unexpected column\(s\); expected") as raised:
        parse_records(records, "request", rows=REQUEST_RECORDS)
    assert "secret_column_name" not in str(raised.value)
