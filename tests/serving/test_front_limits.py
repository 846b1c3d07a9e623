"""The front's bounds on a request, in process (the harness of test_front.py): how deeply a JSON body may nest
(every JSON parser here recurses once per level), how long a body may take to arrive, a client that leaves
mid-body, and bodies the front's own checks cannot read: never a 500, never a traceback to the client."""

from __future__ import annotations

import json
import logging
import time

import pytest

from serving import answers
from serving.front import MAX_NESTING_DEPTH, GuardedScoringApp
from tests.serving.test_front import JSON, RECORD, Stub, answer_of, call, error, exchange, records

# What MLflow's scoring server answers for JSON it cannot use: the body quoted back.
MLFLOW_INVALID_INPUT = json.dumps(
    {"error_code": "BAD_REQUEST", "message": "Invalid input: <the body>"}
).encode()
TOO_DEEP = f"the request body nests arrays and objects deeper than {MAX_NESTING_DEPTH} levels; send {{"


def arrays(depth: int) -> bytes:
    return b"[" * depth + b"1" + b"]" * depth


def objects(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


def mixed(depth: int) -> bytes:
    """Arrays and objects in turn, `depth` levels."""
    opening, closing = (b"[", b"]"), (b'{"a":', b"}")
    levels = [opening if level % 2 else closing for level in range(depth)]
    return b"".join(o for o, _ in levels) + b"1" + b"".join(c for _, c in reversed(levels))


def deep_cell(depth: int) -> bytes:
    """Records whose `hr` cell nests the body `depth` levels deep."""
    return b'{"dataframe_records": [{"hr": ' + arrays(depth - 3) + b"}]}"


SHAPES = {"arrays": arrays, "objects": objects, "mixed": mixed, "records with a deep cell": deep_cell}


@pytest.mark.parametrize(
    "body",
    [b"[" * 100_000, objects(1_000), arrays(1_000).decode().encode("utf-16")]
    + [shape(MAX_NESTING_DEPTH + 1) for shape in SHAPES.values()],
    ids=["100,000 [", "1,000 objects", "UTF-16", *(f"{name}, 401 levels" for name in SHAPES)],
)
def test_json_nested_deeper_than_400_levels_is_refused_before_anything_parses_it(body: bytes) -> None:
    stub = Stub(400, MLFLOW_INVALID_INPUT)
    status, answer = call(GuardedScoringApp(stub), body)
    code, message = error(answer)
    assert (status, code) == (400, "BAD_REQUEST") and stub.received == []
    assert message.startswith(TOO_DEEP) and "dataframe_records" in message


@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES)
def test_json_nested_exactly_400_levels_reaches_mlflow(shape) -> None:
    """MLflow's own validation refuses it (the stub answers as MLflow does), and the front words that
    refusal, parsing the body again, without recursing too deep."""
    body = shape(MAX_NESTING_DEPTH)
    stub = Stub(400, MLFLOW_INVALID_INPUT)
    status, answer = call(GuardedScoringApp(stub), body)
    code, message = error(answer)
    assert stub.received == [body]
    assert status == 400 and code in {"BAD_REQUEST", "INVALID_PARAMETER_VALUE"}
    assert not message.startswith(TOO_DEEP)


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    texts = ["[" * 1_000, "{" * 1_000, '"' + "[" * 1_000, "\\", '\\"[{' * 500]
    body = json.dumps({"dataframe_records": [RECORD | {"[" * 500: text} for text in texts]}).encode()
    stub = Stub()
    assert call(GuardedScoringApp(stub), body) == (200, stub.body)
    assert stub.received == [body]


def test_depth_is_not_measured_in_csv() -> None:
    body = ("hr,temp\n" + "[" * 1_000 + ",0.5\n").encode()
    stub = Stub()
    assert call(GuardedScoringApp(stub), body, content_type="text/csv") == (200, stub.body)


LENGTH_1000 = [(b"content-type", JSON.encode()), (b"content-length", b"1000")]


def test_a_body_that_stops_arriving_gets_408_when_the_time_is_up() -> None:
    stub = Stub()
    started = time.monotonic()
    sent = exchange(
        GuardedScoringApp(stub, body_timeout_seconds=0.5), LENGTH_1000, [b'{"dataf'], then="stall"
    )
    took = time.monotonic() - started
    status, answer = answer_of(sent)
    assert status == 408 and 0.5 <= took < 2 and stub.received == []
    code, message = error(answer)
    assert code == "REQUEST_TIMEOUT"
    assert message.startswith("the request body did not arrive within 0.5 s; send it without pauses")
    assert (b"connection", b"close") in sent[0]["headers"], (
        "the server stops waiting: it closes the connection"
    )


def test_the_time_limit_is_for_the_whole_body_not_each_piece() -> None:
    body = records({}, {"hr": 9})
    pieces = [body[i : i + 20] for i in range(0, len(body), 20)]
    headers = [(b"content-type", JSON.encode())]
    trickled = exchange(GuardedScoringApp(Stub(), body_timeout_seconds=0.2), headers, pieces, pause=0.02)
    assert answer_of(trickled)[0] == 408, f"{len(pieces)} pieces, each well within the limit"
    assert answer_of(exchange(GuardedScoringApp(Stub()), headers, pieces, pause=0.02))[0] == 200


def test_a_client_that_leaves_mid_body_gets_no_answer_and_leaves_no_error(caplog) -> None:
    stub = Stub()
    with caplog.at_level(logging.INFO):
        sent = exchange(GuardedScoringApp(stub), LENGTH_1000, [b'{"dataf'], then="leave")
    assert sent == [] and stub.received == []
    assert [record.levelno for record in caplog.records] == [logging.INFO]


def test_a_column_sent_twice_is_refused_before_mlflow() -> None:
    """The front's cast check could not read such a table; the model's check cannot either."""
    row = list(RECORD.values())
    body = json.dumps({"dataframe_split": {"columns": [*RECORD, "hr"], "data": [[*row, 9]]}}).encode()
    stub = Stub()
    status, answer = call(GuardedScoringApp(stub), body)
    assert (status, stub.received) == (400, [])
    assert error(answer) == (
        "INVALID_PARAMETER_VALUE",
        "request: a column appears more than once; send each column of hour.csv once",
    )


@pytest.mark.parametrize(
    ("mlflow_status", "body"),
    [(200, records({"hr": 22.5})), (400, records({}))],
    ids=["the front's own check", "the wording of MLflow's refusal"],
)
def test_a_check_that_fails_unexpectedly_still_ends_in_a_4xx(
    monkeypatch, mlflow_status: int, body: bytes
) -> None:
    """Whatever a body makes the front's checks raise (here the model's record check raises what json.loads
    raised on a deep body), the client gets a 4xx in one line, not a 500."""

    def fails(records: object) -> None:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(answers, "checked_records", fails)
    status, answer = call(GuardedScoringApp(Stub(mlflow_status, MLFLOW_INVALID_INPUT)), body)
    assert status == 400
    assert error(answer) == ("BAD_REQUEST", answers.unreadable_body("JSON"))
