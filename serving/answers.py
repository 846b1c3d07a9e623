"""What the front (serving/front.py) answers for a request it or MLflow refuses: a short message that names
the problem and never repeats the request.

MLflow reads a request and checks it against the signature's input schema before the model runs, and its
words for what it refuses quote the request. So for records MLflow refused, the model's own check
(serving/model.py) words what is wrong, naming the column, the rule and the record numbers.
"""

from __future__ import annotations

import io
import json
import logging

import pandas as pd
from pandas.api.types import is_bool_dtype, is_float_dtype

from demand.csv_text import read_csv_text
from demand.errors import shown
from demand.schema import INTEGER_RANGES
from serving.model import REQUEST_LABEL, InvalidRecords, checked_records
from serving.nesting import nesting_depth

log = logging.getLogger(__name__)

MAX_MESSAGE_CHARS = 400
# Records that pass the model's check but not MLflow's check of the signature's types.
TYPES_HINT = "request: send each column with the type the model's signature declares for it"
RECORDS_HINT = (
    'send {"dataframe_records": [...]} or {"dataframe_split": {...}} as JSON, or CSV or Parquet, '
    "with the columns of hour.csv"
)


class RequestRefusedError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def safe_error(status: int, answer: bytes, kind: str, request: bytes) -> tuple[int, str, str]:
    """A short error for MLflow's error answer: the model's own record checks are kept, the rest replaced."""
    try:
        error = json.loads(answer)
    except ValueError:
        error = {}
    error = error if isinstance(error, dict) else {}
    message = str(error.get("message", ""))
    if status >= 500 and status != 504:
        return 500, "INTERNAL_ERROR", "the model could not score this request; the server log says why"
    if status == 504:
        return 504, "TIMEOUT", "scoring took longer than the server allows; send fewer records per request"
    if status == 415:
        return 415, "UNSUPPORTED_MEDIA_TYPE", "send UTF-8 text with no Content-Type parameter but charset"
    if message.startswith((f"{REQUEST_LABEL}: ", f"{REQUEST_LABEL} ")):  # the model's record checks
        return status, str(error.get("error_code", "BAD_REQUEST")), shown(message, MAX_MESSAGE_CHARS)
    try:
        return _refused(status, kind, request)
    except Exception:  # it reads the request again: whatever that raises, the answer stays the 4xx it was
        log.exception("could not word why MLflow refused a request; answered in general terms")
        return status, "BAD_REQUEST", unreadable_body(kind)


def _refused(status: int, kind: str, request: bytes) -> tuple[int, str, str]:
    """MLflow could not read the body, or read records and refused them against the signature's input
    schema, in words that quote the request: the model's check words what is wrong, or else it is a type."""
    records = _records(kind, request)
    if records is None:
        return status, "BAD_REQUEST", _unreadable(kind, request)
    return 400, "INVALID_PARAMETER_VALUE", _what_is_wrong(records)


def _what_is_wrong(records: pd.DataFrame) -> str:
    """The model's check's words for records MLflow refused, or else: a column's type."""
    if records.columns.has_duplicates:  # the model's check cannot tell which of two columns to read
        return f"{REQUEST_LABEL}: a column appears more than once; send each column of hour.csv once"
    try:
        checked_records(records)
    except InvalidRecords as refused:
        return shown(refused.message, MAX_MESSAGE_CHARS)
    return TYPES_HINT


def refusal_before_mlflow(kind: str, body: bytes, max_depth: int) -> RequestRefusedError | None:
    """The front's refusal of a body it read whole, or None to pass it on to MLflow. Never raises: whatever
    the body, the front's own checks end in a 4xx, not a 500."""
    try:
        refuse_deep_nesting(kind, body, max_depth)
        refuse_what_mlflow_would_cast(kind, body)
    except RequestRefusedError as refused:
        return refused
    except Exception:
        log.exception("could not check a request body; refused it")
        return RequestRefusedError(400, "BAD_REQUEST", unreadable_body(kind))
    return None


def refuse_deep_nesting(kind: str, body: bytes, max_depth: int) -> None:
    """A JSON body that nests deeper than `max_depth` levels is refused before anything parses it: parsing
    recurses once per level (serving/nesting.py)."""
    if kind == "JSON" and nesting_depth(body) > max_depth:
        explanation = f"the request body nests arrays and objects deeper than {max_depth} levels"
        raise RequestRefusedError(400, "BAD_REQUEST", f"{explanation}; {RECORDS_HINT}")


def refuse_what_mlflow_would_cast(kind: str, body: bytes) -> None:
    """MLflow's scoring server casts a JSON request's columns to the signature's types before the model sees
    them, so 22.5 or true in a whole-number column would reach the model as 22 or 1: such a request is
    refused here, in the model's words; so is one that sends a column twice, which cannot be checked."""
    records = _records(kind, body) if kind == "JSON" else None
    if records is not None and (
        records.columns.has_duplicates
        or any(_cast_away(records[c]) for c in INTEGER_RANGES if c in records.columns)
    ):
        raise RequestRefusedError(400, "INVALID_PARAMETER_VALUE", _what_is_wrong(records))


def _cast_away(values: pd.Series) -> bool:
    """Whether casting `values` to whole numbers would change one of them."""
    if is_bool_dtype(values.dtype):
        return True
    if is_float_dtype(values.dtype):
        return bool((values != values.round()).any())
    return values.map(lambda v: isinstance(v, bool) or (isinstance(v, float) and not v.is_integer())).any()


def _records(kind: str, request: bytes) -> pd.DataFrame | None:
    """The records of a request as MLflow's scoring server reads them, every cell as sent; None if the
    body is no table of records."""
    try:
        if kind == "CSV":
            return read_csv_text(request, REQUEST_LABEL)
        if kind == "Parquet":
            return pd.read_parquet(io.BytesIO(request))
        parsed = json.loads(request)
        if isinstance(parsed, dict) and isinstance(parsed.get("dataframe_records"), list):
            return pd.DataFrame(parsed["dataframe_records"])
        if isinstance(parsed, dict) and isinstance(parsed.get("dataframe_split"), dict):
            split = parsed["dataframe_split"]
            return pd.DataFrame(split.get("data"), columns=split.get("columns"))
    except Exception:  # a body pandas cannot read is unreadable, whatever pandas raised
        return None
    return None


def _unreadable(kind: str, request: bytes) -> str:
    """Why a body MLflow could not read was unreadable, without repeating any of it."""
    if kind == "JSON":
        try:
            json.loads(request)
        except UnicodeDecodeError:
            return f"the request body is not UTF-8 text; {RECORDS_HINT}"
        except json.JSONDecodeError as error:
            where = f"line {error.lineno} column {error.colno}"
            return f"the request body is not valid JSON ({error.msg} at {where}); {RECORDS_HINT}"
    return unreadable_body(kind)


def unreadable_body(kind: str) -> str:
    """The words for a body that could not be read as records of `kind`."""
    return f"the request body could not be read as {kind or 'records'}; {RECORDS_HINT}"
