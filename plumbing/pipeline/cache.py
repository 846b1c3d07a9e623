"""Finding a finished run that already did a step's work: same cache key (plumbing/pipeline/keys.py), same
experiment, outputs still there. The lookup is a server-side search on a tag named after the key.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from mlflow import MlflowClient
from mlflow.entities import Run

from plumbing.names import (
    CACHE_INDEX_TAG_PREFIX,
    ENTRY_POINT_TAG,
    KEY_PARTS_TAG,
    OUTPUTS_TAG,
    PARENT_RUN_TAG,
    REUSED_FROM_TAG,
)

CANDIDATES = 10  # newest runs with the key to try; more only if artifacts keep going missing


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
