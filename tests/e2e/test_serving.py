"""The served champion: a real `mlflow models serve` process with pickle disallowed, good and bad requests."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from demand.schema import model_inputs, parse_hourly, read_csv_text
from plumbing import settings
from plumbing.names import EXPERIMENT_NAME
from plumbing.params import make_plan
from steps.main import run_pipeline
from tests.helpers import VENV_BIN, cli_environment, free_port, wait_until_healthy

CHAMPION_URI = f"models:/{settings.parameter_defaults('main')['model_name']}@champion"
NO_PICKLE = {"MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false"}


def last_two_hours(real_data: Path) -> list[dict]:
    """The last two records of hour.csv as a client sends them: without the counts."""
    raw = read_csv_text((real_data / "hour.csv").read_bytes(), "hour.csv").tail(2)
    records = model_inputs(parse_hourly(raw, "hour.csv"))
    return json.loads(records.to_json(orient="records"))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, real_data: Path) -> Iterator[tuple[str, str]]:
    """A champion registered by a real pipeline run, served by `mlflow models serve` with pickle off."""
    folder = tmp_path_factory.mktemp("served")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        mlflow.set_tracking_uri(uri)
        mlflow.set_experiment(EXPERIMENT_NAME)  # not the experiment id an earlier test left active
        run_pipeline(make_plan(str(real_data), "time", "92", "ridge", {}))
        for name in ("MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):
            os.environ.pop(name, None)
    port = free_port()
    log_path = folder / "serve.log"
    command = [str(VENV_BIN / "mlflow"), "models", "serve", "-m", CHAMPION_URI, "--env-manager", "local"]
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [*command, "--host", "127.0.0.1", "--port", str(port)],
            env=cli_environment(uri) | NO_PICKLE,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=folder,
        )
        try:
            wait_until_healthy(f"http://127.0.0.1:{port}/ping", server, log_path)
            yield f"http://127.0.0.1:{port}", uri
        finally:
            server.terminate()
            server.wait(timeout=30)


def post(url: str, body: bytes, content_type: str = "application/json") -> tuple[int, str]:
    request = urllib.request.Request(f"{url}/invocations", data=body, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


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
    ["missing column", "wrong type", "empty body", "no records", "NaN", "null", "out-of-range category",
     "inconsistent date"],
)  # fmt: skip
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
