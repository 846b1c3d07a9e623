"""main: the whole pipeline, ingest -> featurize -> train -> evaluate -> register, as nested runs of one run.

Parameters: those of the steps (data, split, test_days, model, model_name), `force`, and any hyperparameter
in config.yaml as `-P <name>=<value>`. Each step runs in this process in a nested run, through the function
its own entry point calls, and hands its output on by artifact or model URI. A step whose cache key matches
a finished run is reused (plumbing/keys.py, cache.py); one pipeline runs at a time per experiment
(plumbing/lock.py). `force=true` reruns every step, `force=<step>` that step and the ones after it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

import mlflow

from demand.sources import HourlyBytes
from plumbing import settings
from plumbing.cli import argument_parser, run_cli
from plumbing.params import Plan, make_plan, parse_overrides
from plumbing.runner import PipelineResult, StepRunner, beating, import_in_background, locked_runner, summary
from plumbing.tracking import StepResult, step_run

# Imported while train fits: skops saves and loads the model, matplotlib draws evaluate's plots.
AFTER_THE_FIT = ("skops.io", "demand.plots")


def step_function(name: str, then_import: tuple[str, ...] = ()) -> Callable[..., StepResult]:
    """The step's work function, imported only when the step runs (a reused step loads no scikit-learn,
    xgboost or matplotlib), and `then_import`, what later steps need, imported while it works."""
    function = getattr(importlib.import_module(f"steps.{name}"), name)
    import_in_background(*then_import)
    return function


def run_pipeline(plan: Plan, given: dict[str, str] | None = None) -> PipelineResult:
    """All the steps under one parent run (`given`: see step_run), holding the experiment's pipeline lock."""
    with step_run("main", given) as parent, beating(), locked_runner(parent, plan.force) as runner:
        evaluated, registered = train_to_registry(runner, plan, prepare_features(runner, plan))
    info = parent.info
    return PipelineResult(
        info.run_id, info.experiment_id, runner.records, evaluated.metrics, registered.summary, runner.failed
    )


def prepare_features(runner: StepRunner, plan: Plan) -> StepResult:
    """ingest and featurize, run or reused: the featurize result."""
    fetched: list[HourlyBytes] = []

    def data_digest() -> dict[str, str]:
        fetched.append(settings.fetch_data(plan.data))
        return {"data": fetched[0].sha256}

    def data_used() -> dict[str, str]:
        """What was read, as params of the ingest run (run or reused) and of the parent run."""
        read = {"data_source": fetched[0].source, "data_sha256": fetched[0].sha256}
        mlflow.log_params(read, run_id=runner.parent_run_id)
        return {"data": fetched[0].source, **read}

    ingested = runner.run(
        "ingest", {}, data_digest, lambda: step_function("ingest")(plan.data, fetched[0]), data_used
    )
    table = ingested.outputs["table"]
    return runner.run(
        "featurize",
        {"split": plan.split} | ({"test_days": plan.test_days} if plan.split == "time" else {}),
        lambda: {"table": ingested.digest},
        lambda: step_function("featurize")(table, plan.split, plan.test_days),
    )


def train_to_registry(
    runner: StepRunner, plan: Plan, featurized: StepResult
) -> tuple[StepResult, StepResult]:
    """train, evaluate and register, run or reused: the evaluate and register results."""
    features = featurized.outputs["features"]
    trained = runner.run(
        "train",
        {
            "model": plan.model,
            "target": plan.target,
            "hyperparameters": plan.hyperparameters,
            "seed": settings.config()["seed"],
            "requirements": settings.requirements_digest(),  # they are logged with the model
        },
        lambda: {"features": featurized.digest},
        lambda: step_function("train", AFTER_THE_FIT)(features, plan.model, plan.hyperparameters, plan.split),
    )
    evaluated = runner.run(
        "evaluate",
        dict(settings.config()["evaluate"]),
        lambda: {"features": featurized.digest, "model": trained.digest},
        lambda: step_function("evaluate")(features, trained.outputs["model"]),
    )
    registered = runner.run(
        "register",
        {"model_name": plan.model_name, "registry": settings.config()["registry"]},
        lambda: {"features": featurized.digest, "model": trained.digest},
        lambda: step_function("register")(features, trained.outputs["model"], plan.model_name),
    )
    return evaluated, registered


def main() -> None:
    defaults = settings.parameter_defaults("main")
    parser = argument_parser(__doc__)
    for name, default in defaults.items():
        parser.add_argument(f"--{name}", default=default)
    args, rest = parser.parse_known_args()

    def work() -> None:
        overrides = parse_overrides(rest)
        plan = make_plan(overrides=overrides, **vars(args))  # vars: MLproject's parameters
        print(summary(run_pipeline(plan, vars(args) | overrides)))  # the one place this project prints

    run_cli(work)


if __name__ == "__main__":
    main()
