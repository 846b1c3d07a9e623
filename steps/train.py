"""train: fit the chosen model on the training rows and log it as one scikit-learn pipeline.

Parameters:
    features: URI of the folder featurize logged (runs:/<featurize run>/features).
    model: xgb (default), rf, hgb or ridge.
    hyperparameters: empty, or a YAML file or URI (runs:/<tune run>/best_params.yaml) of hyperparameters.
    <hyperparameter>: any hyperparameter of that model in config.yaml, e.g. `-P max_depth=8`.
The split the features were made with (features/split.json) picks the target (config.yaml `splits`).
Artifacts:
    model: an MLflow pyfunc model (serving/model.py) around the scikit-learn pipeline saved with skops;
        it takes raw hourly records, checks them, and predicts counts. It carries an input example, a
        signature (the input columns and the output), and as its code exactly the modules scoring runs.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import mlflow

from demand.metrics import regression_metrics
from demand.models import fit, model_digest
from demand.schema import TARGET, model_inputs
from plumbing import settings
from plumbing.artifacts import read_split, read_table
from plumbing.cli import argument_parser, run_cli
from plumbing.code import shipped_files
from plumbing.hyperparameters import parse_hyperparameters, parse_overrides, read_hyperparameters_file
from plumbing.names import FEATURES_DIR, MODEL_NAME, TRAIN_FILE
from plumbing.tracking import StepResult, record_outputs, step_run
from serving.model import SCORING_MODULES, ShippedCode, log_model, model_identity

log = logging.getLogger(__name__)
INPUT_EXAMPLE_ROWS = 5


def train(features: str, model: str, hyperparameters: dict[str, Any], split: str) -> StepResult:
    """Fit and log the model in the active run (hyperparameters already resolved by parse_hyperparameters)."""
    seed, target = settings.config()["seed"], settings.split_options(split)["target"]
    mlflow.log_params({"features": features, "model": model, "seed": seed, "target": target})
    mlflow.log_params({f"hp.{name}": value for name, value in hyperparameters.items()})
    training = read_table(f"{features}/{TRAIN_FILE}", "training rows")  # the test rows stay unread
    started = time.perf_counter()
    pipeline = fit(training, model, hyperparameters, seed, target)
    fit_seconds = time.perf_counter() - started
    inputs = model_inputs(training)
    fitted = pipeline.predict(inputs)
    train_rmse = regression_metrics(training[TARGET], fitted)["rmse"]
    mlflow.log_metrics({"fit_seconds": fit_seconds, "train_rmse": train_rmse})
    example = inputs.head(INPUT_EXAMPLE_ROWS)
    code = ShippedCode(settings.PROJECT_DIR, shipped_files(SCORING_MODULES))
    info = log_model(pipeline, example, MODEL_NAME, code, settings.REQUIREMENTS_FILE)
    outputs = {"model": info.model_uri}
    identity = model_identity(model_digest(pipeline), code, settings.REQUIREMENTS_FILE)
    digest = record_outputs(outputs, digest=identity)
    log.info("Trained %s on %d rows: %s", model, len(training), info.model_uri)
    return StepResult(mlflow.active_run().info.run_id, outputs, digest)


def main(argv: list[str] | None = None) -> None:
    defaults = settings.parameter_defaults("train")
    parser = argument_parser(__doc__)
    parser.add_argument("--features", required=True, help=f"e.g. runs:/<featurize run id>/{FEATURES_DIR}")
    parser.add_argument("--model", default=defaults["model"])
    parser.add_argument("--hyperparameters", default=defaults["hyperparameters"])
    args, rest = parser.parse_known_args(argv)

    def work() -> None:
        overrides, split = parse_overrides(rest), read_split(args.features)["split"]
        chosen = (
            read_hyperparameters_file(args.hyperparameters, args.model, split) if args.hyperparameters else {}
        )
        hyperparameters = parse_hyperparameters(args.model, overrides, split, chosen)
        with step_run("train"):
            train(args.features, args.model, hyperparameters, split)

    run_cli(work)


if __name__ == "__main__":
    main()
