"""The first run on a new store, through real processes: preflights started together on a new SQLite file,
a half-migrated store refused in one line and repaired, and `scripts/rerun` refusing a -P name that
would make `mlflow run` crash after creating its run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mlflow import MlflowClient

from scripts.store import REPAIR_COMMAND, leftover_tables
from tests.helpers import PROJECT_DIR, cli_environment
from tests.scripts.test_store import half_migrated


def preflight(uri: str, *arguments: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "scripts.preflight", *arguments],
        cwd=PROJECT_DIR,
        env=cli_environment(uri),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finished(process: subprocess.Popen) -> tuple[int, str]:
    _, stderr = process.communicate(timeout=120)
    return process.returncode, stderr


def test_first_runs_started_together_on_a_new_store_leave_it_whole(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'new' / 'mlflow.db'}"
    results = [finished(process) for process in [preflight(uri) for _ in range(4)]]
    assert [code for code, _ in results] == [0, 0, 0, 0], results
    assert leftover_tables(tmp_path / "new" / "mlflow.db") == []
    assert MlflowClient(uri).search_experiments()[0].name == "Default"


def test_a_half_migrated_store_is_one_line_with_the_repair_command(tmp_path: Path) -> None:
    uri, _, run_id = half_migrated(tmp_path, table_left_in_place=False)
    code, stderr = finished(preflight(uri))
    assert code == 1
    (line,) = stderr.strip().splitlines()
    assert "is half-migrated (table _alembic_tmp_tags" in line and REPAIR_COMMAND in line
    assert finished(preflight(uri, "--repair"))[0] == 0
    assert MlflowClient(uri).get_run(run_id).data.tags["kept"] == "yes"


def test_the_scheduled_rerun_refuses_a_bad_parameter_name_before_mlflow_run_creates_a_run(
    tmp_path: Path,
) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = subprocess.run(
        [str(PROJECT_DIR / "scripts" / "rerun"), "-P", "lr!=0.1"],
        env=cli_environment(uri),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: -P name 'lr!' is not one this project takes")
    assert not (tmp_path / "mlflow.db").exists() or not MlflowClient(uri).search_runs(["0"])
