"""register: the Model Registry's gate, and champion vs challenger (rules: demand/promotion.py).

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

import mlflow
import numpy as np
from mlflow import MlflowClient

from demand.metrics import BASELINES, METRICS, holdout_scores
from demand.promotion import gate_failures
from demand.schema import model_inputs
from demand.split import day_ranges
from plumbing import settings
from plumbing.artifacts import load_model, read_features
from plumbing.cli import argument_parser, run_cli
from plumbing.names import FEATURES_DIR, PARENT_RUN_TAG
from plumbing.params import parse_model_name
from plumbing.pipeline.lock import pipeline_lock
from plumbing.registry import TRAIN_DAYS_TAG, Candidate, lineage, promote
from plumbing.tracking import StepResult, record_outputs, step_run

log = logging.getLogger(__name__)


def register(features: str, model_uri: str, model_name: str) -> StepResult:
    """Gate, register and alias the model in the active run."""
    client = MlflowClient()
    run = client.get_run(mlflow.active_run().info.run_id)
    mlflow.log_params({"features": features, "model_uri": model_uri, "model_name": model_name})
    folder = read_features(features)
    train, test = folder.train, folder.test
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
        tags[TRAIN_DAYS_TAG] = day_ranges(train["dteday"])
        options = settings.config()["pipeline"]
        registry_lock = pipeline_lock(
            client,
            f"registry.{model_name}",
            run.info.run_id,
            wait=options["lock_wait_seconds"],
            stale_after=options["stale_after_seconds"],
        )
        with registry_lock as lock:
            candidate = Candidate(model_uri, tags, test, predicted)
            outputs["version"], summary, comparison = promote(client, model_name, candidate, lock.check)
        mlflow.log_metrics(comparison)
    log.info("%s", summary)
    digest = record_outputs(outputs, digest=_digest(outputs, summary), summary=summary)
    return StepResult(run.info.run_id, outputs, digest, scores, summary)


def _digest(outputs: dict[str, str], summary: str) -> str:
    return hashlib.sha256(json.dumps([outputs, summary], sort_keys=True).encode()).hexdigest()


def main(argv: list[str] | None = None) -> None:
    defaults = settings.parameter_defaults("register")
    parser = argument_parser(__doc__)
    parser.add_argument("--features", required=True, help=f"e.g. runs:/<featurize run id>/{FEATURES_DIR}")
    parser.add_argument("--model_uri", required=True, help="e.g. models:/<model id>")
    parser.add_argument("--model_name", default=defaults["model_name"])
    args = parser.parse_args(argv)

    def work() -> None:
        parse_model_name(args.model_name)
        with step_run("register"):
            register(args.features, args.model_uri, args.model_name)

    run_cli(work)


if __name__ == "__main__":
    main()
