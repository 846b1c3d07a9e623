"""train: fit the chosen model on the training rows and log it as one scikit-learn pipeline.

Parameters:
    features: URI of the folder featurize logged (runs:/<featurize run>/features).
    model: xgb (default), rf, hgb or ridge.
    <hyperparameter>: any hyperparameter of that model in config.yaml, e.g. `-P max_depth=8`.
Artifacts:
    model: an MLflow model (sklearn flavor) that takes raw hourly records, with signature and input
        example; the project's `steps` package travels with it as code.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
import time
import warnings
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.models import infer_signature

from steps import settings
from steps.metrics import regression_metrics
from steps.models import build_model, model_inputs, trusted_types
from steps.names import FEATURES_DIR, MODEL_NAME, TRAIN_FILE
from steps.params import parse_overrides, validate_training
from steps.schema import TARGET
from steps.tracking import StepResult, argument_parser, read_table, record_outputs, run_cli, step_run

log = logging.getLogger(__name__)
INPUT_EXAMPLE_ROWS = 5


def fit(train: pd.DataFrame, model: str, hyperparameters: dict[str, Any], seed: int) -> Any:
    """The fitted pipeline (pure: no tracking, no files)."""
    return build_model(model, hyperparameters, seed).fit(model_inputs(train), train[TARGET])


def model_digest(pipeline: Any) -> str:
    """sha256 of the fitted model's state. The saved files carry timestamps; the fitted trees and
    coefficients do not, so the same inputs give the same digest."""
    return hashlib.sha256(pickle.dumps(pipeline, protocol=5)).hexdigest()


def train(features: str, model: str, hyperparameters: dict[str, Any]) -> StepResult:
    """Fit and log the model in the active run (hyperparameters already resolved by validate_training)."""
    seed = settings.config()["seed"]
    mlflow.log_params({"features": features, "model": model, "seed": seed})
    mlflow.log_params({f"hp.{name}": value for name, value in hyperparameters.items()})
    training = read_table(f"{features}/{TRAIN_FILE}", "training rows")
    started = time.perf_counter()
    pipeline = fit(training, model, hyperparameters, seed)
    fit_seconds = time.perf_counter() - started
    inputs = model_inputs(training)
    fitted = pipeline.predict(inputs)
    train_rmse = regression_metrics(training[TARGET], fitted)["rmse"]
    mlflow.log_metrics({"fit_seconds": fit_seconds, "train_rmse": train_rmse})
    example = inputs.head(INPUT_EXAMPLE_ROWS)
    with warnings.catch_warnings():  # integer columns are meant: a record missing a value is rejected
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
        info = mlflow.sklearn.log_model(
            pipeline,
            name=MODEL_NAME,
            signature=infer_signature(example, fitted[:INPUT_EXAMPLE_ROWS]),
            input_example=example,
            code_paths=[str(Path(__file__).parent)],
            pip_requirements=str(settings.REQUIREMENTS_FILE),
            skops_trusted_types=trusted_types(pipeline),
        )
    outputs = {"model": info.model_uri}
    digest = record_outputs(outputs, digest=model_digest(pipeline))
    log.info("Trained %s on %d rows: %s", model, len(training), info.model_uri)
    return StepResult(mlflow.active_run().info.run_id, outputs, digest)


def main() -> None:
    defaults = settings.parameter_defaults("train")
    parser = argument_parser(__doc__)
    parser.add_argument("--features", required=True, help=f"e.g. runs:/<featurize run id>/{FEATURES_DIR}")
    parser.add_argument("--model", default=defaults["model"])
    args, rest = parser.parse_known_args()

    def work() -> None:
        hyperparameters = validate_training(args.model, parse_overrides(rest))
        with step_run("train"):
            train(args.features, args.model, hyperparameters)

    run_cli(work)


if __name__ == "__main__":
    main()
