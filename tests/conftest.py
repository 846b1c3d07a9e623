"""Fixtures: a private tracking store per test, the real data when present, and the `mlflow run` CLI."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from steps.names import EXPERIMENT_NAME
from tests.synthetic import hourly_table, write_csv

PROJECT_DIR = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
CLI_TIMEOUT_SECONDS = 900


@pytest.fixture
def tracking_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh SQLite store with artifacts under tmp_path, for this process and any child process."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.chdir(tmp_path)  # the store's default artifact root, ./mlruns, lands in tmp_path
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    mlflow.set_tracking_uri(uri)
    yield uri
    while mlflow.active_run():
        mlflow.end_run()
    for name in ("MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):  # mlflow.set_experiment exports these
        os.environ.pop(name, None)


@pytest.fixture
def experiment_id(tracking_uri: str) -> str:
    return mlflow.set_experiment(EXPERIMENT_NAME).experiment_id


@pytest.fixture
def client(tracking_uri: str) -> MlflowClient:
    return MlflowClient(tracking_uri)


@pytest.fixture(scope="session")
def real_data() -> Path:
    """The UCI data named by BIKE_SHARING_DATA. Under CI its absence is a failure, not a skip."""
    value = os.environ.get("BIKE_SHARING_DATA", "")
    if value and Path(value).exists():
        return Path(value)
    if os.environ.get("CI"):
        pytest.fail("BIKE_SHARING_DATA must name the UCI data under CI (.ci/run sets it)")
    pytest.skip("set BIKE_SHARING_DATA to the UCI Bike Sharing data to run this test")


@pytest.fixture
def small_csv(tmp_path: Path) -> Path:
    """Six weeks of valid synthetic hourly data."""
    return write_csv(hourly_table(), tmp_path / "hour.csv")


def cli_environment(tracking_uri: str) -> dict[str, str]:
    """This process's environment for a child CLI: the given store, this venv's tools first on PATH."""
    environment = os.environ | {
        "MLFLOW_TRACKING_URI": tracking_uri,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}",
    }
    for name in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):
        environment.pop(name, None)
    return environment


def mlflow_command(*arguments: str) -> list[str]:
    """`mlflow run` of this project in the project's experiment."""
    return [
        str(VENV_BIN / "mlflow"),
        "run",
        str(PROJECT_DIR),
        "--experiment-name",
        EXPERIMENT_NAME,
        *arguments,
    ]


def mlflow_run(
    tracking_uri: str, *arguments: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """The real `mlflow run` CLI on this project, run to the end."""
    environment = cli_environment(tracking_uri) | (env or {})
    return subprocess.run(
        mlflow_command(*arguments),
        env=environment,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_SECONDS,
        check=False,
    )


def runs_by_entry_point(client: MlflowClient) -> dict[str, list[mlflow.entities.Run]]:
    """Every run of the experiment, grouped by its mlflow.project.entryPoint tag."""
    experiment = client.get_experiment_by_name(EXPERIMENT_NAME)
    grouped: dict[str, list] = {}
    if experiment is None:
        return grouped
    for run in client.search_runs([experiment.experiment_id], max_results=1000):
        grouped.setdefault(run.data.tags.get("mlflow.project.entryPoint", "?"), []).append(run)
    return grouped


def wait_until_healthy(url: str, server: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    """Return once `url` answers; fail with the end of the server's log if it exits or never answers."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(log.read_text()[-3000:]) from None
            time.sleep(0.5)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def tracking_server(tmp_path: Path) -> Iterator[str]:
    """A real `mlflow server` on a free localhost port, with its own SQLite store and artifact folder."""
    port = free_port()
    log = (tmp_path / "server.log").open("w")
    store = f"sqlite:///{tmp_path / 'server.db'}"
    command = [
        str(VENV_BIN / "mlflow"),
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    command += ["--backend-store-uri", store, "--artifacts-destination", str(tmp_path / "artifacts")]
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    url = f"http://127.0.0.1:{port}"
    wait_until_healthy(f"{url}/health", server, tmp_path / "server.log")
    yield url
    server.terminate()
    server.wait(timeout=30)
    log.close()
