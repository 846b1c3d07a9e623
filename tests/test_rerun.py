"""Scheduled reruns: what is reused and what reruns, resuming after a kill, clean-up after a crash,
overlapping runs, growing data, and a tracking server that is down."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.entities import Run

from steps.names import (
    CACHE_KEY_TAG,
    MARKED_FAILED_TAG,
    OUTPUT_DIGEST_TAG,
    OUTPUTS_TAG,
    PID_TAG,
    REUSED_FROM_TAG,
    STEPS,
)  # fmt: skip
from tests.conftest import PROJECT_DIR, cli_environment, mlflow_command, mlflow_run, runs_by_entry_point
from tests.synthetic import hourly_table, write_csv
from tests.test_pipeline import pipeline

SMALL_XGB = {"n_estimators": "30"}
SLOW_XGB = "n_estimators=20000"  # long enough to be interrupted mid-fit on the small data
PROJECT_FILES = ("MLproject", "config.yaml", "README.md", "requirements.txt", "steps")


def actions(client: MlflowClient, parent_run_id: str) -> dict[str, str]:
    """'ran' or 'reused' for each step of one pipeline run, read back from the tracking store."""
    children = client.search_runs(
        [client.get_run(parent_run_id).info.experiment_id], f"tags.`mlflow.parentRunId` = '{parent_run_id}'"
    )
    return {
        run.data.tags["mlflow.project.entryPoint"]: "reused" if REUSED_FROM_TAG in run.data.tags else "ran"
        for run in children
    }


ALL_RAN = dict.fromkeys(STEPS, "ran")
ALL_REUSED = dict.fromkeys(STEPS, "reused")


def test_reuse_truth_table(client, experiment_id, tmp_path: Path) -> None:
    data = write_csv(hourly_table(days=42), tmp_path / "hour.csv")

    def rerun(overrides: dict[str, str] = SMALL_XGB, force: str = "false") -> dict[str, str]:
        result = pipeline(str(data), "time", "7", "xgb", overrides, force)
        return actions(client, result.run_id)

    assert rerun() == ALL_RAN
    assert rerun() == ALL_REUSED, "nothing changed: everything is reused"
    assert rerun({"n_estimators": "40"}) == {
        "ingest": "reused",
        "featurize": "reused",
        "train": "ran",
        "evaluate": "ran",
        "register": "ran",
    }
    assert rerun(force="train") == {
        "ingest": "reused",
        "featurize": "reused",
        "train": "ran",
        "evaluate": "ran",
        "register": "ran",
    }
    assert rerun(force="true") == ALL_RAN
    write_csv(hourly_table(days=43), data)  # one more day at the same path
    assert rerun() == ALL_RAN, "new data: everything reruns"

    reused = client.search_runs([experiment_id], f"tags.`{REUSED_FROM_TAG}` != ''")
    assert reused and all(run.data.tags[CACHE_KEY_TAG] for run in reused)
    sources = {run.data.tags[REUSED_FROM_TAG] for run in reused}
    assert all(REUSED_FROM_TAG not in client.get_run(source).data.tags for source in sources), (
        "reuse points at work"
    )


def test_a_reused_step_hands_on_the_outputs_of_the_run_that_did_the_work(
    client, experiment_id, small_csv: Path
) -> None:
    first = pipeline(str(small_csv), "time", "7", "xgb", SMALL_XGB)
    second = pipeline(str(small_csv), "time", "7", "xgb", SMALL_XGB)
    assert all(step.action == "reused" and step.why.startswith("same key as run") for step in second.steps)
    for before, after in zip(first.steps, second.steps, strict=True):
        original, marker = client.get_run(before.run_id).data.tags, client.get_run(after.run_id).data.tags
        assert marker[REUSED_FROM_TAG] == before.run_id
        assert marker[OUTPUTS_TAG] == original[OUTPUTS_TAG], f"{before.name}: the same model and tables"
        assert marker[OUTPUT_DIGEST_TAG] == original[OUTPUT_DIGEST_TAG]


def test_deleted_artifacts_are_not_reused(client, experiment_id, small_csv: Path) -> None:
    first = pipeline(str(small_csv), "time", "7", "xgb", SMALL_XGB)
    featurize_run = next(step.run_id for step in first.steps if step.name == "featurize")
    shutil.rmtree(Path(urlparse(client.get_run(featurize_run).info.artifact_uri).path) / "features")
    second = pipeline(str(small_csv), "time", "7", "xgb", SMALL_XGB)
    assert actions(client, second.run_id)["featurize"] == "ran"
    assert actions(client, second.run_id)["ingest"] == "reused"
    # featurize wrote the same bytes again, so what depends only on them is still reused
    assert actions(client, second.run_id)["train"] == "reused"


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
    command = [
        sys.executable,
        "-m",
        "steps.main",
        "--data",
        str(data),
        "--test_days",
        "7",
        "--n_estimators",
        "30",
        *extra,
    ]
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
        "ingest": "reused", "featurize": "ran", "train": "reused", "evaluate": "reused", "register": "reused",
    }  # fmt: skip


def wait_for_running(client: MlflowClient, step: str, timeout: float = 120) -> Run:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        running = [run for run in runs_by_entry_point(client).get(step, []) if run.info.status == "RUNNING"]
        if running:
            return running[0]
        time.sleep(0.2)
    raise AssertionError(f"no {step} run started within {timeout} s")


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
    process = start_pipeline(tracking_uri, small_csv, SLOW_XGB)
    train_run = wait_for_running(client, "train")
    os.kill(int(train_run.data.tags[PID_TAG]), signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode != 0
    assert "stopped by SIGTERM" in stderr
    runs = runs_by_entry_point(client)
    assert client.get_run(train_run.info.run_id).info.status == "KILLED"
    assert runs["main"][0].info.status in ("KILLED", "FAILED")
    assert "evaluate" not in runs
    assert not [run for group in runs.values() for run in group if run.info.status == "RUNNING"]

    resumed = mlflow_run(
        tracking_uri, "--env-manager", "local", "-P", f"data={small_csv}", "-P", "test_days=7", "-P", SLOW_XGB
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
    process = start_pipeline(tracking_uri, small_csv, SLOW_XGB)
    train_run = wait_for_running(client, "train")
    os.kill(int(train_run.data.tags[PID_TAG]), signal.SIGKILL)
    process.communicate(timeout=120)
    assert client.get_run(train_run.info.run_id).info.status == "RUNNING", "SIGKILL leaves it RUNNING"

    result = pipeline(str(small_csv), "time", "7", "xgb", SMALL_XGB)
    killed = client.get_run(train_run.info.run_id)
    assert killed.info.status == "FAILED"
    assert killed.data.tags[MARKED_FAILED_TAG] == result.run_id
    assert train_run.info.run_id in result.marked_failed
    assert actions(client, result.run_id)["train"] == "ran", "a killed run is never a cache source"


@pytest.mark.real_data
def test_growing_data_moves_the_test_window(client, experiment_id, real_data: Path, tmp_path: Path) -> None:
    hour_csv = real_data / "hour.csv" if real_data.is_dir() else real_data
    full = pd.read_csv(hour_csv, dtype=str)
    data = tmp_path / "hour.csv"
    full[full["dteday"] <= "2012-09-30"].to_csv(data, index=False)
    first = pipeline(str(data), "time", "92", "xgb", SMALL_XGB)
    shutil.copyfile(hour_csv, data)  # the source gained Q4 2012
    second = pipeline(str(data), "time", "92", "xgb", SMALL_XGB)
    assert actions(client, second.run_id) == ALL_RAN
    periods = [
        client.get_run(next(s.run_id for s in result.steps if s.name == "featurize")).data.params[
            "test_period"
        ]
        for result in (first, second)
    ]
    assert periods == ["2012-07-01..2012-09-30", "2012-10-01..2012-12-31"]


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
