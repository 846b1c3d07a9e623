"""Telling a live run from one whose process died: who runs it, and a heartbeat while it runs.

Every step run is tagged with its host and pid; while a CLI runs, a background thread refreshes the
heartbeat tag of its open runs. A run is abandoned when its process on this host has exited, or when its
heartbeat is older than `stale_after_seconds` (a crash or power loss on another host).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from mlflow import MlflowClient

from plumbing.names import HEARTBEAT_TAG, HOST_TAG, MARKED_FAILED_TAG, PID_TAG

log = logging.getLogger(__name__)
BEATING_RUNS: set[str] = set()  # the open runs of this process, which the heartbeat refreshes
BEATING_LOCKS: set[str] = set()  # the locks (experiment ids) this process holds
_beating = False


def liveness_tags() -> dict[str, str]:
    """Who is running this run, so a later pipeline can tell a live run from one left by a crash."""
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid()), HEARTBEAT_TAG: str(int(time.time()))}


def is_abandoned(tags: dict[str, str], started_seconds: float, now: float, stale_after: float) -> bool:
    """True when whoever ran this is gone: its process on this host has exited, or its heartbeat (or,
    without one, its start) is older than `stale_after` seconds."""
    pid = tags.get(PID_TAG, "")
    if tags.get(HOST_TAG) == socket.gethostname() and pid.isdigit() and not pid_alive(int(pid)):
        return True
    last_sign = float(tags.get(HEARTBEAT_TAG) or started_seconds)
    return now - last_sign > stale_after


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def heartbeat(client: MlflowClient, interval: float) -> Iterator[None]:
    """Refresh the heartbeat of this process's open runs and locks from a background thread.
    Nested uses share the one thread."""
    global _beating  # noqa: PLW0603 - one heartbeat thread per process
    if _beating:
        yield
        return
    stop = threading.Event()
    thread = threading.Thread(target=_beat, args=(client, interval, stop), name="heartbeat", daemon=True)
    _beating = True
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=interval)
        _beating = False


def _beat(client: MlflowClient, interval: float, stop: threading.Event) -> None:
    while not stop.wait(interval):
        now = str(int(time.time()))
        beats = [(client.set_tag, run_id) for run_id in list(BEATING_RUNS)]
        beats += [(client.set_experiment_tag, experiment_id) for experiment_id in list(BEATING_LOCKS)]
        for set_tag, target in beats:
            try:
                set_tag(target, HEARTBEAT_TAG, now)
            except Exception as error:  # one missed beat is not fatal, and must not skip the others
                log.warning("heartbeat for %s failed: %s", target, error)


def fail_abandoned_runs(
    client: MlflowClient, experiment_id: str, by_run_id: str, stale_after: float
) -> list[str]:
    """Mark FAILED every RUNNING run of the experiment whose process is gone; return their ids."""
    now = time.time()
    failed = []
    for run in client.search_runs([experiment_id], "attributes.status = 'RUNNING'", max_results=1000):
        if run.info.run_id == by_run_id or HOST_TAG not in run.data.tags:
            continue  # ourselves, or a run no pipeline started (a notebook, an `mlflow run` still building)
        if is_abandoned(run.data.tags, run.info.start_time / 1000, now, stale_after):
            client.set_tag(run.info.run_id, MARKED_FAILED_TAG, by_run_id)
            client.set_terminated(run.info.run_id, "FAILED")
            failed.append(run.info.run_id)
    return failed
