"""register: the Model Registry's gate, and champion vs challenger (the rules are in steps/promotion.py).

Parameters:
    features: URI of the folder featurize logged; its test rows are today's test set.
    model_uri: URI of the model train logged (models:/<model id>).
    model_name: the registered model (default bike-sharing-demand).
What it does:
    A model that fails the gate in config.yaml is not registered; the reasons are the run's
    `pipeline.summary` tag. A model that passes becomes a new version with lineage tags, unless a version
    already holds the same fitted model (an identical rerun registers nothing). The current champion is
    re-scored on today's test rows; the new version gets @champion if it is significantly better, else
    @challenger. Deciding and moving the alias happen under a lock on the registered model, so two
    pipelines that finish together compare against each other instead of both against the old champion.
Metrics:
    the holdout scores (as evaluate logs them), and promotion_* of the paired bootstrap.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from steps import settings
from steps.errors import PipelineError
from steps.lock import pipeline_lock
from steps.metrics import holdout_scores
from steps.models import model_inputs
from steps.names import (
    BASELINES,
    CACHE_KEY_TAG,
    ENTRY_POINT_TAG,
    FEATURES_DIR,
    KEY_PARTS_TAG,
    METRICS,
    OUTPUT_DIGEST_TAG,
    PARENT_RUN_TAG,
    TEST_FILE,
    TRAIN_FILE,
)  # fmt: skip
from steps.params import parse_model_name
from steps.promotion import CHALLENGER, CHAMPION, Comparison, decide, gate_failures, paired_bootstrap
from steps.schema import TARGET
from steps.tracking import (
    StepResult,
    argument_parser,
    load_model,
    read_table,
    record_outputs,
    run_cli,
    step_run,
)

log = logging.getLogger(__name__)
GIT_COMMIT_TAG = "mlflow.source.git.commit"
MODEL_DIGEST_TAG = "model_digest"  # on each version: sha256 of the fitted model (see steps/train.py)
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
        "git_commit": tags.get(GIT_COMMIT_TAG, "unknown"),
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
    return found


def existing_version(client: MlflowClient, name: str, digest: str) -> Any | None:
    """A version of `name` that already holds the fitted model with this digest."""
    try:
        versions = client.search_model_versions(f"name = '{name}' and tags.{MODEL_DIGEST_TAG} = '{digest}'")
    except MlflowException:
        return None
    return versions[0] if versions else None


def current_champion(client: MlflowClient, name: str) -> Any | None:
    try:
        return client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:  # no such model yet, or no champion alias
        return None


@dataclass(frozen=True)
class Candidate:
    """The model to register, its version tags, and its predictions for today's test rows."""

    model_uri: str
    tags: dict[str, str]
    test: pd.DataFrame
    predicted: np.ndarray


def compare_with_champion(champion: Any, name: str, candidate: Candidate) -> tuple[Comparison | None, str]:
    """Re-score the champion on the candidate's test rows and compare; (None, why) when it cannot score."""
    options = settings.config()["registry"]["promotion"]
    test = candidate.test
    try:
        champion_predicted = load_model(f"models:/{name}/{champion.version}").predict(model_inputs(test))
    except (PipelineError, MlflowException) as error:
        return None, f"champion version {champion.version} cannot score today's test rows ({error})"
    comparison = paired_bootstrap(
        test["dteday"].to_numpy(),
        test[TARGET].to_numpy(dtype="float64"),
        candidate.predicted,
        np.asarray(champion_predicted, dtype="float64"),
        samples=options["bootstrap_samples"],
        seed=settings.config()["seed"],
    )
    return comparison, ""


def promote(client: MlflowClient, name: str, candidate: Candidate) -> tuple[str, str, dict[str, float]]:
    """Register and alias; call it holding the registry lock. Returns the version URI, summary, metrics."""
    existing = existing_version(client, name, candidate.tags[MODEL_DIGEST_TAG])
    if existing is not None:
        existing = client.get_model_version(name, existing.version)  # search results carry no aliases
        aliases = ", ".join(f"@{alias}" for alias in existing.aliases) or "no alias"
        return (
            f"models:/{name}/{existing.version}",
            f"version {existing.version} ({aliases}) already holds this model; nothing registered",
            {},
        )
    champion = current_champion(client, name)
    comparison, unscored = None, ""
    if champion is not None:
        comparison, unscored = compare_with_champion(champion, name, candidate)
    if unscored:
        alias, why = CHALLENGER, unscored
    else:
        alias, why = decide(comparison, settings.config()["registry"]["promotion"])
    version = mlflow.register_model(
        candidate.model_uri, name, tags=candidate.tags | {DECISION_TAG: f"@{alias}: {why}"}
    )
    client.set_registered_model_alias(name, alias, version.version)
    previous = f" (was version {champion.version})" if alias == CHAMPION and champion is not None else ""
    summary = f"registered {name} version {version.version} as @{alias}{previous}: {why}"
    return f"models:/{name}/{version.version}", summary, comparison.as_metrics() if comparison else {}


def register(features: str, model_uri: str, model_name: str) -> StepResult:
    """Gate, register and alias the model in the active run."""
    client = MlflowClient()
    run = client.get_run(mlflow.active_run().info.run_id)
    mlflow.log_params({"features": features, "model_uri": model_uri, "model_name": model_name})
    train = read_table(f"{features}/{TRAIN_FILE}", "training rows")
    test = read_table(f"{features}/{TEST_FILE}", "test rows")
    predicted = np.asarray(load_model(model_uri).predict(model_inputs(test)), dtype="float64")
    scores = holdout_scores(train, test, predicted).metrics
    mlflow.log_metrics(scores)
    failures = gate_failures(scores, settings.config()["registry"]["gate"], BASELINES)
    outputs: dict[str, str] = {}
    if failures:
        summary = f"rejected, not registered: {'; '.join(failures)}"
    else:
        tags = lineage(client, model_uri, run.data.tags.get(PARENT_RUN_TAG))
        tags |= {f"holdout.{name}": f"{scores[name]:.4f}" for name in METRICS}
        tags |= {f"holdout.skill_vs_{name}": f"{scores[f'skill_vs_{name}']:.4f}" for name in BASELINES}
        options = settings.config()["pipeline"]
        with pipeline_lock(
            client, f"registry.{model_name}", run.info.run_id,
            wait=options["lock_wait_seconds"], stale_after=options["stale_after_seconds"],
        ):  # fmt: skip
            candidate = Candidate(model_uri, tags, test, predicted)
            outputs["version"], summary, comparison = promote(client, model_name, candidate)
        mlflow.log_metrics(comparison)
    log.info("%s", summary)
    digest = record_outputs(outputs, digest=_digest(outputs, summary), summary=summary)
    return StepResult(run.info.run_id, outputs, digest, scores, summary)


def _digest(outputs: dict[str, str], summary: str) -> str:
    return hashlib.sha256(json.dumps([outputs, summary], sort_keys=True).encode()).hexdigest()


def main() -> None:
    defaults = settings.parameter_defaults("register")
    parser = argument_parser(__doc__)
    parser.add_argument("--features", required=True, help=f"e.g. runs:/<featurize run id>/{FEATURES_DIR}")
    parser.add_argument("--model_uri", required=True, help="e.g. models:/<model id>")
    parser.add_argument("--model_name", default=defaults["model_name"])
    args = parser.parse_args()

    def work() -> None:
        parse_model_name(args.model_name)
        with step_run("register"):
            register(args.features, args.model_uri, args.model_name)

    run_cli(work)


if __name__ == "__main__":
    main()
