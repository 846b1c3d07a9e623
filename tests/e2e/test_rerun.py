"""Reruns through real processes: code changes in a copy of the project, SIGTERM and SIGKILL during
train, and a tracking server that is down."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Run

from plumbing import settings
from plumbing.names import MARKED_FAILED_TAG, PID_TAG, STEPS
from tests.helpers import (
    ALL_RAN,
    ALL_REUSED,
    PROJECT_DIR,
    PROJECT_FILES,
    actions,
    cli_environment,
    dash_p,
    mlflow_command,
    mlflow_run,
    module_command,
    pipeline,
    runs_by_entry_point,
)
from tests.plumbing.test_rerun import SMALL_XGB

SLOW_XGB = ("n_estimators=20000", "bagged_seeds=1")  # long enough to be interrupted mid-fit on the small data


def copy_project(target: Path) -> Path:
    target.mkdir()
    for name in PROJECT_FILES:
        source = PROJECT_DIR / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target / name)
    return target


def run_module(project: Path, tracking_uri: str, data: Path, *extra: str) -> subprocess.CompletedProcess:
    """`python -m steps.main` in a copy of the project (as `mlflow run --env-manager local` would run it)."""
    command = module_command(data, "--n_estimators", "30", "--bagged_seeds", "1", *extra)
    environment = os.environ | {"MLFLOW_TRACKING_URI": tracking_uri}
    result = subprocess.run(
        command, cwd=project, env=environment, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def newest_parent(client: MlflowClient) -> str:
    return runs_by_entry_point(client)["main"][0].info.run_id


def test_code_changes(client, tracking_uri: str, tmp_path: Path, small_csv: Path) -> None:
    project = copy_project(tmp_path / "project")
    run_module(project, tracking_uri, small_csv)
    assert actions(client, newest_parent(client)) == ALL_RAN

    (project / "README.md").write_text("only the README changed\n")
    run_module(project, tracking_uri, small_csv)
    assert actions(client, newest_parent(client)) == ALL_REUSED

    featurize = project / "steps" / "featurize.py"
    featurize.write_text(featurize.read_text().replace("indent=2", "indent=4"))  # features.json changes
    result = run_module(project, tracking_uri, small_csv)
    assert actions(client, newest_parent(client)) == {
        "ingest": "reused",
        "featurize": "ran",
        "train": "ran",
        "evaluate": "ran",
        "register": "ran",
    }
    assert "code: steps/featurize.py" in result.stdout
    assert "inputs: features" in result.stdout

    featurize.write_text(featurize.read_text() + "\n# a comment changes the code, not the output\n")
    run_module(project, tracking_uri, small_csv)
    assert actions(client, newest_parent(client)) == {
        "ingest": "reused",
        "featurize": "ran",
        "train": "reused",
        "evaluate": "reused",
        "register": "reused",
    }


def test_a_change_to_the_code_a_model_carries_registers_a_new_version(
    client, tracking_uri: str, tmp_path: Path, small_csv: Path
) -> None:
    """serving/model.py ships inside the model: changing it changes the model, so evaluate and register
    run again and the registry gets a version carrying the new code."""
    project = copy_project(tmp_path / "project")
    passes_the_gate = ("--n_estimators", "200", "--bagged_seeds", "1")
    run_module(project, tracking_uri, small_csv, *passes_the_gate)
    name = settings.parameter_defaults("main")["model_name"]
    assert len(client.search_model_versions(f"name = '{name}'")) == 1

    loader = project / "serving" / "model.py"
    loader.write_text(loader.read_text().replace("send a table of records", "send a table of hourly records"))
    run_module(project, tracking_uri, small_csv, *passes_the_gate)
    assert actions(client, newest_parent(client)) == {
        "ingest": "reused",
        "featurize": "reused",
        "train": "ran",
        "evaluate": "ran",
        "register": "ran",
    }
    versions = client.search_model_versions(f"name = '{name}'", order_by=["version_number DESC"])
    assert len(versions) == 2
    newest = f"models:/{name}/{versions[0].version}"
    shipped = Path(mlflow.artifacts.download_artifacts(artifact_uri=newest, dst_path=str(tmp_path / "new")))
    carried = next(shipped.rglob("serving/model.py")).read_text()
    assert "send a table of hourly records" in carried


def wait_for_running(client: MlflowClient, step: str, process: subprocess.Popen, timeout: float = 120) -> Run:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        running = [run for run in runs_by_entry_point(client).get(step, []) if run.info.status == "RUNNING"]
        if running:
            return running[0]
        time.sleep(0.2)
    ended = f"; the pipeline ended: {process.communicate()[1][-2000:]}" if process.poll() is not None else ""
    raise AssertionError(f"no {step} run started within {timeout} s{ended}")


def start_pipeline(tracking_uri: str, data: Path, *parameters: str) -> subprocess.Popen:
    """`mlflow run` started in the background."""
    arguments = [
        item for parameter in (f"data={data}", "test_days=7", *parameters) for item in ("-P", parameter)
    ]
    command = mlflow_command("--env-manager", "local", *arguments)
    return subprocess.Popen(
        command, env=cli_environment(tracking_uri), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_sigterm_during_train_then_resume(client, tracking_uri: str, small_csv: Path) -> None:
    process = start_pipeline(tracking_uri, small_csv, *SLOW_XGB)
    train_run = wait_for_running(client, "train", process)
    os.kill(int(train_run.data.tags[PID_TAG]), signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode != 0
    assert "stopped by SIGTERM" in stderr
    runs = runs_by_entry_point(client)
    assert client.get_run(train_run.info.run_id).info.status == "KILLED"
    assert runs["main"][0].info.status in ("KILLED", "FAILED")
    assert "evaluate" not in runs
    assert not [run for group in runs.values() for run in group if run.info.status == "RUNNING"]

    resumed = mlflow_run(  # another train: the killed one never finished, so train runs either way
        tracking_uri,
        "--env-manager",
        "local",
        *dash_p(f"data={small_csv}", "test_days=7", "n_estimators=300"),
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert actions(client, newest_parent(client)) == {
        "ingest": "reused",
        "featurize": "reused",
        "train": "ran",
        "evaluate": "ran",
        "register": "ran",
    }


def test_sigkilled_run_is_marked_failed_by_the_next_run(
    client, tracking_uri: str, experiment_id, small_csv: Path
) -> None:
    process = start_pipeline(tracking_uri, small_csv, *SLOW_XGB)
    train_run = wait_for_running(client, "train", process)
    os.kill(int(train_run.data.tags[PID_TAG]), signal.SIGKILL)
    process.communicate(timeout=120)
    assert client.get_run(train_run.info.run_id).info.status == "RUNNING", "SIGKILL leaves it RUNNING"

    result = pipeline(str(small_csv), "time", "7", "xgb", SMALL_XGB)
    killed = client.get_run(train_run.info.run_id)
    assert killed.info.status == "FAILED"
    assert killed.data.tags[MARKED_FAILED_TAG] == result.run_id
    assert train_run.info.run_id in result.marked_failed
    assert actions(client, result.run_id)["train"] == "ran", "a killed run is never a cache source"


def test_tracking_server_down_fails_fast_with_a_clear_line(tmp_path: Path) -> None:
    environment = os.environ | {"MLFLOW_TRACKING_URI": "http://127.0.0.1:9/"}
    started = time.monotonic()
    result = subprocess.run(
        [str(PROJECT_DIR / "scripts" / "rerun")], env=environment, capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert time.monotonic() - started < 30
    (line,) = result.stderr.strip().splitlines()
    assert "the tracking server http://127.0.0.1:9/ does not answer" in line


def test_the_scheduled_rerun_records_its_parameters_and_the_data_it_read(
    client, tracking_uri: str, experiment_id: str, small_csv: Path
) -> None:
    environment = cli_environment(tracking_uri)
    stale = PROJECT_DIR / ".tmp" / "rerun" / "left-by-a-run-two-days-ago"
    stale.mkdir(parents=True, exist_ok=True)
    two_days_ago = time.time() - 2 * 86400
    os.utime(stale, (two_days_ago, two_days_ago))
    result = subprocess.run(
        [
            str(PROJECT_DIR / "scripts" / "rerun"),
            "-P",
            f"data={small_csv}",
            "-P",
            "test_days=7",
            "-P",
            "model=ridge",
        ],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (parent,) = runs_by_entry_point(client)["main"]
    assert parent.data.params["data"] == str(small_csv)
    assert parent.data.params["data_sha256"] == hashlib.sha256(small_csv.read_bytes()).hexdigest()
    given = {"test_days": "7", "model": "ridge", "split": "time", "force": "false"}  # -P, MLproject defaults
    assert given.items() <= parent.data.params.items()
    assert parent.info.status == "FINISHED"
    assert sorted(runs_by_entry_point(client)) == sorted(["main", *STEPS])
    assert not stale.exists(), "the scheduled rerun clears what runs left in its temp folder over a day ago"
