"""Fixtures: a private tracking store per test, the real data when present, a real tracking server.
Tests under tests/e2e/ are marked `e2e`: `pytest -m "not e2e"` is the fast loop."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from plumbing.data_source import DATA_ENV_VAR, offline_copy
from plumbing.names import EXPERIMENT_NAME
from tests.helpers import VENV_BIN, free_port, wait_until_healthy
from tests.synthetic import hourly_table, write_csv

E2E_DIR = Path(__file__).resolve().parent / "e2e"
if os.environ.get("PYTEST_XDIST_WORKER"):
    # Each worker's libraries get one thread: OpenMP threads of two workers on the same cores (XGBoost's
    # fit) spin against each other and run many times slower.
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def pytest_configure(config: pytest.Config) -> None:
    """A relative BIKE_SHARING_DATA means relative to where pytest started: the tests change directory."""
    copy = offline_copy()
    if copy is not None:
        os.environ[DATA_ENV_VAR] = str(copy)


STACK_GROUP = "stack"


def worker_group(nodeid: str) -> str:
    """The tests one pytest-xdist worker runs together: a file's, or the stack tests' two files'."""
    path = nodeid.split("::", maxsplit=1)[0]
    return STACK_GROUP if Path(path).name.startswith("test_stack") else path


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/e2e/ goes through real CLIs and servers: mark it e2e. The longest groups go
    first, so that the workers of `pytest -n` finish together: the stack's, the other e2e files, the rest
    (a stable sort: a file's tests keep their order)."""
    for item in items:
        if E2E_DIR in item.path.parents:
            item.add_marker(pytest.mark.e2e)
    items.sort(key=lambda item: (worker_group(item.nodeid) != STACK_GROUP, E2E_DIR not in item.path.parents))


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """Under `pytest -n` (`make test`), each worker_group runs on one worker, in the order collected, so a
    file's module fixtures and the stack are built once. (pytest-xdist's own --dist loadgroup does not
    group under pytest 9.)"""
    from xdist.scheduler import LoadScopeScheduling  # noqa: PLC0415 - only under pytest -n

    class ByWorkerGroup(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return worker_group(nodeid)

    config.option.loadscopereorder = False  # keep the order above, not the largest test count first
    return ByWorkerGroup(config, log)


@pytest.fixture(scope="session")
def empty_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite store that MLflow has created and migrated once. Copying it costs milliseconds; creating
    a store runs MLflow's schema migrations, over a second each time."""
    folder = tmp_path_factory.mktemp("empty-store")
    path = folder / "mlflow.db"
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)  # the Default experiment's artifacts, never used by the tests, land here
        MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def tracking_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, empty_store: Path) -> str:
    """A fresh SQLite store with artifacts under tmp_path, for this process and any child process."""
    shutil.copyfile(empty_store, tmp_path / "mlflow.db")
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
    """The offline copy of the UCI data that BIKE_SHARING_DATA names. Under CI its absence is a failure,
    not a skip."""
    copy = offline_copy()
    if copy is not None and copy.exists():
        return copy
    if os.environ.get("CI"):
        pytest.fail("BIKE_SHARING_DATA must name the UCI data under CI (.ci/run sets it)")
    pytest.skip("set BIKE_SHARING_DATA to the UCI Bike Sharing data to run this test")


@pytest.fixture
def small_csv(tmp_path: Path) -> Path:
    """Six weeks of valid synthetic hourly data."""
    return write_csv(hourly_table(), tmp_path / "hour.csv")


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


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 64 KiB file system (tmpfs), so that a write really runs out of space."""
    folder = tmp_path / "small"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)], capture_output=True, check=False
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    yield folder
    subprocess.run(["umount", str(folder)], check=True)
