"""One pipeline at a time per experiment (and one registration at a time per registered model).

The lock is a registered model named `<experiment>.lock`. A tracking store creates a registered model
name at most once (its primary key), so creating it is an atomic test-and-set on every store: a local
SQLite file, a database, or a remote tracking server over REST. Deleting a registered model removes it
for good, so a released lock leaves nothing behind. Its tags say who holds it (run, host, pid) and a
heartbeat; while it exists, the Model Registry lists it, with a description that says what it is.

A second pipeline waits for the lock, reading it with a back-off from 0.5 s to 10 s between looks (a read,
not a failed create, so it burns no database ids), for up to `lock_wait_seconds`; then it exits with a
clear message. A lock whose holder is gone (plumbing/liveness.py: its process on this host has exited, or,
from another host, its heartbeat is older than `stale_after_seconds`) is taken over, at once; so is a lock
no live pipeline vouches for: its owner run must be RUNNING and carry HOLDS_LOCK_TAG naming the lock (set
before the lock is created), which takes EDIT on that run's experiment to write.

The lock is fenced: its holder calls `check()` before each step, and stops with a clear error once the lock
is no longer its own (a holder on another host, paused longer than `stale_after_seconds`, was taken over).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from demand.errors import PipelineError
from plumbing.liveness import HEARTBEAT, is_abandoned, liveness_tags
from plumbing.names import HOLDS_LOCK_TAG, HOST_TAG, LOCK_SUFFIX, OWNER_TAG, PID_TAG

log = logging.getLogger(__name__)
FIRST_LOOK_SECONDS, LONGEST_LOOK_SECONDS = 0.5, 10.0
DESCRIPTION = "A pipeline lock, not a model: held while a pipeline runs, deleted when it ends."


@dataclass(frozen=True)
class HeldLock:
    """The lock `name` this process holds for run `owner_run_id`."""

    client: MlflowClient
    name: str
    owner_run_id: str

    def check(self) -> None:
        """Raise PipelineError unless the lock is still this holder's."""
        holder = _holder(self.client, self.name)
        if holder is None or holder.tags.get(OWNER_TAG) != self.owner_run_id:
            by = f" to run {holder.tags.get(OWNER_TAG)}" if holder is not None else ""
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
    name = f"{experiment_name}{LOCK_SUFFIX}"
    client.set_tag(owner_run_id, HOLDS_LOCK_TAG, name)  # vouches for the lock it is about to create
    _acquire(client, name, owner_run_id, wait, stale_after)
    lock = HeldLock(client, name, owner_run_id)
    HEARTBEAT.locks[name] = owner_run_id
    try:
        yield lock
    finally:
        HEARTBEAT.locks.pop(name, None)
        _release(lock)  # on a failure to release, the next pipeline takes it over


def _acquire(client: MlflowClient, name: str, owner_run_id: str, wait: float, stale_after: float) -> None:
    deadline = time.monotonic() + wait
    pause, announced = FIRST_LOOK_SECONDS, False
    while True:
        holder = _holder(client, name)
        if holder is None and _create(client, name, owner_run_id):
            return
        if holder is not None:
            holder_text = _who(holder)
            unvouched = _unvouched(client, holder, name)
            if unvouched or is_abandoned(
                holder.tags, holder.creation_timestamp / 1000, time.time(), stale_after
            ):
                log.warning("taking over %s: its holder (%s) is gone", name, unvouched or holder_text)
                if _take_over(client, name, holder, unvouched or holder_text):
                    continue
            if time.monotonic() > deadline:
                raise PipelineError(
                    f"another pipeline ({holder_text}) still holds the lock {name} after {wait:.0f} s; "
                    "let it finish, or raise pipeline.lock_wait_seconds in config.yaml"
                )
            if not announced:
                log.info("waiting for another pipeline (%s) to finish", holder_text)
                announced = True
        time.sleep(min(pause, max(deadline - time.monotonic(), 0.05)))
        pause = min(pause * 2, LONGEST_LOOK_SECONDS)


