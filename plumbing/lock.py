"""One pipeline at a time per experiment, and clean-up after pipelines that died.

The lock is an MLflow experiment named `<experiment>.lock`. A tracking store creates an experiment name
at most once, so creating it is an atomic test-and-set on every store: a local SQLite file, a database,
or a remote tracking server over REST. Its tags say who holds it (host, pid, run) and a heartbeat.
A second pipeline waits for the lock (up to `lock_wait_seconds`) and then exits with a clear message.
A lock whose holder is gone (plumbing/liveness.py: its process on this host has exited, or, from another
host, its heartbeat is older than `stale_after_seconds`) is taken over.

The lock is fenced: its holder calls `check()` before each step, and stops with a clear error once the lock
is no longer its own (a holder on another host, paused longer than `stale_after_seconds`, was taken over).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from demand.errors import PipelineError
from plumbing.liveness import BEATING_LOCKS, is_abandoned, liveness_tags
from plumbing.names import HOST_TAG, PID_TAG

log = logging.getLogger(__name__)
OWNER_RUN_TAG = "pipeline.owner_run"
POLL_SECONDS = 1.0


@dataclass(frozen=True)
class HeldLock:
    """The lock this process holds: experiment `lock_id` named `name`, owned by run `owner_run_id`."""

    client: MlflowClient
    name: str
    lock_id: str
    owner_run_id: str

    def check(self) -> None:
        """Raise PipelineError unless the lock is still this holder's."""
        try:
            lock = self.client.get_experiment(self.lock_id)
            held = lock.lifecycle_stage == "active" and lock.name == self.name
            held = held and lock.tags.get(OWNER_RUN_TAG) == self.owner_run_id
        except MlflowException as error:
            if error.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise  # the store did not answer: that says nothing about who holds the lock
            held = False
        if not held:
            try:
                taker = self.client.get_experiment_by_name(self.name)
            except MlflowException:
                taker = None
            by = f" to run {taker.tags.get(OWNER_RUN_TAG)}" if taker is not None else ""
            raise PipelineError(
                f"this pipeline lost the lock {self.name}{by}: it did not beat for longer than "
                "pipeline.stale_after_seconds (paused or suspended?); stopping, the other pipeline carries on"
            )


@contextmanager
def pipeline_lock(
    client: MlflowClient,
    experiment_name: str,
    owner_run_id: str,
    *,
    wait: float,
    stale_after: float,
) -> Iterator[HeldLock]:
    """Hold `<experiment>.lock` for the duration; wait up to `wait` seconds for another holder."""
    name = f"{experiment_name}.lock"
    lock_id = _acquire(client, name, owner_run_id, wait, stale_after)
    BEATING_LOCKS.add(lock_id)
    try:
        yield HeldLock(client, name, lock_id, owner_run_id)
    finally:
        BEATING_LOCKS.discard(lock_id)
        _discard(client, lock_id, f"{name}.released.{lock_id}")  # on failure the next run takes it over


def _acquire(client: MlflowClient, name: str, owner_run_id: str, wait: float, stale_after: float) -> str:
    deadline = time.monotonic() + wait
    announced = False
    while True:
        try:
            return client.create_experiment(name, tags={**liveness_tags(), OWNER_RUN_TAG: owner_run_id})
        except MlflowException as error:
            if error.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        holder = client.get_experiment_by_name(name)
        if holder is None:  # released between our two calls
            continue
        tags = holder.tags
        holder_text = f"run {tags.get(OWNER_RUN_TAG)} on {tags.get(HOST_TAG)}, pid {tags.get(PID_TAG)}"
        if is_abandoned(tags, holder.creation_time / 1000, time.time(), stale_after):
            log.warning("taking over %s: its holder (%s) is gone", name, holder_text)
            # By id, not by name: if someone else took it over first, this touches only the dead lock.
            if _discard(client, holder.experiment_id, f"{name}.abandoned.{holder.experiment_id}"):
                continue
            holder_text += (
                f"; it could not be removed, so rename or delete experiment {holder.experiment_id} by hand"
            )
        if time.monotonic() > deadline:
            raise PipelineError(
                f"another pipeline ({holder_text}) still holds the lock {name} after {wait:.0f} s; "
                "let it finish, or raise pipeline.lock_wait_seconds in config.yaml"
            )
        if not announced:
            log.info("waiting for another pipeline (%s) to finish", holder_text)
            announced = True
        time.sleep(POLL_SECONDS)


def _discard(client: MlflowClient, experiment_id: str, new_name: str) -> bool:
    """Free the lock's name: rename the experiment, then delete it. False if the store refused."""
    try:
        if client.get_experiment(experiment_id).lifecycle_stage == "deleted":
            client.restore_experiment(experiment_id)  # a deleted experiment keeps its name until renamed
        client.rename_experiment(experiment_id, new_name)
        client.delete_experiment(experiment_id)
    except MlflowException as error:
        log.warning("could not remove lock experiment %s: %s", experiment_id, error)
        return False
    return True
