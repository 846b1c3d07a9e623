"""The pipeline and registry locks: a held lock makes a pipeline wait, a lock no live pipeline holds is taken
over at once, and a registered model is never taken for a lock nor a lock for a model."""

from __future__ import annotations

import itertools
import os
import re
import socket
import subprocess
import sys
import time

import pytest
from mlflow.entities import ViewType

from demand.errors import PipelineError
from plumbing.liveness import liveness_tags
from plumbing.names import (
    EXPERIMENT_NAME,
    HOLDS_LOCK_TAG,
    OWNER_TAG,
    PID_TAG,
)
from plumbing.params import parse_model_name
from plumbing.pipeline.lock import DESCRIPTION, FIRST_LOOK_SECONDS, pipeline_lock

LOCK = f"{EXPERIMENT_NAME}.lock"
TAKEN_AT = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC"


def create_lock(client, tags: dict[str, str]) -> None:
    """A lock as another pipeline holds it."""
    client.create_registered_model(LOCK, tags=tags, description=DESCRIPTION)


def pipeline_run(client, experiment_id: str, holds: str | None = None) -> str:
    """A RUNNING run, as a pipeline's; `holds`: the lock it says it holds."""
    return client.create_run(experiment_id, tags={HOLDS_LOCK_TAG: holds} if holds else {}).info.run_id


@pytest.mark.parametrize(
    ("name", "tags", "description"),
    [
        (LOCK, {}, None),
        (LOCK, {OWNER_TAG: "squatter"}, "a model"),
        (f"registry.{EXPERIMENT_NAME}.lock", {}, None),
    ],
    ids=["a plain model", "a model with an owner tag", "the registry lock's name"],
)
def test_a_registered_model_that_is_not_a_lock_is_never_taken_for_one(
    client, experiment_id, name: str, tags: dict[str, str], description: str | None
) -> None:
    """Whatever made it, a registered model with a lock's name is not waited for, taken over or deleted:
    the pipeline stops at once with one line, and the model keeps its versions."""
    client.create_registered_model(name, tags=tags, description=description)
    client.create_model_version(name, "runs:/0123/model")
    experiment = name.removesuffix(".lock")
    started = time.monotonic()
    with (
        pytest.raises(PipelineError, match=rf"^the registered model {name} is not a pipeline lock"),
        pipeline_lock(client, experiment, pipeline_run(client, experiment_id), wait=30, stale_after=0),
    ):
        pass
    assert time.monotonic() - started < 5, "refused at once, not after the wait"
    assert [str(v.version) for v in client.search_model_versions(f"name = '{name}'")] == ["1"]


@pytest.mark.parametrize(
    "name", ["bike.lock", f"registry.{EXPERIMENT_NAME}.lock", "x.lock.abandoned.0123", "a.LOCK"]
)
def test_a_model_name_a_lock_takes_is_refused(name: str) -> None:
    if name == "a.LOCK":  # only the exact suffix is reserved: the registry's names are case-sensitive
        assert parse_model_name(name) == name
        return
    with pytest.raises(PipelineError, match=r"is reserved: registered models named \*\.lock are"):
        parse_model_name(name)


def test_a_held_lock_makes_the_second_pipeline_wait_then_give_up(client, experiment_id) -> None:
    first = pipeline_run(client, experiment_id, holds=LOCK)
    create_lock(client, {**liveness_tags(), OWNER_TAG: first})  # a live holder
    started = time.monotonic()
    with (
        pytest.raises(
            PipelineError,
            match=rf"\(run {first} on .*pid {os.getpid()}, since {TAKEN_AT}\) still holds the lock {LOCK}",
        ),
        pipeline_lock(
            client, EXPERIMENT_NAME, pipeline_run(client, experiment_id), wait=0.5, stale_after=600
        ),
    ):
        pass
    assert time.monotonic() - started >= 0.5


