"""main: the whole pipeline, ingest -> featurize -> train -> evaluate -> register, as nested runs of one run.

Parameters: those of the steps (data, split, test_days, model, model_name), `force`, and any model
hyperparameter from config.yaml as `-P <name>=<value>`. Each step runs in this process inside a nested run,
through the same function its own entry point calls, and hands its output to the next step by artifact or
model URI.

Reruns are cheap and safe (see steps/cache.py and steps/lock.py): a step whose cache key matches a
finished run is reused, not recomputed; one pipeline runs at a time per experiment; runs left RUNNING by
a dead pipeline are marked FAILED. `force=true` reruns every step, `force=<step>` that step and the rest.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import mlflow
from mlflow import MlflowClient

from steps import settings
from steps.liveness import fail_abandoned_runs, heartbeat
from steps.lock import pipeline_lock
from steps.names import BASELINES
from steps.params import (
    forced_steps,
    parse_model_name,
    parse_overrides,
    validate_split,
    validate_training,
)
from steps.runner import StepRecord, StepRunner, step_function
from steps.sources import HourlyBytes, fetch_hourly
from steps.tracking import StepResult, argument_parser, run_cli, step_run

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Plan:
    """The pipeline's parameters, checked."""

    data: str
    split: str
    test_days: int
    model: str
    hyperparameters: dict[str, Any]
    model_name: str
    force: tuple[str, ...]


@dataclass(frozen=True)
class PipelineResult:
    run_id: str
    experiment_id: str
    steps: list[StepRecord]
    metrics: dict[str, float]
    registry: str  # what register decided
    marked_failed: list[str]


def make_plan(
    data: str,
    split: str,
    test_days: str,
    model: str,
    overrides: dict[str, str],
    *,
    model_name: str | None = None,
    force: str = "false",
) -> Plan:
    """Every parameter checked before any work starts."""
    split, days = validate_split(split, test_days)
    hyperparameters = validate_training(model, overrides)
    name = parse_model_name(model_name or settings.parameter_defaults("main")["model_name"])
    return Plan(data, split, days, model, hyperparameters, name, forced_steps(force))


def run_pipeline(plan: Plan) -> PipelineResult:
    """All four steps under one parent run, holding the experiment's pipeline lock."""
    options = settings.config()["pipeline"]
    with step_run("main") as parent:
        client = MlflowClient()
        experiment_id = parent.info.experiment_id
        experiment_name = client.get_experiment(experiment_id).name
        with (
            heartbeat(client, options["heartbeat_seconds"]),
            pipeline_lock(
                client, experiment_name, parent.info.run_id,
                wait=options["lock_wait_seconds"], stale_after=options["stale_after_seconds"],
            ),
        ):  # fmt: skip
            marked_failed = fail_abandoned_runs(
                client, experiment_id, parent.info.run_id, options["stale_after_seconds"]
            )
            runner = StepRunner(client, experiment_id, parent.info.run_id, plan.force)
            evaluated, registered = _run_steps(runner, plan)
    return PipelineResult(
        parent.info.run_id,
        experiment_id,
        runner.records,
        evaluated.metrics,
        registered.summary,
        marked_failed,
    )


def _run_steps(runner: StepRunner, plan: Plan) -> tuple[StepResult, StepResult]:
    fetched: list[HourlyBytes] = []

    def data_digest() -> dict[str, str]:
        fetched.append(fetch_hourly(plan.data))
        return {"data": fetched[0].sha256}

    ingested = runner.run("ingest", {}, data_digest, lambda: step_function("ingest")(plan.data, fetched[0]))
    table = ingested.outputs["table"]
    featurized = runner.run(
        "featurize",
        {"split": plan.split} | ({"test_days": plan.test_days} if plan.split == "time" else {}),
        lambda: {"table": ingested.digest},
        lambda: step_function("featurize")(table, plan.split, plan.test_days),
    )
    features = featurized.outputs["features"]
    trained = runner.run(
        "train",
        {
            "model": plan.model,
            "hyperparameters": plan.hyperparameters,
            "seed": settings.config()["seed"],
            "requirements": settings.requirements_digest(),  # they are logged with the model
        },
        lambda: {"features": featurized.digest},
        lambda: step_function("train")(features, plan.model, plan.hyperparameters),
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


def summary(result: PipelineResult) -> str:
    """What ran or was reused and why, how long it took, the headline metrics, and where to look."""
    lines = ["", f"Pipeline run {result.run_id} (experiment {result.experiment_id})"]
    if result.marked_failed:
        lines.append(f"  marked FAILED, left RUNNING by a dead pipeline: {', '.join(result.marked_failed)}")
    lines += [
        f"  {step.name:<10} {step.action:<7} {step.run_id}  {step.seconds:6.1f} s  {step.why}"
        for step in result.steps
    ]
    m = result.metrics
    lines.append(
        f"Holdout: RMSE {m['rmse']:.1f}  MAE {m['mae']:.1f}  R2 {m['r2']:.3f}  RMSLE {m['rmsle']:.3f}"
    )
    for name in BASELINES:
        lines.append(
            f"  vs {name}: RMSE {m[f'baseline_{name}_rmse']:.1f}, skill {m[f'skill_vs_{name}']:+.1%}"
        )
    register = next(step for step in result.steps if step.name == "register")
    if register.action == "reused":
        lines.append(f"Registry: nothing registered, the inputs are unchanged; last time: {result.registry}")
    else:
        lines.append(f"Registry: {result.registry}")
    lines.append(f"Look: mlflow ui --backend-store-uri {mlflow.get_tracking_uri()}")
    return "\n".join(lines)


def main() -> None:
    defaults = settings.parameter_defaults("main")
    parser = argument_parser(__doc__)
    for name, default in defaults.items():
        parser.add_argument(f"--{name}", default=default)
    args, rest = parser.parse_known_args()

    def work() -> None:
        plan = make_plan(
            args.data,
            args.split,
            args.test_days,
            args.model,
            parse_overrides(rest),
            model_name=args.model_name,
            force=args.force,
        )
        print(summary(run_pipeline(plan)))  # the CLI's own output: the one place this project prints

    run_cli(work)


if __name__ == "__main__":
    main()
