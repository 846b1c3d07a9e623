"""Faults in real processes: a pipeline killed between two calls to the registry, and a pipeline paused
(SIGSTOP, as a laptop's suspend does) while it holds the lock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml
from mlflow import MlflowClient

from plumbing.names import EXPERIMENT_NAME, HOST_TAG, MARKED_FAILED_TAG
from plumbing.registry import DECISION_TAG
from tests.e2e.test_rerun import copy_project, wait_for_running
from tests.helpers import (
    PROJECT_DIR,
    VENV_BIN,
    cli_environment,
    module_command,
    pipeline,
    runs_by_entry_point,
)
from tests.plumbing.test_registry import NAME, champion

# Liveness in seconds instead of minutes, so that a pause outlives the heartbeat within a test.
QUICK_LIVENESS = {"heartbeat_seconds": 1, "stale_after_seconds": 2, "lock_wait_seconds": 8}
PAUSE_SECONDS = 4  # twice stale_after_seconds
SLOW_TRAIN = ("--n_estimators", "1500", "--bagged_seeds", "1")  # two models: riders

# `python -m steps.main`, except that the process is SIGKILLed at the moment it would set an alias: the
# version exists, its alias and decision do not.
KILLED_BEFORE_THE_ALIAS = """
import os, signal, sys
from mlflow import MlflowClient
MlflowClient.set_registered_model_alias = lambda *args, **kwargs: os.kill(os.getpid(), signal.SIGKILL)
from steps.main import main
sys.argv = ["main", *sys.argv[1:]]
main()
"""


def test_a_registration_killed_before_its_alias_is_finished_by_the_next_run(
    client: MlflowClient, tracking_uri: str, experiment_id: str, small_csv: Path
) -> None:
    pipeline(str(small_csv), "time", "7", "ridge", {})
    arguments = ["--data", str(small_csv), "--test_days", "7", "--n_estimators", "200", "--bagged_seeds", "1"]
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_BEFORE_THE_ALIAS, *arguments],
        cwd=PROJECT_DIR,
        env=cli_environment(tracking_uri),
        capture_output=True,
        text=True,
        check=False,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert DECISION_TAG not in client.get_model_version(NAME, "2").tags
    assert champion(client) == "1"

    resumed = pipeline(str(small_csv), "time", "7", "xgb", {"n_estimators": "200", "bagged_seeds": "1"})
    assert resumed.registry.startswith(
        f"finished the interrupted registration of {NAME} version 2 as @champion"
    )
    assert champion(client) == "2"
    assert len(resumed.marked_failed) >= 2, "the killed pipeline's parent and register runs"


def project_with_quick_liveness(folder: Path) -> Path:
    project = copy_project(folder)
    config = yaml.safe_load((project / "config.yaml").read_text())
    config["pipeline"].update(QUICK_LIVENESS)
    (project / "config.yaml").write_text(yaml.safe_dump(config))
    return project


def start_paused_pipeline(
    project: Path, client: MlflowClient, tracking_uri: str, data: Path
) -> subprocess.Popen:
    """A pipeline stopped with SIGSTOP while it trains, holding the lock. Against a tracking server: a
    process paused inside a SQLite write would block every other writer of the file, whatever the lock."""
    first = subprocess.Popen(
        module_command(data, *SLOW_TRAIN),
        cwd=project,
        env=cli_environment(tracking_uri),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for_running(client, "train", first)
    os.kill(first.pid, signal.SIGSTOP)
    return first


def run_second(project: Path, tracking_uri: str, data: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        module_command(data, "--n_estimators", "50", "--bagged_seeds", "1"),
        cwd=project,
        env=cli_environment(tracking_uri),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_a_paused_pipeline_on_this_host_keeps_its_lock(
    tracking_server: str, tmp_path: Path, small_csv: Path
) -> None:
    client, tracking_uri = MlflowClient(tracking_server), tracking_server
    project = project_with_quick_liveness(tmp_path / "project")
    first = start_paused_pipeline(project, client, tracking_uri, small_csv)
    try:
        time.sleep(PAUSE_SECONDS)
        second = run_second(project, tracking_uri, small_csv)
    finally:
        os.kill(first.pid, signal.SIGCONT)
    _, first_log = first.communicate(timeout=300)
    assert second.returncode == 1
    assert "still holds the lock" in second.stderr.splitlines()[-1]
    assert first.returncode == 0, first_log[-3000:]
    runs = runs_by_entry_point(client)
    (refused,) = [run for run in runs["main"] if run.info.status == "FAILED"]  # the second's, which never ran
    assert {run.info.status for group in runs.values() for run in group if run != refused} == {"FINISHED"}


def test_a_pipeline_that_lost_its_lock_stops_and_never_finishes_a_run_marked_failed(
    tracking_server: str, tmp_path: Path, small_csv: Path
) -> None:
    client, tracking_uri = MlflowClient(tracking_server), tracking_server
    project = project_with_quick_liveness(tmp_path / "project")
    first = start_paused_pipeline(project, client, tracking_uri, small_csv)
    try:
        # As if the first pipeline ran on another host (a suspended laptop): only its heartbeat speaks for it.
        client.set_registered_model_tag(f"{EXPERIMENT_NAME}.lock", HOST_TAG, "laptop")
        for group in runs_by_entry_point(client).values():
            for run in group:
                client.set_tag(run.info.run_id, HOST_TAG, "laptop")
        time.sleep(PAUSE_SECONDS)
        second = run_second(project, tracking_uri, small_csv)
    finally:
        os.kill(first.pid, signal.SIGCONT)
    _, first_log = first.communicate(timeout=300)
    assert second.returncode == 0, second.stderr[-3000:]
    assert first.returncode == 1
    assert "was marked FAILED by pipeline run" in first_log or "lost the lock" in first_log, first_log[-3000:]
    runs = [run for group in runs_by_entry_point(client).values() for run in group]
    marked = [client.get_run(run.info.run_id) for run in runs if MARKED_FAILED_TAG in run.data.tags]
    assert len(marked) >= 2, "the first pipeline's parent and train runs"
    assert {run.info.status for run in marked} == {"FAILED"}
    assert "RUNNING" not in {run.info.status for run in runs}


def test_a_run_mlflow_run_leaves_before_the_project_starts_is_cleaned_up_by_a_later_pipeline(
    client: MlflowClient, tracking_uri: str, experiment_id: str, tmp_path: Path, small_csv: Path
) -> None:
    """`mlflow run -P 'lr!=0.1'` creates its run, then crashes on the name before any project code runs."""
    project = copy_project(tmp_path / "project")
    config = yaml.safe_load((project / "config.yaml").read_text())
    config["pipeline"]["orphan_after_seconds"] = 1
    (project / "config.yaml").write_text(yaml.safe_dump(config))
    run_project = [str(VENV_BIN / "mlflow"), "run", str(project)]
    options = ["--experiment-name", EXPERIMENT_NAME, "--env-manager", "local", "-P", "lr!=0.1"]
    crashed = subprocess.run(
        [*run_project, *options],
        env=cli_environment(tracking_uri),
        capture_output=True,
        text=True,
        check=False,
    )
    assert crashed.returncode != 0
    (orphan,) = client.search_runs([experiment_id], "attributes.status = 'RUNNING'")
    time.sleep(1.5)
    later = subprocess.run(
        module_command(small_csv, "--n_estimators", "30", "--bagged_seeds", "1"),
        cwd=project,
        env=cli_environment(tracking_uri),
        capture_output=True,
        text=True,
        check=False,
    )
    assert later.returncode == 0, later.stderr[-3000:]
    assert client.get_run(orphan.info.run_id).info.status == "FAILED"
    assert "RUNNING" not in {run.info.status for run in client.search_runs([experiment_id])}
