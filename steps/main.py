"""main: the whole pipeline, ingest -> featurize -> train -> evaluate, as nested runs of one parent run.

Parameters: those of the steps (data, split, test_days, model) plus any model hyperparameter from
config.yaml as `-P <name>=<value>`. Each step runs in this process inside a nested run, through the same
run function its own entry point calls, and hands its output to the next step by artifact or model URI.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import mlflow

from steps import settings
from steps.errors import PipelineError
from steps.evaluate import run_evaluate
from steps.featurize import run_featurize, validate_split
from steps.ingest import run_ingest
from steps.names import BASELINES
from steps.tracking import argument_parser, run_cli, step_run
from steps.train import parse_overrides, run_train, validate_training

log = logging.getLogger(__name__)
Result = TypeVar("Result")


@dataclass(frozen=True)
class StepRecord:
    name: str
    run_id: str
    seconds: float


@dataclass(frozen=True)
class PipelineResult:
    run_id: str
    experiment_id: str
    steps: list[StepRecord]
    metrics: dict[str, float]


def timed_step(name: str, records: list[StepRecord], work: Callable[[], Result]) -> Result:
    """Run one step, note its run id and wall time, and name the step in any error."""
    started = time.perf_counter()
    try:
        result = work()
    except PipelineError as error:
        raise PipelineError(f"step {name} failed: {error}") from None
    records.append(StepRecord(name, result.run_id, time.perf_counter() - started))
    return result


def run_pipeline(
    data: str, split: str, test_days: str, model: str, overrides: dict[str, str]
) -> PipelineResult:
    """All four steps under one parent run; the first failing step stops the pipeline."""
    validate_split(split, test_days)
    validate_training(model, overrides)
    records: list[StepRecord] = []
    with step_run("main") as parent:
        ingested = timed_step("ingest", records, lambda: run_ingest(data))
        featurized = timed_step(
            "featurize", records, lambda: run_featurize(ingested.table_uri, split, test_days)
        )
        trained = timed_step("train", records, lambda: run_train(featurized.features_uri, model, overrides))
        evaluated = timed_step(
            "evaluate", records, lambda: run_evaluate(featurized.features_uri, trained.model_uri)
        )
    return PipelineResult(parent.info.run_id, parent.info.experiment_id, records, evaluated.metrics)


def summary(result: PipelineResult) -> str:
    """What ran, how long it took, the headline metrics, and where to look."""
    lines = ["", f"Pipeline run {result.run_id} (experiment {result.experiment_id})"]
    lines += [f"  {step.name:<10} {step.run_id}  {step.seconds:6.1f} s" for step in result.steps]
    m = result.metrics
    lines.append(
        f"Holdout: RMSE {m['rmse']:.1f}  MAE {m['mae']:.1f}  R2 {m['r2']:.3f}  RMSLE {m['rmsle']:.3f}"
    )
    for name in BASELINES:
        lines.append(
            f"  vs {name}: RMSE {m[f'baseline_{name}_rmse']:.1f}, skill {m[f'skill_vs_{name}']:+.1%}"
        )
    lines.append(f"Look: mlflow ui --backend-store-uri {mlflow.get_tracking_uri()}")
    return "\n".join(lines)


def main() -> None:
    defaults = settings.parameter_defaults("main")
    parser = argument_parser(__doc__)
    for name, default in defaults.items():
        parser.add_argument(f"--{name}", default=default)
    args, rest = parser.parse_known_args()

    def work() -> Any:
        result = run_pipeline(args.data, args.split, args.test_days, args.model, parse_overrides(rest))
        print(summary(result))  # the CLI's own output: the one place this project prints

    run_cli(work)


if __name__ == "__main__":
    main()
