"""The served champion: a real server (`python -m serving`, MLflow's scoring app behind the project's front)
with pickle disallowed; good requests, bad records, and hostile requests that must never be echoed."""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlparse

import mlflow
import numpy as np
import pandas as pd
import pytest

from tests.e2e.served import CHAMPION_URI, last_two_hours, post, serving


def test_the_champion_answers_raw_records_with_counts(served, real_data: Path, monkeypatch) -> None:
    url, tracking_uri = served
    records = last_two_hours(real_data)
    status, body = post(url, json.dumps({"dataframe_records": records}).encode())
    assert status == 200, body
    predicted = json.loads(body)["predictions"]
    assert len(predicted) == 2
    assert min(predicted) >= 0
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")
    mlflow.set_tracking_uri(tracking_uri)
    in_process = mlflow.pyfunc.load_model(CHAMPION_URI).predict(pd.DataFrame(records))
    np.testing.assert_allclose(predicted, in_process, rtol=1e-9)


def bad_requests(records: list[dict]) -> dict[str, tuple[bytes, str]]:
    """Each bad request, and the words its answer must contain."""

    def changed(**values: object) -> bytes:
        return json.dumps({"dataframe_records": [records[0] | values, records[1]]}).encode()

    without_hr = [{k: v for k, v in record.items() if k != "hr"} for record in records]
    return {
        "missing column": (json.dumps({"dataframe_records": without_hr}).encode(), "missing column(s) hr"),
        "wrong type": (changed(temp="warm"), "column 'temp' is not a number on record 1"),
        "a fraction for a whole number": (changed(hr=22.5), "column 'hr' is not a whole number on record 1"),
        "true for a whole number": (
            changed(holiday=True),
            "column 'holiday' is not a whole number on record 1",
        ),
        "empty body": (b"", "valid JSON"),
        "no records": (json.dumps({"dataframe_records": []}).encode(), "holds no records"),
        "NaN": (changed(hum=float("nan")), "column 'hum' has missing values on record 1"),
        "null": (changed(windspeed=None), "column 'windspeed' has missing values on record 1"),
        "out-of-range category": (
            changed(hr=25),
            "column 'hr' is outside the documented range 0..23 on record 1",
        ),
        "inconsistent date": (changed(mnth=3), "mnth does not match the month of dteday on record 1"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "missing column",
        "wrong type",
        "a fraction for a whole number",
        "true for a whole number",
        "empty body",
        "no records",
        "NaN",
        "null",
        "out-of-range category",
        "inconsistent date",
    ],
)
def test_a_bad_request_is_a_4xx_that_names_the_problem(served, real_data: Path, case: str) -> None:
    records = last_two_hours(real_data)
    body, expected = bad_requests(records)[case]
    status, answer = post(served[0], body)
    assert 400 <= status < 500, answer
    error = json.loads(answer)
    assert expected in error["message"]
    assert "stack_trace" not in error
    assert "Traceback" not in answer
    for echoed in ('"2012-12-31"', "warm", str(records[0]["instant"]), str(records[1]["temp"])):
        assert echoed not in answer, f"the answer echoes the request: {answer}"


PARQUET = "application/vnd.apache.parquet"  # what MLflow's scoring server reads as Parquet
MARKER = "ECHO-ME-7f3a"  # in every hostile body: an answer that contains it repeats the request


def hostile_requests() -> dict[str, tuple[bytes | Iterable[bytes], str, int]]:
    """Each hostile request: its body, its Content-Type, and the status it must get."""
    big_invalid_json = b'{"dataframe_records": [' + f'"{MARKER}",'.encode() * 400_000  # ~6 MB, no closing
    return {
        "50 MB invalid JSON": (MARKER.encode() * 4_000_000, "application/json", 413),
        "6 MB invalid JSON": (big_invalid_json, "application/json", 400),
        "20 MB chunked, no length": ((MARKER.encode() * 100_000 for _ in range(16)), "application/json", 413),
        "malformed CSV": (f'hr,"{MARKER}\n1,2,3\n"unclosed'.encode(), "text/csv", 400),
        "CSV of other columns": (f"{MARKER},b\n1,2\n".encode(), "text/csv", 400),
        "malformed Parquet": (b"PAR1" + MARKER.encode() * 10 + b"PAR1", PARQUET, 400),
        "another charset": (MARKER.encode(), "application/json; charset=latin-1", 415),
        "JSON that is not records": (json.dumps({MARKER: [1, 2]}).encode(), "application/json", 400),
        "a 50,000-character column": (
            json.dumps({"dataframe_records": [{MARKER + "c" * 50_000: 1}]}).encode(),
            "application/json",
            400,
        ),
        "unknown Content-Type": (MARKER.encode(), "application/xml", 415),
        "not UTF-8": (b'{"dataframe_records": [{"\xff\xfe": 1}]}' + MARKER.encode(), "application/json", 400),
    }


