"""main: the whole pipeline, ingest -> featurize -> train -> evaluate -> register, as nested runs of one run.

Parameters: those of the steps (data, split, test_days, model, hyperparameters, model_name), `force`, and
any hyperparameter in config.yaml as `-P <name>=<value>`. Each step runs in this process in a nested run,
through the function its own entry point calls, and hands its output on by artifact or model URI. A step
whose reuse key matches a finished run is reused instead (docs/reruns.md says what each key covers); one
pipeline runs at a time per experiment. `force=true` reruns every step, `force=<step>` that step and the
ones after it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from functools import cache, partial

from plumbing import settings
from plumbing.cli import argument_parser, run_cli
from plumbing.data_source import fetch_data
from plumbing.hyperparameters import parse_overrides
from plumbing.pipeline.runner import PipelineResult, StepRunner, locked_runner, summary
from plumbing.plan import Plan, make_plan
from plumbing.tracking import StepResult, step_run


def step(name: str) -> Callable[..., StepResult]:
    """The work function of step `name`, imported only when the step runs: a reused step loads no
    scikit-learn, XGBoost or matplotlib."""
    return getattr(importlib.import_module(f"steps.{name}"), name)


def run_pipeline(plan: Plan, given: dict[str, str] | None = None) -> PipelineResult:
    """All the steps under one parent run (`given`: see step_run), holding the experiment's pipeline lock."""
    with step_run("main", given) as parent, locked_runner(parent, plan.force) as runner:
        featurized = prepare_features(runner, plan)
        evaluated, registered = train_to_registry(runner, plan, featurized)
    return runner.result(evaluated, registered)


def prepare_features(runner: StepRunner, plan: Plan) -> StepResult:
    """ingest and featurize, run or reused: the featurize result."""
    hourly = cache(partial(fetch_data, plan.data))  # fetched once, inside the ingest run
    ingested = runner.run(
        "ingest",
        params={},
        inputs=lambda: {"data": hourly().sha256},
        work=lambda: step("ingest")(hourly()),
        read=lambda: hourly().read_params(),
    )
    return runner.run(
        "featurize",
        params={"split": plan.split} | ({"test_days": plan.test_days} if plan.split == "time" else {}),
        inputs={"table": ingested.digest},
        work=lambda: step("featurize")(ingested.outputs["table"], plan.split, plan.test_days),
    )


def train_to_registry(
    runner: StepRunner, plan: Plan, featurized: StepResult
) -> tuple[StepResult, StepResult]:
    """train, evaluate and register, run or reused: the evaluate and register results."""
    features = featurized.outputs["features"]
    trained = runner.run(
        "train",
        params={
            "model": plan.model,
            "target": plan.target,
            "hyperparameters": plan.hyperparameters,
            "seed": settings.config()["seed"],
            "requirements": settings.requirements_digest(),  # they are logged with the model
        },
        inputs={"features": featurized.digest},
        work=lambda: step("train")(features, plan.model, plan.hyperparameters, plan.split),
    )
    evaluated = runner.run(
        "evaluate",
        params=dict(settings.config()["evaluate"]),
        inputs={"features": featurized.digest, "model": trained.digest},
        work=lambda: step("evaluate")(features, trained.outputs["model"]),
    )
    registered = runner.run(
        "register",
        params={"model_name": plan.model_name, "registry": settings.config()["registry"]},
        inputs={"features": featurized.digest, "model": trained.digest},
        work=lambda: step("register")(features, trained.outputs["model"], plan.model_name),
    )
    return evaluated, registered


def main(argv: list[str] | None = None) -> None:
    parser = argument_parser(__doc__)
    for name, default in settings.parameter_defaults("main").items():
        parser.add_argument(f"--{name}", default=default)
    args, rest = parser.parse_known_args(argv)

    def work() -> None:
        overrides = parse_overrides(rest)
        plan = make_plan(overrides=overrides, **vars(args))  # vars: MLproject's parameters
        print(summary(run_pipeline(plan, vars(args) | overrides)))  # the one place this project prints

    run_cli(work)


if __name__ == "__main__":
    main()
