"""Telling a live run from one whose process died: who runs it, and a heartbeat while it runs.

Every step run is tagged with its host, pid and the process's start time; while a CLI runs, a background
thread refreshes the heartbeat tag of its open runs. On this host a run is judged by its process alone:
abandoned once that process has exited, alive while it runs, however old its heartbeat (a process paused
by SIGSTOP or a laptop's suspend is alive). A run from another host is abandoned when its heartbeat is
older than `stale_after_seconds`. A run whose parent is abandoned or ended is abandoned too.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from mlflow import MlflowClient

from plumbing.names import (
    ENTRY_POINT_TAG,
    HEARTBEAT_TAG,
    HOST_TAG,
    MARKED_FAILED_TAG,
    OWNER_TAG,
    PARENT_RUN_TAG,
    PID_START_TAG,
    PID_TAG,
)

log = logging.getLogger(__name__)
# In /proc/<pid>/stat, after the command name: the 20th field is the start time (field 22 in proc(5)).
PROC_STAT_STARTTIME = 19


def liveness_tags() -> dict[str, str]:
    """Who is running this run, so a later pipeline can tell a live run from one left by a crash."""
    pid = os.getpid()
    return {
        HOST_TAG: socket.gethostname(),
        PID_TAG: str(pid),
        PID_START_TAG: process_start(pid),
        HEARTBEAT_TAG: str(int(time.time())),
    }


def is_abandoned(tags: dict[str, str], started_seconds: float, now: float, stale_after: float) -> bool:
    """True when whoever ran this is gone: on this host, its process has exited (or its pid now belongs
    to another process); elsewhere, its heartbeat (or, without one, its start) is older than `stale_after`."""
    pid = tags.get(PID_TAG, "")
    if tags.get(HOST_TAG) == socket.gethostname() and pid.isdigit():
        return not same_process_alive(int(pid), tags.get(PID_START_TAG, ""))
    last_sign = float(tags.get(HEARTBEAT_TAG) or started_seconds)
    return now - last_sign > stale_after


def process_start(pid: int) -> str:
    """When process `pid` started, in clock ticks since boot (Linux's /proc); "" where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rpartition(")")[2].split()[PROC_STAT_STARTTIME]


def same_process_alive(pid: int, started: str) -> bool:
    """`pid` runs, and is the process that started at `started` (when that was recorded and is known)."""
    if not pid_alive(pid):
        return False
    now_started = process_start(pid)
    return not (started and now_started and started != now_started)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Heartbeat:
    """Refreshes the heartbeat tag of this process's open runs and held locks from a background thread,
    while at least one `beating` block is open (the outermost step run opens one: plumbing/tracking.py)."""

    def __init__(self) -> None:
        self.runs: set[str] = set()  # open runs
        self.locks: dict[str, str] = {}  # held locks (registered model names): their owner run
        self._open = 0

    @contextmanager
    def beating(self, client: MlflowClient, interval: float) -> Iterator[None]:
        """Beat while the block runs; nested blocks share the one thread."""
        self._open += 1
        if self._open > 1:
            try:
                yield
            finally:
                self._open -= 1
            return
        stop = threading.Event()
        thread = threading.Thread(
            target=self._beat, args=(client, interval, stop), name="heartbeat", daemon=True
        )
        thread.start()
        try:
            yield
        finally:
            self._open -= 1
            stop.set()
            thread.join(timeout=interval)

    def _beat(self, client: MlflowClient, interval: float, stop: threading.Event) -> None:
        while not stop.wait(interval):
            now = str(int(time.time()))
            beats = [(client.set_tag, run_id) for run_id in list(self.runs)]
            beats += [(_beat_lock(client, owner), name) for name, owner in list(self.locks.items())]
            for set_tag, target in beats:
                try:
                    set_tag(target, HEARTBEAT_TAG, now)
                except Exception as error:  # one missed beat is not fatal, and must not skip the others
                    log.warning("heartbeat for %s failed: %s", target, error)


# The process's one heartbeat: the runs and locks of a process are alive together or dead together.
HEARTBEAT = Heartbeat()


def _beat_lock(client: MlflowClient, owner: str) -> Callable[[str, str, str], None]:
    """Refresh a lock's heartbeat only while `owner` still holds it: a holder that lost its lock must not
    keep the new holder's lock looking alive."""

    def beat(name: str, tag: str, value: str) -> None:
        if client.get_registered_model(name).tags.get(OWNER_TAG) == owner:
            client.set_registered_model_tag(name, tag, value)

    return beat


def fail_abandoned_runs(
    client: MlflowClient, experiment_id: str, by_run_id: str, stale_after: float, orphan_after: float
) -> list[str]:
    """Mark FAILED every RUNNING run of the experiment whose pipeline is gone; return their ids.

    A run no pipeline tagged (a notebook's, or one `mlflow run` created and then crashed before the
    project's code started, e.g. on a -P name MLflow rejects) is judged by its parent, if it has one, or
    else as an orphan of `mlflow run`, once older than `orphan_after` seconds: an `mlflow run` can spend
    minutes building an env. A notebook's run with neither is never judged.
    """
    now = time.time()
    running = {
        run.info.run_id: run
        for run in client.search_runs([experiment_id], "attributes.status = 'RUNNING'", max_results=1000)
    }
    verdicts: dict[str, bool] = {by_run_id: False}

    def abandoned(run_id: str) -> bool:
        if run_id not in verdicts:
            run = running[run_id]
            tags, started = run.data.tags, run.info.start_time / 1000
            parent = tags.get(PARENT_RUN_TAG)
            verdicts[run_id] = False  # a cycle of parents, should a store ever hold one, ends here
            if HOST_TAG in tags:
                gone = is_abandoned(tags, started, now, stale_after)
            else:
                gone = ENTRY_POINT_TAG in tags and now - started > orphan_after
            verdicts[run_id] = gone or (parent is not None and (parent not in running or abandoned(parent)))
        return verdicts[run_id]

    failed = [run_id for run_id in running if abandoned(run_id)]
    for run_id in failed:
        client.set_tag(run_id, MARKED_FAILED_TAG, by_run_id)
        client.set_terminated(run_id, "FAILED")
    return failed
