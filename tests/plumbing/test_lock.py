"""The experiment lock and liveness: a held lock makes a pipeline wait, a dead holder's lock and runs are
taken over, and a live process is never judged gone."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

from demand.errors import PipelineError
from plumbing.liveness import fail_abandoned_runs, is_abandoned, liveness_tags
from plumbing.lock import OWNER_RUN_TAG, pipeline_lock
from plumbing.names import EXPERIMENT_NAME, HEARTBEAT_TAG, HOST_TAG, PID_TAG

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


def test_a_live_process_on_this_host_is_not_abandoned() -> None:
    now = time.time()
    tags = {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid()), HEARTBEAT_TAG: str(int(now))}
    assert not is_abandoned(tags, now, now, stale_after=60)


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
