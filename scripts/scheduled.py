"""The scheduled rerun in one process: scripts/preflight.py's checks, then the `main` entry point, here.

    python -m scripts.scheduled [-P name=value ...] [--experiment-name NAME]      (scripts/rerun calls it)

`mlflow run . --env-manager local` runs `main` in a second Python that imports MLflow and opens the tracking
store again; when every step is reused, that start-up is about half of the rerun (bench/rerun.py). So the
scheduled rerun runs `main` itself, in the project's .venv, as `mlflow run --env-manager local` would, with
the same parameters (MLproject's defaults, `-P` overrides, hyperparameters). Its runs are the same as
`mlflow run`'s, except that the parent run is tagged `mlflow.source.type` LOCAL, not PROJECT, and has no
`mlflow.project.env` or `mlflow.project.backend` tags; `mlflow.project.entryPoint` and the params name
what ran.
"""

from __future__ import annotations

import os
import sys

import mlflow

from demand.errors import PipelineError, quoted
from plumbing.names import EXPERIMENT_NAME
from scripts import preflight
from steps import main as main_step

EXPERIMENT_OPTION = "--experiment-name"


def main_arguments(arguments: list[str]) -> tuple[list[str], str]:
    """`--name value` for each `-P name=value` (as MLproject's command passes them), and the experiment."""
    converted, tokens = [], iter(arguments)
    experiment = os.environ.get("MLFLOW_EXPERIMENT_NAME", EXPERIMENT_NAME)
    for token in tokens:
        if token == EXPERIMENT_OPTION:
            experiment = next(tokens, "")
            continue
        pair = preflight.parameter_value(token, tokens)
        if pair is None:
            raise PipelineError(
                f"scripts/rerun takes -P name=value and {EXPERIMENT_OPTION} <name>, not {quoted(token)}; "
                "nothing was run"
            )
        converted += [f"--{pair[0]}", pair[1]]
    return converted, experiment


def main() -> None:
    arguments = sys.argv[1:]
    try:
        converted, experiment = main_arguments(arguments)
        preflight.check(arguments)
    except PipelineError as error:
        sys.exit(f"error: {error}")
    for name in ("MLFLOW_EXPERIMENT_ID", "MLFLOW_RUN_ID"):
        os.environ.pop(name, None)
    os.environ["MLFLOW_EXPERIMENT_NAME"] = mlflow.set_experiment(experiment).name  # created if new
    main_step.main(converted)


if __name__ == "__main__":
    main()
