"""The Model Registry: lineage tags, the version that already holds a model, champion vs challenger,
and resolving an alias to the version it points at. The rules themselves are in demand/promotion.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.utils import mlflow_tags

from demand.errors import PipelineError, shown
from demand.promotion import CHALLENGER, CHAMPION, Comparison, decide, paired_bootstrap, unseen_by_champion
from demand.schema import TARGET, model_inputs
from demand.split import day_ranges
from plumbing import settings
from plumbing.artifacts import is_missing, load_model, read_table
from plumbing.names import (
    CACHE_KEY_TAG,
    ENTRY_POINT_TAG,
    KEY_PARTS_TAG,
    OUTPUT_DIGEST_TAG,
    PARENT_RUN_TAG,
    TRAIN_FILE,
)

# On each version: the model with its code and pins (serving/model.py model_identity).
MODEL_DIGEST_TAG = "model_digest"
TRAIN_DAYS_TAG = "train_days"  # on each version: the days it was trained on (demand/split.py day_ranges)
DECISION_TAG = "promotion"  # on each version: the alias it got and why


def lineage(client: MlflowClient, model_uri: str, parent_run_id: str | None) -> dict[str, str]:
    """Where a model came from, as version tags: its training run, code, data and the pipeline's keys."""
    model = client.get_logged_model(model_uri.removeprefix("models:/"))
    trained = client.get_run(model.source_run_id)
    params, tags = trained.data.params, trained.data.tags
    hyperparameters = {
        name.removeprefix("hp."): value for name, value in params.items() if name.startswith("hp.")
    }
    found = {
        "model_uri": model_uri,
        "train_run_id": trained.info.run_id,
        "model": params.get("model", "unknown"),
        "hyperparameters": json.dumps(hyperparameters, sort_keys=True),
        "git_commit": tags.get(mlflow_tags.MLFLOW_GIT_COMMIT, "unknown"),
        MODEL_DIGEST_TAG: tags[OUTPUT_DIGEST_TAG],
        "parent_run_id": parent_run_id or "none",
    }
    if parent_run_id:
        experiment_id = client.get_run(parent_run_id).info.experiment_id
        steps = client.search_runs([experiment_id], f"tags.`{PARENT_RUN_TAG}` = '{parent_run_id}'")
        for run in steps:
            step, key = run.data.tags.get(ENTRY_POINT_TAG), run.data.tags.get(CACHE_KEY_TAG)
            if step and key:
                found[f"cache_key.{step}"] = key
            if step == "ingest" and KEY_PARTS_TAG in run.data.tags:
                found["data_sha256"] = json.loads(run.data.tags[KEY_PARTS_TAG])["inputs"]["data"]
                found["data_source"] = run.data.params.get("data", "unknown")
    return found


def existing_version(client: MlflowClient, name: str, digest: str) -> Any | None:
    """A version of `name` that already holds the fitted model with this digest."""
    versions = client.search_model_versions(f"name = '{name}' and tags.{MODEL_DIGEST_TAG} = '{digest}'")
    return versions[0] if versions else None


def decided_versions(client: MlflowClient, name: str, besides: Any | None) -> list[str]:
    """The versions of `name` whose registration finished (they carry the decision tag), but `besides`."""
    try:
        versions = client.search_model_versions(f"name = '{name}'")
    except MlflowException as error:
        if error.error_code == "RESOURCE_DOES_NOT_EXIST":
            return []
        raise
    skip = str(besides.version) if besides is not None else None
    found = {str(v.version) for v in versions if DECISION_TAG in v.tags and str(v.version) != skip}
    return sorted(found, key=int)


def current_champion(client: MlflowClient, name: str) -> Any | None:
    """The @champion version, or None when there is no such model or alias; any other error (a
    permission, a server fault) is raised: it says nothing about the champion."""
    try:
        return client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException as error:
        if is_missing(error, client, name):
            return None
        raise


@dataclass(frozen=True)
class Candidate:
    """The model to register, its version tags, and its predictions for today's test rows."""

    model_uri: str
    tags: dict[str, str]
    test: pd.DataFrame
    predicted: np.ndarray


def training_days(client: MlflowClient, version: Any) -> str | None:
    """The days a version was trained on: its tag, or, for a version registered before the tag existed,
    the training rows its training run read. None when neither can be found."""
    if TRAIN_DAYS_TAG in version.tags:
        return version.tags[TRAIN_DAYS_TAG]
    try:
        features = client.get_run(version.run_id).data.params["features"]
        return day_ranges(read_table(f"{features}/{TRAIN_FILE}", "training rows")["dteday"])
    except (MlflowException, PipelineError, KeyError):
        return None


