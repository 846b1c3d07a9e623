"""Cache keys: what goes in, what changes them, and how a change is described. Liveness of runs."""

from __future__ import annotations

import copy

import pytest

from plumbing.code import PACKAGES
from plumbing.pipeline import keys


def test_code_is_the_step_module_and_what_it_imports() -> None:
    featurize = set(keys.code_digests("featurize"))
    train = set(keys.code_digests("train"))
    assert {
        "steps/featurize.py",
        "demand/features.py",
        "demand/split.py",
        "plumbing/tracking.py",
    } <= featurize
    assert "demand/models.py" not in featurize and "steps/main.py" not in featurize
    assert {"steps/train.py", "demand/models.py", "demand/features.py", "serving/model.py"} <= train
    assert {path.split("/")[0] for path in keys.code_digests("ingest")} <= set(PACKAGES)


def test_versions_cover_the_libraries_that_shape_results() -> None:
    assert {"python", "mlflow", "pandas", "numpy", "scikit-learn", "xgboost"} <= set(keys.versions())


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
    parts = keys.key_parts("train", {"model": "xgb", "hyperparameters": {"max_depth": 4}}, {"features": "ab"})
    parts_before = copy.deepcopy(parts)
    before = keys.cache_key(parts)
    assert (
        keys.cache_key(
            keys.key_parts("train", {"hyperparameters": {"max_depth": 4}, "model": "xgb"}, {"features": "ab"})
        )
        == before
    )
    change(parts)
    assert keys.cache_key(parts) != before
    again = keys.key_parts("train", parts_before["params"], parts_before["inputs"])
    assert keys.cache_key(again) == before, "changing one key's parts changes no other key"


def test_describe_change_names_the_part() -> None:
    before = {
        "params": {"model": "xgb", "hyperparameters": {"max_depth": 4}},
        "inputs": {"features": "a" * 64},
        "code": {"steps/featurize.py": "1", "steps/train.py": "1"},
        "versions": {"xgboost": "3.2.0"},
    }
    assert keys.describe_change(before, before) == "key changed"
    after = {**before, "params": {"model": "rf", "hyperparameters": {"max_depth": 8}}}
    assert keys.describe_change(before, after) == "params: model xgb→rf, hyperparameters.max_depth 4→8"
    after = {**before, "code": {"steps/featurize.py": "2", "steps/train.py": "1"}}
    assert keys.describe_change(before, after) == "code: steps/featurize.py"
    after = {**before, "inputs": {"features": "b" * 64}, "versions": {"xgboost": "3.3.0"}}
    assert (
        keys.describe_change(before, after)
        == "inputs: features aaaaaaaaaaaa→bbbbbbbbbbbb; versions: xgboost 3.2.0→3.3.0"
    )
