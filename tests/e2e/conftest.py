"""The team stack, started once for the e2e tests that need it (tests/e2e/test_stack*.py), and a served
champion for each module that asks for one."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import mlflow
import psycopg2
import pytest

from plumbing.names import EXPERIMENT_NAME
from plumbing.plan import make_plan
from steps.main import run_pipeline
from tests.e2e.served import serving
from tests.e2e.stack import POSTGRES, Stack, read_env, stack_command


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("stack") / ".stack"
    database = f"mlflow_test_{secrets.token_hex(4)}"
    environment = os.environ | {"STACK_DIR": str(folder), "STACK_DB": database}
    try:
        started = stack_command(environment, "up")
        assert started.returncode == 0, started.stdout + started.stderr
        yield Stack(
            folder,
            read_env(folder / "env"),
            read_env(folder / "admin.env"),
            environment,
            [started.stdout, started.stderr],
        )
    finally:
        stack_command(environment, "down")
        for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
            os.environ.pop(name, None)
        connection = psycopg2.connect(POSTGRES)
        connection.autocommit = True
        with connection.cursor() as cursor:
            for name in (database, f"{database}_auth"):
                cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, real_data: Path) -> Iterator[tuple[str, str]]:
    """A champion registered by a real pipeline run, served by `python -m serving` with pickle off."""
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
    with serving(uri, folder / "serve.log") as url:
        yield url, uri
