"""Cache keys: what goes in, what changes them, and how a change is described. Liveness of runs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

from steps import cache
from steps.liveness import is_abandoned
from steps.names import HEARTBEAT_TAG, HOST_TAG, PID_TAG


def test_code_is_the_step_module_and_what_it_imports() -> None:
    featurize = {path.name for path in cache.code_files("featurize")}
    train = {path.name for path in cache.code_files("train")}
    assert {"featurize.py", "features.py", "tracking.py"} <= featurize
    assert "models.py" not in featurize and "main.py" not in featurize
    assert {"train.py", "models.py", "features.py"} <= train
    assert all(name.startswith("steps/") for name in cache.code_digests("ingest"))


def test_versions_cover_the_libraries_that_shape_results() -> None:
    assert {"python", "mlflow", "pandas", "numpy", "scikit-learn", "xgboost"} <= set(cache.versions())


@pytest.mark.parametrize(
    "change",
    [
        lambda p: p["params"].update(model="rf"),
        lambda p: p["inputs"].update(data="0" * 64),
        lambda p: p["code"].update({"steps/featurize.py": "x"}),
        lambda p: p["versions"].update(xgboost="9.9"),
        lambda p: p.update(step="evaluate"),
    ],
)
def test_every_part_changes_the_key(change) -> None:
    parts = cache.key_parts(
        "train", {"model": "xgb", "hyperparameters": {"max_depth": 4}}, {"features": "ab"}
    )
    before = cache.cache_key(parts)
    assert (
        cache.cache_key(
            cache.key_parts(
                "train", {"hyperparameters": {"max_depth": 4}, "model": "xgb"}, {"features": "ab"}
            )
        )
        == before
    )
    change(parts)
    assert cache.cache_key(parts) != before


def test_describe_change_names_the_part() -> None:
    before = {
        "params": {"model": "xgb", "hyperparameters": {"max_depth": 4}},
        "inputs": {"features": "a" * 64},
        "code": {"steps/featurize.py": "1", "steps/train.py": "1"},
        "versions": {"xgboost": "3.2.0"},
    }
    assert cache.describe_change(before, before) == "key changed"
    after = {**before, "params": {"model": "rf", "hyperparameters": {"max_depth": 8}}}
    assert cache.describe_change(before, after) == "params: model xgb→rf, hyperparameters.max_depth 4→8"
    after = {**before, "code": {"steps/featurize.py": "2", "steps/train.py": "1"}}
    assert cache.describe_change(before, after) == "code: steps/featurize.py"
    after = {**before, "inputs": {"features": "b" * 64}, "versions": {"xgboost": "3.3.0"}}
    assert (
        cache.describe_change(before, after)
        == "inputs: features aaaaaaaaaaaa→bbbbbbbbbbbb; versions: xgboost 3.2.0→3.3.0"
    )


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
