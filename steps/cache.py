"""Step reuse by content. A step's cache key covers everything that decides its output:

    the step's name; its resolved parameters (config.yaml defaults included); the content digest of its
    inputs (the data's sha256 for ingest, the upstream steps' output digests after that); a hash of the
    code it runs (its module and every project module it imports); and the versions of Python and of the
    libraries that shape the result.

A FINISHED run of the same step with the same key in the same experiment, whose outputs still exist, is
reused instead of recomputed. The lookup is a server-side search on the key tag.
"""

from __future__ import annotations

import ast
import hashlib
import json
import platform
from collections.abc import Iterable
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from mlflow import MlflowClient
from mlflow.entities import Run

from steps.names import (
    CACHE_INDEX_TAG_PREFIX,
    CACHE_KEY_TAG,
    ENTRY_POINT_TAG,
    KEY_PARTS_TAG,
    OUTPUTS_TAG,
    PARENT_RUN_TAG,
    REUSED_FROM_TAG,
)

PACKAGE_DIR = Path(__file__).resolve().parent
PACKAGE = PACKAGE_DIR.name
# Libraries whose version can change a step's output (distribution names; xgboost may be xgboost-cpu).
VERSIONED = (
    "matplotlib", "mlflow", "numpy", "pandas", "pyarrow", "scikit-learn", "scipy", ("xgboost", "xgboost-cpu"),
)  # fmt: skip
CANDIDATES = 10  # newest runs with the key to try; more only if artifacts keep going missing
SHORT = 12
SHOWN_PARAMS = 3


@cache
def code_files(step: str) -> tuple[Path, ...]:
    """The step's module and every module of this package it imports, directly or not."""
    found: set[Path] = set()
    pending = [PACKAGE_DIR / f"{step}.py"]
    while pending:
        path = pending.pop()
        if path in found or not path.is_file():
            continue
        found.add(path)
        pending.extend(_imported_modules(path))
    return tuple(sorted(found))


def _imported_modules(path: Path) -> Iterable[Path]:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == PACKAGE and len(parts) > 1:
                yield PACKAGE_DIR.joinpath(*parts[1:]).with_suffix(".py")


def code_digests(step: str) -> dict[str, str]:
    """sha256 of each code file, keyed by its path in the project (e.g. steps/featurize.py)."""
    return {
        f"{PACKAGE}/{path.name}": hashlib.sha256(path.read_bytes()).hexdigest() for path in code_files(step)
    }


@cache
def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for names in VERSIONED:
        for name in (names,) if isinstance(names, str) else names:
            try:
                found[names if isinstance(names, str) else names[0]] = metadata.version(name)
                break
            except metadata.PackageNotFoundError:
                continue
    return found


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


def find_reusable(client: MlflowClient, experiment_id: str, step: str, key: str) -> Run | None:
    """The newest FINISHED run that did the work for `key` and whose outputs still exist.

    Server-side search on the tag named after the key: the store's index on tag names finds it in the
    same time whether the experiment holds fifty runs or fifty thousand."""
    runs = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{CACHE_INDEX_TAG_PREFIX}{key}` = '{step}' AND attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        max_results=CANDIDATES,
    )
    tried: set[str] = set()
    for run in runs:
        source_id = run.data.tags.get(REUSED_FROM_TAG, run.info.run_id)
        if source_id in tried:
            continue
        tried.add(source_id)
        source = run if source_id == run.info.run_id else _get_run(client, source_id)
        active = source is not None and source.info.lifecycle_stage == "active"
        if active and source.info.status == "FINISHED" and outputs_exist(client, source):
            return source
    return None


def previous_parts(
    client: MlflowClient, experiment_id: str, step: str, parent_run_id: str
) -> dict[str, Any] | None:
    """The key parts of the newest earlier run of `step`, to say what changed since."""
    runs = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{ENTRY_POINT_TAG}` = '{step}' AND attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        max_results=CANDIDATES,
    )
    for run in runs:
        if run.data.tags.get(PARENT_RUN_TAG) != parent_run_id and KEY_PARTS_TAG in run.data.tags:
            return json.loads(run.data.tags[KEY_PARTS_TAG])
    return None


def outputs_exist(client: MlflowClient, run: Run) -> bool:
    """Every output the run recorded can still be read: its artifacts were not deleted."""
    outputs = json.loads(run.data.tags.get(OUTPUTS_TAG, "null"))
    if not isinstance(outputs, dict):
        return False
    return all(_exists(client, uri) for uri in outputs.values())


def _exists(client: MlflowClient, uri: str) -> bool:
    parsed = urlparse(uri)
    try:
        if parsed.scheme == "models" and "/" in parsed.path.strip("/"):  # models:/<name>/<version>
            name, version = parsed.path.strip("/").split("/")
            client.get_model_version(name, version)  # raises when the version was deleted
            return True
        if parsed.scheme == "models":
            model = client.get_logged_model(parsed.netloc or parsed.path.strip("/"))
            return any(item.path == "MLmodel" for item in client.list_logged_model_artifacts(model.model_id))
        if parsed.scheme == "runs":
            run_id, _, path = parsed.path.strip("/").partition("/")
            parent = str(Path(path).parent) if "/" in path else None
            listing = client.list_artifacts(parsed.netloc or run_id, parent)
            matches = [item for item in listing if item.path == path]
            return bool(matches) and (
                not matches[0].is_dir or bool(client.list_artifacts(parsed.netloc or run_id, path))
            )
    except Exception:  # a missing run, model or artifact root: nothing to reuse
        return False
    return False


def _get_run(client: MlflowClient, run_id: str) -> Run | None:
    try:
        return client.get_run(run_id)
    except Exception:  # deleted or never existed
        return None