@pytest.mark.parametrize(
    ("owner", "why"),
    [
        ("no-such-run", "no run no-such-run this login can read holds it"),
        ("a run that does not say so", "its run is RUNNING and does not hold it"),
        ("a finished run", "its run is FINISHED and does not hold it"),
    ],
)
def test_a_lock_no_live_pipeline_vouches_for_is_taken_over_at_once(
    client, experiment_id, caplog: pytest.LogCaptureFixture, owner: str, why: str
) -> None:
    """Alive-looking tags (this host, this very pid, a fresh heartbeat) are not enough: the lock's owner run
    must be RUNNING and name the lock, which only a login that may edit that run can write."""
    if owner != "no-such-run":
        run_id = pipeline_run(client, experiment_id, holds=LOCK if owner == "a finished run" else None)
        if owner == "a finished run":
            client.set_terminated(run_id)
        owner = run_id
    create_lock(client, {**liveness_tags(), OWNER_TAG: owner})
    started = time.monotonic()
    with pipeline_lock(
        client, EXPERIMENT_NAME, pipeline_run(client, experiment_id), wait=60, stale_after=600
    ):
        assert time.monotonic() - started < FIRST_LOOK_SECONDS, "no wait for a lock no pipeline holds"
    assert f"taking over {LOCK}: its holder (run {owner} on" in caplog.text
    assert why in caplog.text


def test_a_lock_left_by_a_dead_process_is_taken_over_at_once_naming_who_left_it(
    client, experiment_id, caplog: pytest.LogCaptureFixture
) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    pid = dead.stdout.strip()
    dead_run = pipeline_run(client, experiment_id, holds=LOCK)
    create_lock(client, {**liveness_tags(), PID_TAG: pid, OWNER_TAG: dead_run})
    started = time.monotonic()
    with pipeline_lock(
        client, EXPERIMENT_NAME, nxt := pipeline_run(client, experiment_id), wait=60, stale_after=600
    ):
        assert time.monotonic() - started < FIRST_LOOK_SECONDS, "no wait for a holder known to be gone"
        assert client.get_registered_model(LOCK).tags[OWNER_TAG] == nxt
    assert re.search(
        rf"taking over {LOCK}: its holder \(run {dead_run} on {socket.gethostname()}, pid {pid}, since ",
        caplog.text,
    )
    assert client.search_registered_models() == [], "released, and nothing left behind"
    assert sorted(e.name for e in client.search_experiments(view_type=ViewType.ALL)) == sorted(
        ["Default", EXPERIMENT_NAME]
    )


def test_a_waiting_pipeline_backs_off_and_takes_the_lock_once_it_is_free(client, experiment_id) -> None:
    """It reads the lock between looks (no failed creates), looking less often as it waits."""
    create_lock(client, {**liveness_tags(), OWNER_TAG: pipeline_run(client, experiment_id, holds=LOCK)})
    looks = []
    get = client.get_registered_model

    def counted(name: str) -> object:
        looks.append(time.monotonic())
        if len(looks) == 4:
            client.delete_registered_model(LOCK)  # the first pipeline finishes
        return get(name)

    client.get_registered_model = counted
    with pipeline_lock(
        client, EXPERIMENT_NAME, pipeline_run(client, experiment_id), wait=30, stale_after=600
    ):
        pass
    gaps = [later - earlier for earlier, later in itertools.pairwise(looks)]
    assert gaps[:3] == sorted(gaps[:3]) and gaps[2] > 1.5 * gaps[0], gaps


def test_a_holder_that_lost_its_lock_stops_at_the_next_check(client, experiment_id) -> None:
    with pipeline_lock(
        client, EXPERIMENT_NAME, pipeline_run(client, experiment_id), wait=1, stale_after=600
    ) as lock:
        lock.check()
        client.rename_registered_model(LOCK, f"{LOCK}.abandoned.first")  # what a takeover does
        create_lock(client, {**liveness_tags(), OWNER_TAG: "second"})
        with pytest.raises(PipelineError, match=rf"this pipeline lost the lock {LOCK} to run second"):
            lock.check()
