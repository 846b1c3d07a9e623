"""Step reuse by content. A step's cache key covers everything that decides its output:

    the step's name; its resolved parameters (config.yaml defaults included); the content digest of its
    inputs (the data's sha256 for ingest, the upstream steps' output digests after that); a hash of the
    code it runs (its module and every project module it imports); and the versions of Python and of the
    libraries that shape the result.

A FINISHED run of the same step with the same key in the same experiment, whose outputs still exist, is
reused instead of recomputed (plumbing/pipeline/cache.py finds it).
"""

from __future__ import annotations

import hashlib
import json
import platform
from functools import cache
from importlib import metadata
from typing import Any

from plumbing.code import code_files
from plumbing.names import CACHE_INDEX_TAG_PREFIX, CACHE_KEY_TAG, KEY_PARTS_TAG
from plumbing.settings import PROJECT_DIR

# Libraries whose version can change a step's output (distribution names; xgboost may be xgboost-cpu).
VERSIONED = (
    "matplotlib",
    "mlflow",
    "numpy",
    "pandas",
    "pyarrow",
    "scikit-learn",
    "scipy",
    ("xgboost", "xgboost-cpu"),
)
SHORT = 12
SHOWN_PARAMS = 3


def code_digests(step: str) -> dict[str, str]:
    """sha256 of each code file, keyed by its path in the project (e.g. steps/featurize.py)."""
    return {
        path.relative_to(PROJECT_DIR).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in code_files(f"steps.{step}")
    }


def versions() -> dict[str, str]:
    """The versions of Python and of VERSIONED, a new dict on every call: a caller that changes it changes
    no other step's key."""
    return dict(_installed_versions())


@cache
def _installed_versions() -> tuple[tuple[str, str], ...]:
    """Read once per process, and immutable, as every key of the process shares it."""
    found = {"python": platform.python_version()}
    for names in VERSIONED:
        for name in (names,) if isinstance(names, str) else names:
            try:
                found[names if isinstance(names, str) else names[0]] = metadata.version(name)
                break
            except metadata.PackageNotFoundError:
                continue
    return tuple(found.items())


def key_parts(step: str, params: dict[str, Any], inputs: dict[str, str]) -> dict[str, Any]:
    return {
        "step": step,
        "params": params,
        "inputs": inputs,
        "code": code_digests(step),
        "versions": versions(),
    }


def cache_key(parts: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def describe_change(before: dict[str, Any], after: dict[str, Any]) -> str:
    """Which part of the key changed, e.g. 'params: model xgb→rf; code: steps/featurize.py'."""
    changes = []
    params = _changed(_flat(before.get("params", {})), _flat(after.get("params", {})))
    if params:
        names = sorted(params, key=lambda name: (name.count("."), name))  # `model` before its hyperparameters
        shown = ", ".join(f"{k} {_show(params[k][0])}→{_show(params[k][1])}" for k in names[:SHOWN_PARAMS])
        more = f" (+{len(names) - SHOWN_PARAMS} more)" if len(names) > SHOWN_PARAMS else ""
        changes.append(f"params: {shown}{more}")
    inputs = _changed(before.get("inputs", {}), after.get("inputs", {}))
    if inputs:
        changes.append(
            "inputs: "
            + ", ".join(f"{k} {_show(a)[:SHORT]}→{_show(b)[:SHORT]}" for k, (a, b) in inputs.items())
        )
    code = _changed(before.get("code", {}), after.get("code", {}))
    if code:
        changes.append("code: " + ", ".join(sorted(code)))
    libraries = _changed(before.get("versions", {}), after.get("versions", {}))
    if libraries:
        changes.append(
            "versions: " + ", ".join(f"{k} {_show(a)}→{_show(b)}" for k, (a, b) in libraries.items())
        )
    return "; ".join(changes) or "key changed"


def _flat(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat |= _flat(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _changed(before: dict[str, Any], after: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    return {
        k: (before.get(k), after.get(k))
        for k in sorted(set(before) | set(after))
        if before.get(k) != after.get(k)
    }


def _show(value: Any) -> str:
    return "none" if value is None else str(value)


def key_tags(step: str, key: str, parts: dict[str, Any]) -> dict[str, str]:
    """The tags that make a step run findable by its key and say what went into it."""
    return {
        CACHE_KEY_TAG: key,
        f"{CACHE_INDEX_TAG_PREFIX}{key}": step,
        KEY_PARTS_TAG: json.dumps(parts, sort_keys=True),
    }
