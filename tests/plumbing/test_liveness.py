"""Liveness: runs a dead pipeline left are marked FAILED by the next, and a live process (paused, old
heartbeat) is never judged gone."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest

from demand.errors import PipelineError
from plumbing.liveness import fail_abandoned_runs, is_abandoned, liveness_tags
from plumbing.names import (
    ENTRY_POINT_TAG,
    HEARTBEAT_TAG,
    HOST_TAG,
    MARKED_FAILED_TAG,
    PARENT_RUN_TAG,
    PID_START_TAG,
    PID_TAG,
)
from plumbing.tracking import step_run

ORPHAN_AFTER = 900


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
    assert fail_abandoned_runs(client, experiment_id, "me", 600, ORPHAN_AFTER) == [crashed.info.run_id]
    assert [client.get_run(run.info.run_id).info.status for run in (notebook, crashed, live)] == [
        "RUNNING",
        "FAILED",
        "RUNNING",
    ]


def test_a_step_run_under_a_dead_pipeline_is_marked_failed_whatever_its_heartbeat(
    client, experiment_id
) -> None:
    """The parent's host went quiet; its last step started after the last beat, so its own heartbeat is
    fresh. It must not survive the takeover RUNNING."""
    now = time.time()
    elsewhere = {HOST_TAG: "elsewhere", PID_TAG: "4242"}
    parent = client.create_run(
        experiment_id,
        start_time=int((now - 900) * 1000),
        tags={**elsewhere, HEARTBEAT_TAG: str(int(now - 300))},
    )
    step = client.create_run(
        experiment_id, tags={**elsewhere, HEARTBEAT_TAG: str(int(now)), PARENT_RUN_TAG: parent.info.run_id}
    )
    failed = fail_abandoned_runs(client, experiment_id, "me", 120, ORPHAN_AFTER)
    assert sorted(failed) == sorted([parent.info.run_id, step.info.run_id])


def test_a_run_mlflow_run_left_before_the_project_started_is_failed_once_it_is_an_orphan(
    client, experiment_id
) -> None:
    """`mlflow run -P 'lr!=0.1'` creates its run, then crashes before any project code tags it."""
    project_tags = {ENTRY_POINT_TAG: "main"}
    old = client.create_run(
        experiment_id, start_time=int((time.time() - 2 * ORPHAN_AFTER) * 1000), tags=project_tags
    )
    young = client.create_run(experiment_id, tags=project_tags)  # may still be building its env
    assert fail_abandoned_runs(client, experiment_id, "me", 120, ORPHAN_AFTER) == [old.info.run_id]
    assert client.get_run(young.info.run_id).info.status == "RUNNING"


def test_a_run_marked_failed_by_another_pipeline_is_never_finished(client, experiment_id) -> None:
    with pytest.raises(PipelineError, match=r"was marked FAILED by pipeline run other while this process"):  # noqa: SIM117
        with step_run("train") as run:
            client.set_tag(run.info.run_id, MARKED_FAILED_TAG, "other")
            client.set_terminated(run.info.run_id, "FAILED")
    assert client.get_run(run.info.run_id).info.status == "FAILED"


def test_a_live_process_on_this_host_is_not_abandoned_however_old_its_heartbeat() -> None:
    """A process paused by SIGSTOP, or a suspended laptop, is alive: it keeps its runs and its lock."""
    now = time.time()
    tags = {**liveness_tags(), HEARTBEAT_TAG: str(int(now - 3600))}
    assert not is_abandoned(tags, now - 7200, now, stale_after=60)


def test_a_pid_that_now_belongs_to_another_process_is_abandoned() -> None:
    tags = {**liveness_tags(), PID_START_TAG: "1"}  # this pid, but a process that started at boot
    now = time.time()
    assert is_abandoned(tags, now, now, stale_after=3600)


def test_an_exited_process_on_this_host_is_abandoned_at_once() -> None:
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    now = time.time()
    tags = {HOST_TAG: socket.gethostname(), PID_TAG: child.stdout.strip(), HEARTBEAT_TAG: str(int(now))}
    assert is_abandoned(tags, now, now, stale_after=3600)


def test_another_host_is_judged_by_its_heartbeat() -> None:
    now = time.time()
    tags = {HOST_TAG: "elsewhere", PID_TAG: "1", HEARTBEAT_TAG: str(int(now - 30))}
    assert not is_abandoned(tags, now - 60, now, stale_after=60)
    assert is_abandoned({**tags, HEARTBEAT_TAG: str(int(now - 61))}, now - 100, now, stale_after=60)
    assert is_abandoned({}, started_seconds=now - 61, now=now, stale_after=60), (
        "no tags: judged by start time"
    )


def test_a_run_judged_an_orphan_before_the_pipeline_started_does_no_work(
    client, experiment_id, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`mlflow run` built its env for longer than orphan_after_seconds; another pipeline marked its run."""
    waiting = client.create_run(experiment_id, tags={ENTRY_POINT_TAG: "main"})
    client.set_tag(waiting.info.run_id, MARKED_FAILED_TAG, "other")
    client.set_terminated(waiting.info.run_id, "FAILED")
    monkeypatch.setenv("MLFLOW_RUN_ID", waiting.info.run_id)  # what `mlflow run` hands its entry point
    worked = []
    with pytest.raises(PipelineError, match=r"marked FAILED by pipeline run other before it started"):  # noqa: SIM117
        with step_run("main"):
            worked.append(True)
    assert worked == []
    assert client.get_run(waiting.info.run_id).info.status == "FAILED"
