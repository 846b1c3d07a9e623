"""Reading CSV files as text cells: whole, or in chunks of rows so that memory stays flat. The checks of
the hour.csv contract (demand/schema.py) then run on the cells."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

import pandas as pd

from demand.errors import PipelineError

# Every cell as text, nothing turned into NaN: the contract checks decide what a cell means.
TEXT_CELLS = {"dtype": str, "keep_default_na": False, "na_filter": False}


def read_csv_text(data: bytes, label: str) -> pd.DataFrame:
    """Every cell as a string, whatever the line endings; the index is the 0-based data row."""
    with _readable(label):
        return pd.read_csv(io.BytesIO(data), **TEXT_CELLS)


def read_csv_chunks(source: IO[bytes], label: str, rows: int) -> Iterator[pd.DataFrame]:
    """The CSV in `source` (an open binary file) as read_csv_text reads it, `rows` data rows at a time:
    memory stays flat however long the file. The index keeps counting across chunks, so messages name
    the file's own lines. A file with a header and no rows gives one empty chunk (pandas does so), which
    parse_records refuses."""
    with _readable(label):
        yield from pd.read_csv(source, chunksize=rows, **TEXT_CELLS)


@contextmanager
def _readable(label: str) -> Iterator[None]:
    try:
        yield
    except pd.errors.EmptyDataError:
        raise PipelineError(f"{label} is empty; expected the UCI hour.csv with a header row") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        reason = str(error).strip().splitlines()[-1]  # pandas puts the cause last
        raise PipelineError(f"{label} is not a readable CSV ({reason}); expected the UCI hour.csv") from None