@pytest.mark.parametrize("case", list(hostile_requests()))
def test_a_hostile_request_gets_a_short_4xx_that_repeats_nothing(served, case: str) -> None:
    body, content_type, expected = hostile_requests()[case]
    status, answer = post(served[0], body, content_type)
    assert status == expected, answer[:500]
    assert len(answer) < 1000, f"{len(answer)} characters"
    error = json.loads(answer)
    assert set(error) == {"error_code", "message"}
    assert MARKER not in answer and "site-packages" not in answer and "Traceback" not in answer


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("GET", "/ping", 200),
        ("GET", "/health", 200),
        ("GET", "/version", 200),
        ("GET", "/invocations", 405),
        ("HEAD", "/ping", 405),
        ("POST", "/ping", 405),
        ("GET", f"/{MARKER}", 404),
        ("DELETE", "/invocations", 405),
    ],
)
def test_the_rest_contract_of_mlflow_and_nothing_else(served, method: str, path: str, expected: int) -> None:
    connection = http.client.HTTPConnection(urlparse(served[0]).netloc, timeout=30)
    connection.request(method, path)
    response = connection.getresponse()
    answer = response.read().decode()
    connection.close()
    assert response.status == expected, answer
    assert MARKER not in answer


def test_records_as_parquet_and_csv_get_the_same_predictions_as_json(served, real_data: Path) -> None:
    records = pd.DataFrame(last_two_hours(real_data))
    answers = {}
    for content_type, body in [
        ("application/json", json.dumps({"dataframe_records": records.to_dict(orient="records")}).encode()),
        ("text/csv", records.to_csv(index=False).encode()),
        (PARQUET, records.to_parquet(index=False)),
    ]:
        status, answer = post(served[0], body, content_type)
        assert status == 200, (content_type, answer[:300])
        answers[content_type] = json.loads(answer)["predictions"]
    assert answers["text/csv"] == answers["application/json"]
    np.testing.assert_allclose(answers[PARQUET], answers["application/json"], rtol=1e-9)


def test_the_model_a_server_downloaded_is_removed_when_it_stops(served, tmp_path: Path) -> None:
    with serving(served[1], tmp_path / "serve.log", TMPDIR=str(tmp_path)):
        (download,) = tmp_path.glob("serving-*")
        assert any(download.rglob("MLmodel")), "the model is served from its own download"
    assert not download.exists()


def test_a_body_that_stops_arriving_gets_408_and_the_connection_closes(served, tmp_path: Path) -> None:
    """A client that announces 1,000 bytes and sends 7 is answered when the body time is up (1 s here)."""
    with serving(served[1], tmp_path / "serve.log", "--body-timeout", "1") as url:
        address = urlparse(url)
        with socket.create_connection((address.hostname, address.port), timeout=30) as client:
            head = b"POST /invocations HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            client.sendall(head + b"Content-Length: 1000\r\n\r\n" + b'{"dataf')
            started = time.monotonic()
            answer = b"".join(iter(lambda: client.recv(65536), b""))  # until the server closes
            took = time.monotonic() - started
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 408 Request Timeout" and 0.5 <= took < 10, (answer, took)
    error = json.loads(rest.partition(b"\r\n\r\n")[2])
    assert error["error_code"] == "REQUEST_TIMEOUT"
    assert error["message"].startswith("the request body did not arrive within 1 s; ")