def _holder(client: MlflowClient, name: str) -> Any | None:
    """The lock's registered model, or None when nobody holds it. A registered model of that name that is
    not a lock (only a lock carries the lock's description and an owner) stops the pipeline: it is never
    waited for, taken over or deleted."""
    try:
        model = client.get_registered_model(name)
    except MlflowException as error:
        if error.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise  # the store did not answer: that says nothing about who holds the lock
    if model.description != DESCRIPTION or OWNER_TAG not in model.tags:
        raise PipelineError(
            f"the registered model {name} is not a pipeline lock, but has the name this pipeline's lock "
            "takes; it is left as it is: rename it, or name the experiment or model otherwise"
        )
    return model


def _unvouched(client: MlflowClient, holder: Any, name: str) -> str | None:
    """Why no live pipeline vouches for the lock `holder`, or None when one does: its owner run is RUNNING
    and names this lock in a tag. Writing that tag takes EDIT on the run's experiment, so a login that may
    only read cannot make a lock of its own look held."""
    owner = holder.tags.get(OWNER_TAG, "")
    try:
        run = client.get_run(owner)
    except MlflowException as error:
        if error.error_code not in (
            "RESOURCE_DOES_NOT_EXIST",
            "INVALID_PARAMETER_VALUE",
            "PERMISSION_DENIED",
        ):
            raise  # the store did not answer: that says nothing about the holder
        return f"{_who(holder)}: no run {owner} this login can read holds it"
    if run.info.status != "RUNNING" or run.data.tags.get(HOLDS_LOCK_TAG) != name:
        return f"{_who(holder)}: its run is {run.info.status} and does not hold it"
    return None


def _who(holder: Any) -> str:
    """Who took the lock and when, from what the lock itself records."""
    tags, taken = holder.tags, datetime.fromtimestamp(holder.creation_timestamp / 1000, UTC)
    return (
        f"run {tags.get(OWNER_TAG)} on {tags.get(HOST_TAG)}, pid {tags.get(PID_TAG)}, "
        f"since {taken:%Y-%m-%d %H:%M:%S} UTC"
    )


def _create(client: MlflowClient, name: str, owner_run_id: str) -> bool:
    """Take the free lock; False when another pipeline took it first."""
    try:
        client.create_registered_model(
            name, tags={**liveness_tags(), OWNER_TAG: owner_run_id}, description=DESCRIPTION
        )
    except MlflowException as error:
        if error.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
        return False
    return True


def _take_over(client: MlflowClient, name: str, dead: Any, dead_text: str) -> bool:
    """Remove a dead holder's lock; True when it is gone. The lock is renamed aside first (atomic: of two
    takers, one succeeds), then deleted; should the renamed lock turn out to be a live one taken
    meanwhile, it is put back (its holder is fenced: it stops at its next check if that fails)."""
    owner = dead.tags.get(OWNER_TAG, "")
    aside = f"{name}.abandoned.{uuid.uuid4().hex}"
    try:
        now = client.get_registered_model(name)
        if now.tags.get(OWNER_TAG, "") != owner or now.creation_timestamp != dead.creation_timestamp:
            return True  # someone else took it over already: look again
        client.rename_registered_model(name, aside)
        renamed = client.get_registered_model(aside)
    except MlflowException as error:
        if error.error_code == "PERMISSION_DENIED":
            raise PipelineError(
                f"the lock {name} was left by a dead pipeline of another user ({dead_text}), and this login "
                f"may not remove it; ask its owner or an admin to delete the registered model {name}"
            ) from None
        return False  # the lock went away, or the store refused: look again after a pause
    if renamed.tags.get(OWNER_TAG, "") != owner:
        try:
            client.rename_registered_model(aside, name)  # not the dead lock: give it back
        except MlflowException:
            log.warning("could not give back the lock %s; its holder will stop at its next check", name)
        return False
    try:
        client.delete_registered_model(aside)
    except MlflowException as error:
        log.warning("could not delete the dead lock %s (%s); delete it by hand", aside, error.message[:200])
    return True


def _release(lock: HeldLock) -> None:
    """Delete the lock, if it is still this holder's."""
    try:
        lock.check()
        lock.client.delete_registered_model(lock.name)
    except (PipelineError, MlflowException) as error:
        log.warning("did not release %s: %s", lock.name, error)
