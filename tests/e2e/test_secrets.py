"""No credential is ever printed or stored: every entry point runs with a password in each kind of URI it
can meet (the tracking URI, `data`, tune's `storage`, the S3 endpoint of the artifact store), and neither
its output nor the tracking store holds the password."""

from __future__ import annotations

import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from plumbing.names import EXPERIMENT_NAME
from scripts.store import prepare_store
from tests.helpers import PROJECT_DIR, cli_environment, free_port

SECRET = "S3cretPassw0rd"
NOBODY = f"127.0.0.1:{free_port()}"  # nobody listens there
PYTHON = [sys.executable, "-m"]
RUN_URI = "runs:/0123456789abcdef0123456789abcdef/features"
ENTRY_POINTS = {
    "ingest": [*PYTHON, "steps.ingest", "--data", "{data}"],
    "featurize": [*PYTHON, "steps.featurize", "--table", RUN_URI, "--split", "time", "--test_days", "7"],
    "train": [*PYTHON, "steps.train", "--features", RUN_URI, "--model", "ridge", "--hyperparameters", ""],
    "evaluate": [*PYTHON, "steps.evaluate", "--features", RUN_URI, "--model_uri", RUN_URI],
    "register": [
        *PYTHON,
        "steps.register",
        "--features",
        RUN_URI,
        "--model_uri",
        RUN_URI,
        "--model_name",
        "",
    ],
    "main": [*PYTHON, "steps.main", "--data", "{data}", "--test_days", "7"],
    "tune": [*PYTHON, "steps.tune", "--data", "{data}", "--test_days", "7", "--trials", "1"],
    "predict": [*PYTHON, "steps.predict", "--input", "{data}", "--output", "{tmp}/p.csv"],
    "serving": [*PYTHON, "serving", "-m", "models:/bike-sharing-demand@champion", "-p", str(free_port())],
    "rerun": ["bash", "scripts/rerun", "-P", "data={data}", "-P", "test_days=7"],
}


def run(command: list[str], environment: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        command, cwd=PROJECT_DIR, env=environment, capture_output=True, text=True, timeout=300, check=False
    )


def environment_for(tracking_uri: str, **extra: str) -> dict[str, str]:
    return cli_environment(tracking_uri) | {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"} | extra


def filled(command: list[str], data: Path | str, tmp_path: Path) -> list[str]:
    return [part.format(data=data, tmp=tmp_path) for part in command]


def assert_failed_without_the_secret(result: subprocess.CompletedProcess) -> None:
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-2000:]
    assert SECRET not in output, output[-2000:]
    assert "***" in output or "password" in output, output[-2000:]


def assert_store_holds_no_secret(tracking_uri: str) -> None:
    store = Path(tracking_uri.removeprefix("sqlite:///"))
    tables = ("params", "tags", "experiment_tags", "experiments", "runs", "latest_metrics")
    with sqlite3.connect(store) as connection:
        for table in tables:
            rows = connection.execute(f"SELECT * FROM {table}").fetchall()  # fixed table names
            assert not [row for row in rows if SECRET in repr(row)], table


@pytest.mark.parametrize("entry_point", sorted(ENTRY_POINTS))
def test_a_tracking_uri_with_a_password_is_never_printed(
    entry_point: str, small_csv: Path, tmp_path: Path
) -> None:
    server = f"http://alice:{SECRET}@{NOBODY}"
    command = filled(ENTRY_POINTS[entry_point], small_csv, tmp_path)
    assert_failed_without_the_secret(run(command, environment_for(server)))


@pytest.mark.parametrize("entry_point", ["ingest", "main", "tune", "rerun"])
def test_data_with_a_password_is_refused_before_any_run_and_never_stored(
    entry_point: str, tracking_uri: str, tmp_path: Path
) -> None:
    for data in (f"https://bob:{SECRET}@data.example.org/hour.csv", f"https:/bob:{SECRET}@x.org/hour.csv"):
        command = filled(ENTRY_POINTS[entry_point], data, tmp_path)
        assert_failed_without_the_secret(run(command, environment_for(tracking_uri)))
    assert_store_holds_no_secret(tracking_uri)


@pytest.mark.parametrize(
    "storage",
    [f"postgresql://carol:{SECRET}@{NOBODY}/optuna", f"postgresql://carol@{NOBODY}/optuna?password={SECRET}"],
    ids=["in the address", "in the query"],
)
def test_a_storage_url_with_a_password_is_refused_before_any_run_and_never_stored(
    storage: str, tracking_uri: str, small_csv: Path, tmp_path: Path
) -> None:
    tune = [*filled(ENTRY_POINTS["tune"], small_csv, tmp_path), "--storage", storage]
    assert_failed_without_the_secret(run(tune, environment_for(tracking_uri)))
    preflight = [*PYTHON, "scripts.preflight", "-P", f"storage={storage}"]
    assert_failed_without_the_secret(run(preflight, environment_for(tracking_uri)))
    assert_store_holds_no_secret(tracking_uri)


def test_an_s3_endpoint_with_a_password_is_never_printed_or_stored(
    tracking_uri: str, small_csv: Path, tmp_path: Path
) -> None:
    MlflowClient(tracking_uri).create_experiment(EXPERIMENT_NAME, artifact_location="s3://models/bike")
    environment = environment_for(
        tracking_uri,
        MLFLOW_S3_ENDPOINT_URL=f"http://dave:{SECRET}@{NOBODY}",
        AWS_ACCESS_KEY_ID="dave",
        AWS_SECRET_ACCESS_KEY="not-the-secret",
        AWS_MAX_ATTEMPTS="1",
    )
    assert_failed_without_the_secret(run(filled(ENTRY_POINTS["main"], small_csv, tmp_path), environment))
    assert_store_holds_no_secret(tracking_uri)


def test_a_new_local_store_is_its_owners_alone(tmp_path: Path) -> None:
    path = tmp_path / "mlflow.db"
    prepare_store(f"sqlite:///{path}")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
