"""Overlapping pipelines: the experiment lock, against SQLite and against a real MLflow tracking server."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from steps.errors import PipelineError
from steps.liveness import fail_abandoned_runs, liveness_tags
from steps.lock import OWNER_RUN_TAG, pipeline_lock
from steps.names import EXPERIMENT_NAME, PID_TAG, REUSED_FROM_TAG, STEPS
from tests.conftest import cli_environment, mlflow_command, mlflow_run, runs_by_entry_point

LOCK = f"{EXPERIMENT_NAME}.lock"


def test_a_held_lock_makes_the_second_pipeline_wait_then_give_up(client, experiment_id) -> None:
    client.create_experiment(LOCK, tags={**liveness_tags(), OWNER_RUN_TAG: "first"})  # held by a live process
    started = time.monotonic()
    with (
        pytest.raises(
            PipelineError,
            match=rf"another pipeline \(run first on .*pid {os.getpid()}\) still holds the lock {LOCK}",
        ),
        pipeline_lock(client, EXPERIMENT_NAME, "second", wait=1.5, stale_after=600),
    ):
        pass
    assert time.monotonic() - started >= 1.5


def test_a_lock_left_by_a_dead_process_is_taken_over(client, experiment_id) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    client.create_experiment(
        LOCK, tags={**liveness_tags(), PID_TAG: dead.stdout.strip(), OWNER_RUN_TAG: "dead"}
    )
    with pipeline_lock(client, EXPERIMENT_NAME, "next", wait=5, stale_after=600):
        assert client.get_experiment_by_name(LOCK).tags[OWNER_RUN_TAG] == "next"
    assert client.get_experiment_by_name(LOCK) is None, "released: the name is free again"


def test_a_lock_deleted_by_hand_is_taken_over(client, experiment_id) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    lock_id = client.create_experiment(LOCK, tags={**liveness_tags(), PID_TAG: dead.stdout.strip()})
    client.delete_experiment(lock_id)  # deleted in the UI: the name stays taken
    with pipeline_lock(client, EXPERIMENT_NAME, "next", wait=5, stale_after=600):
        assert client.get_experiment_by_name(LOCK).tags[OWNER_RUN_TAG] == "next"


def test_only_runs_a_pipeline_started_are_marked_failed(client, experiment_id) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    long_ago = int((time.time() - 3600) * 1000)
    notebook = client.create_run(experiment_id, start_time=long_ago)  # no liveness tags: not ours to judge
    crashed = client.create_run(
        experiment_id, start_time=long_ago, tags={**liveness_tags(), PID_TAG: dead.stdout.strip()}
    )
    live = client.create_run(experiment_id, start_time=long_ago, tags=liveness_tags())
    assert fail_abandoned_runs(client, experiment_id, "me", stale_after=600) == [crashed.info.run_id]
    assert [client.get_run(run.info.run_id).info.status for run in (notebook, crashed, live)] == [
        "RUNNING",
        "FAILED",
        "RUNNING",
    ]


def test_two_reruns_at_once_against_a_tracking_server(tracking_server: str, small_csv: Path) -> None:
    """After a first run, two reruns with a new hyperparameter start together: one retrains, the other
    waits for it and then reuses every step."""
    common = ["--env-manager", "local", "-P", f"data={small_csv}", "-P", "test_days=7"]
    first_run = mlflow_run(tracking_server, *common, "-P", "n_estimators=30")
    assert first_run.returncode == 0, first_run.stderr[-3000:]

    command = mlflow_command(*common, "-P", "n_estimators=40")
    environment = cli_environment(tracking_server)
    reruns = [
        subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=300) for process in reruns]
    assert [process.returncode for process in reruns] == [0, 0], outputs[0][1][-2000:] + outputs[1][1][-2000:]
    assert any("waiting for another pipeline" in stderr for _, stderr in outputs)

    runs = runs_by_entry_point(MlflowClient(tracking_server))
    assert [run.info.status for run in runs["main"]] == ["FINISHED"] * 3
    for step in STEPS:
        did_work = [run for run in runs[step] if REUSED_FROM_TAG not in run.data.tags]
        expected = 2 if step in ("train", "evaluate", "register") else 1  # the first run's, and one rerun's
        assert len(runs[step]) == 3
        assert len(did_work) == expected, f"{step}: only one of the overlapping reruns does the work"
