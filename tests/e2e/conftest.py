"""The team stack, started once for the e2e tests that need it (tests/e2e/test_stack*.py)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import psycopg2
import pytest

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