def compare_with_champion(champion: Any, name: str, candidate: Candidate) -> tuple[Comparison | None, str]:
    """Re-score the champion on the candidate's test rows that neither trained on, and compare; (None,
    why) when it cannot score them or too few are left."""
    options = _promotion_rule()
    try:
        unseen, why = unseen_by_champion(
            candidate.test["dteday"],
            training_days(MlflowClient(), champion),
            champion.version,
            options["min_comparable_days"],
        )
    except PipelineError as error:  # a tag edited by hand, or written by a newer version
        return None, (
            f"cannot be compared: champion version {champion.version}'s tag {TRAIN_DAYS_TAG} is unreadable "
            f"({error}); the champion stays"
        )
    if unseen is None:
        return None, why
    test, predicted = candidate.test[unseen].reset_index(drop=True), candidate.predicted[unseen]
    try:
        champion_predicted = load_model(f"models:/{name}/{champion.version}").predict(model_inputs(test))
    except (PipelineError, MlflowException) as error:
        return None, f"champion version {champion.version} cannot score today's test rows ({shown(error)})"
    comparison = paired_bootstrap(
        test["dteday"].to_numpy(),
        test[TARGET].to_numpy(dtype="float64"),
        predicted,
        np.asarray(champion_predicted, dtype="float64"),
        samples=options["bootstrap_samples"],
        seed=settings.config()["seed"],
    )
    return comparison, ""


def promote(
    client: MlflowClient, name: str, candidate: Candidate, check_lock: Callable[[], None]
) -> tuple[str, str, dict[str, float]]:
    """Register, alias, and mark the version decided, holding the registry lock (`check_lock` raises once
    it is lost: checked before each change). Returns the version URI, a summary, the comparison's metrics.

    The decision tag is written last, so it marks a finished registration. A version that holds this
    model but has no decision tag was left by a registration that died or failed between its calls (a
    kill, an OOM, a server error): this run finishes it (compare, alias, tag) instead of skipping it.
    """
    version = existing_version(client, name, candidate.tags[MODEL_DIGEST_TAG])
    if version is not None:
        version = client.get_model_version(name, version.version)  # search results carry no aliases
        if DECISION_TAG in version.tags:
            aliases = ", ".join(f"@{alias}" for alias in version.aliases) or "no alias"
            summary = f"version {version.version} ({aliases}) already holds this model; nothing registered"
            return f"models:/{name}/{version.version}", summary, {}
    champion = current_champion(client, name)
    comparison = None
    others = [] if champion is not None else decided_versions(client, name, besides=version)
    if others:
        alias, why = CHALLENGER, _no_champion(others)
    elif champion is None:
        alias, why = decide(None, _promotion_rule())
    elif version is not None and champion.version == version.version:
        alias, why = CHAMPION, "it had become champion when its registration was interrupted"
    else:
        comparison, unscored = compare_with_champion(champion, name, candidate)
        alias, why = (CHALLENGER, unscored) if unscored else decide(comparison, _promotion_rule())
    finishing = version is not None
    if version is None:
        check_lock()
        version = mlflow.register_model(candidate.model_uri, name, tags=candidate.tags)
    check_lock()
    client.set_registered_model_alias(name, alias, version.version)
    client.set_model_version_tag(name, version.version, DECISION_TAG, f"@{alias}: {why}")
    was = champion is not None and champion.version != version.version and alias == CHAMPION
    previous = f" (was version {champion.version})" if was else ""
    verb = "finished the interrupted registration of" if finishing else "registered"
    summary = f"{verb} {name} version {version.version} as @{alias}{previous}: {why}"
    return f"models:/{name}/{version.version}", summary, comparison.as_metrics() if comparison else {}


def _no_champion(versions: list[str]) -> str:
    listed = f"versions {', '.join(versions)} are" if len(versions) > 1 else f"version {versions[0]} is"
    return (
        f"not compared: {listed} registered but none is @{CHAMPION} (was the alias removed by hand?); "
        f"set @{CHAMPION} on the version that should serve"
    )


def _promotion_rule() -> dict[str, Any]:
    return settings.config()["registry"]["promotion"]
