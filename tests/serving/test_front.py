"""The serving front (serving/front.py, serving/answers.py) in process, in milliseconds: GuardedScoringApp
wraps a stub that stands in for MLflow's scoring app, and each request is one plain ASGI call (no server,
no model, no httpx)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from serving.front import GuardedScoringApp
from serving.model import REQUEST_LABEL

RECORD = {  # one valid hour.csv record, without its counts
    "instant": 1,
    "dteday": "2012-10-01",
    "season": 4,
    "yr": 1,
    "mnth": 10,
    "hr": 8,
    "holiday": 0,
    "weekday": 1,
    "workingday": 1,
    "weathersit": 1,
    "temp": 0.52,
    "atemp": 0.5,
    "hum": 0.61,
    "windspeed": 0.19,
}
SECRET = 0.4242421  # a value only the client sent: no answer may contain it
JSON = "application/json"


@dataclass
class Stub:
    """MLflow's scoring app as the front sees it: records the requests it got, answers `status` and `body`
    (in two chunks, as a streaming app may)."""

    status: int = 200
    body: bytes = b'{"predictions": [123.5]}'
    received: list[bytes] = field(default_factory=list)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        chunks, more = [], True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        self.received.append(b"".join(chunks))
        await send({"type": "http.response.start", "status": self.status, "headers": []})
        half = len(self.body) // 2
        await send({"type": "http.response.body", "body": self.body[:half], "more_body": True})
        await send({"type": "http.response.body", "body": self.body[half:]})


def exchange(
    app: Any,
    headers: list[tuple[bytes, bytes]],
    pieces: list[bytes],
    *,
    path: str = "/invocations",
    method: str = "POST",
    then: str = "done",
    pause: float = 0.0,
) -> list[dict[str, Any]]:
    """The messages `app` sends for one request whose body arrives in `pieces`, `pause` seconds before
    each. Then the body is whole (`then="done"`), or the client stalls, never sending again ("stall"), or
    leaves ("leave")."""
    scope = {"type": "http", "method": method, "path": path, "headers": headers}
    events = [
        {"type": "http.request", "body": p, "more_body": i < len(pieces) - 1 or then != "done"}
        for i, p in enumerate(pieces)
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if events:
            await asyncio.sleep(pause)
            return events.pop(0)
        if then == "stall":
            await asyncio.Event().wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


def call(
    app: Any,
    body: bytes,
    *,
    path: str = "/invocations",
    method: str = "POST",
    content_type: str = JSON,
    declare_length: bool = True,
    chunk: int = 0,
) -> tuple[int, bytes]:
    """One HTTP request through `app`, the body sent whole or in `chunk`-byte pieces: (status, body)."""
    headers = [(b"content-type", content_type.encode())]
    headers += [(b"content-length", str(len(body)).encode())] if declare_length else []
    pieces = [body[i : i + chunk] for i in range(0, len(body), chunk)] if chunk else [body]
    return answer_of(exchange(app, headers, pieces, path=path, method=method))


def answer_of(sent: list[dict[str, Any]]) -> tuple[int, bytes]:
    """The status and the body of the one response in `sent`."""
    starts = [m for m in sent if m["type"] == "http.response.start"]
    assert len(starts) == 1, "exactly one response"
    return starts[0]["status"], b"".join(
        m.get("body", b"") for m in sent if m["type"] == "http.response.body"
    )


def records(*changes: dict[str, Any]) -> bytes:
    return json.dumps({"dataframe_records": [RECORD | change for change in changes]}).encode()


def error(answer: bytes) -> tuple[str, str]:
    parsed = json.loads(answer)
    assert set(parsed) == {"error_code", "message"}, "no stack_trace or other fields"
    assert "\n" not in parsed["message"], "one line"
    return parsed["error_code"], parsed["message"]


def test_a_good_request_passes_through_unchanged() -> None:
    stub = Stub()
    body = records({}, {"hr": 9, "temp": SECRET})
    assert call(GuardedScoringApp(stub), body, chunk=100) == (200, stub.body)
    assert stub.received == [body], "the stub gets the whole body, as sent, once"


@pytest.mark.parametrize("declare_length", [True, False], ids=["declared", "streamed"])
def test_an_oversized_body_is_refused_before_the_model(declare_length: bool) -> None:
    stub = Stub()
    body = records(*[{"temp": SECRET}] * 20)
    front = GuardedScoringApp(stub, max_request_bytes=len(body) - 1)
    status, answer = call(front, body, declare_length=declare_length, chunk=256)
    assert status == 413 and stub.received == []
    code, message = error(answer)
    assert code == "REQUEST_TOO_LARGE" and f"{len(body) - 1:,} bytes" in message
    assert call(GuardedScoringApp(stub, max_request_bytes=len(body)), body)[0] == 200, (
        "the limit is inclusive"
    )


def test_malformed_json_gets_one_line_that_does_not_echo_the_body() -> None:
    """The front passes unparseable JSON on (MLflow refuses it), and rewords MLflow's answer, which quotes
    the body."""
    body = b'{"dataframe_records": [{"hr": 8, "temp": 0.4242421,]}'
    stub = Stub(
        400, json.dumps({"error_code": "BAD_REQUEST", "message": f"Invalid input: {body!r}"}).encode()
    )
    status, answer = call(GuardedScoringApp(stub), body)
    code, message = error(answer)
    assert (status, code) == (400, "BAD_REQUEST") and stub.received == [body]
    assert message.startswith("the request body is not valid JSON (") and "line 1 column" in message
    assert str(SECRET) not in answer.decode() and '"hr": 8' not in answer.decode()


@pytest.mark.parametrize(
    ("column", "value"), [("hr", 22.5), ("workingday", True), ("weathersit", 1.5), ("holiday", False)]
)
def test_a_whole_number_column_that_mlflow_would_cast_is_refused(column: str, value: object) -> None:
    stub = Stub()
    status, answer = call(GuardedScoringApp(stub), records({}, {}, {column: value, "temp": SECRET}))
    assert status == 400 and stub.received == [], "refused by the front: MLflow would cast it silently"
    code, message = error(answer)
    assert code == "INVALID_PARAMETER_VALUE"
    assert message == f"{REQUEST_LABEL}: column '{column}' is not a whole number on record 3"
    assert call(GuardedScoringApp(stub), records({column: int(value)}))[0] == 200, "a whole number passes"


def test_a_downstream_error_that_quotes_the_request_is_reworded() -> None:
    body = records({"temp": SECRET}, {"hr": 9})
    quoting = {"error_code": "BAD_REQUEST", "message": f"Failed to enforce schema of data '{body.decode()}'"}
    status, answer = call(GuardedScoringApp(Stub(400, json.dumps(quoting).encode())), body)
    code, message = error(answer)
    assert (status, code) == (400, "INVALID_PARAMETER_VALUE")
    assert message.startswith("request: send each column with the type")
    assert str(SECRET) not in answer.decode() and "2012-10-01" not in answer.decode()


def test_a_downstream_crash_hides_its_stack_trace() -> None:
    crash = {
        "error_code": "INTERNAL_ERROR",
        "message": f"boom {SECRET}",
        "stack_trace": "/site-packages/x.py",
    }
    status, answer = call(GuardedScoringApp(Stub(500, json.dumps(crash).encode())), records({"temp": SECRET}))
    assert (status, error(answer)[0]) == (500, "INTERNAL_ERROR")
    assert str(SECRET) not in answer.decode() and "site-packages" not in answer.decode()


def test_the_models_own_record_check_is_kept() -> None:
    """serving/model.py's words name the column, the rule and the record, never the value: kept as is."""
    own = f"{REQUEST_LABEL}: column 'hr' is outside the documented range 0..23 on record 2"
    stub = Stub(400, json.dumps({"error_code": "INVALID_PARAMETER_VALUE", "message": own}).encode())
    status, answer = call(GuardedScoringApp(stub), records({}, {"hr": 99}))
    assert (status, error(answer)) == (400, ("INVALID_PARAMETER_VALUE", own))


@pytest.mark.parametrize(
    ("path", "method", "content_type", "status"),
    [
        ("/admin", "POST", JSON, 404),
        ("/invocations", "GET", JSON, 405),
        ("/invocations", "POST", "text/xml", 415),
    ],
)
def test_unknown_routes_methods_and_types_never_reach_the_app(
    path: str, method: str, content_type: str, status: int
) -> None:
    stub = Stub()
    refused, answer = call(
        GuardedScoringApp(stub), records({}), path=path, method=method, content_type=content_type
    )
    assert refused == status and stub.received == [] and error(answer)[1]
