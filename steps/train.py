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

import logging
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.models import infer_signature

from steps import settings
from steps.errors import PipelineError
from steps.metrics import regression_metrics
from steps.models import MODELS, build_model, model_inputs, resolve_hyperparameters, trusted_types
from steps.names import FEATURES_DIR, MODEL_NAME, TRAIN_FILE
from steps.schema import TARGET
from steps.tracking import argument_parser, read_table, run_cli, step_run

log = logging.getLogger(__name__)
INPUT_EXAMPLE_ROWS = 5


@dataclass(frozen=True)
class TrainResult:
    run_id: str
    model_uri: str


def validate_training(model: str, overrides: dict[str, str]) -> dict[str, Any]:
    """The resolved hyperparameters, or a one-line error before any work starts."""
    settings.parse_choice("model", model, MODELS)
    return resolve_hyperparameters(settings.config()["models"][model], overrides, model)


def parse_overrides(arguments: list[str]) -> dict[str, str]:
    """`--name value` (or `--name=value`) pairs, which is how `mlflow run` passes undeclared -P params."""
    overrides: dict[str, str] = {}
    tokens = iter(arguments)
    for token in tokens:
        if not token.startswith("--") or len(token) == 2:
            raise PipelineError(f"unexpected argument {token!r}; pass hyperparameters as -P <name>=<value>")
        name, equals, value = token[2:].partition("=")
        if not equals:
            value = next(tokens, None)
            if value is None:
                raise PipelineError(f"hyperparameter {name} has no value; pass it as -P {name}=<value>")
        overrides[name] = value
    return overrides


def fit(train: pd.DataFrame, model: str, hyperparameters: dict[str, Any], seed: int) -> Any:
    """The fitted pipeline (pure: no tracking, no files)."""
    return build_model(model, hyperparameters, seed).fit(model_inputs(train), train[TARGET])


def run_train(features: str, model: str, overrides: dict[str, str]) -> TrainResult:
    """Fit and log the model inside the `train` run."""
    hyperparameters = validate_training(model, overrides)
    seed = settings.config()["seed"]
    with step_run("train") as run:
        mlflow.log_params({"features": features, "model": model, "seed": seed})
        mlflow.log_params({f"hp.{name}": value for name, value in hyperparameters.items()})
        train = read_table(f"{features}/{TRAIN_FILE}", "training rows")
        started = time.perf_counter()
        pipeline = fit(train, model, hyperparameters, seed)
        fit_seconds = time.perf_counter() - started
        inputs = model_inputs(train)
        fitted = pipeline.predict(inputs)
        train_rmse = regression_metrics(train[TARGET], fitted)["rmse"]
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
                pip_requirements=str(settings.PROJECT_DIR / "requirements.txt"),
                skops_trusted_types=trusted_types(pipeline),
            )
        log.info("Trained %s on %d rows: %s", model, len(train), info.model_uri)
    return TrainResult(run.info.run_id, info.model_uri)


def main() -> None:
    defaults = settings.parameter_defaults("train")
    parser = argument_parser(__doc__)
    parser.add_argument("--features", required=True, help=f"e.g. runs:/<featurize run id>/{FEATURES_DIR}")
    parser.add_argument("--model", default=defaults["model"])
    args, rest = parser.parse_known_args()
    run_cli(lambda: run_train(args.features, args.model, parse_overrides(rest)))


if __name__ == "__main__":
    main()
