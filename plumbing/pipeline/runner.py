"""Running the pipeline's steps, each in a nested run or reused from a finished run with the same key,
and the summary of what happened."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Run

from demand.errors import PipelineError, redacted
from demand.metrics import BASELINES, kaggle_comparison
from plumbing import settings
from plumbing.faults import without_credentials
from plumbing.liveness import fail_abandoned_runs
from plumbing.names import OUTPUT_DIGEST_TAG, OUTPUTS_TAG, REUSED_FROM_TAG, SUMMARY_TAG
from plumbing.pipeline import cache, keys
from plumbing.pipeline.lock import pipeline_lock
from plumbing.tracking import StepResult, step_run


@dataclass(frozen=True)
class StepRecord:
    name: str
    run_id: str
    seconds: float
    action: str  # "ran" or "reused"
    why: str


@dataclass(frozen=True)
class PipelineResult:
    run_id: str
    experiment_id: str
    steps: list[StepRecord]
    metrics: dict[str, float]
    registry: str  # what register decided
    marked_failed: list[str]


class StepRunner:
    """Runs each step in a nested run, or reuses a finished run with the same cache key. Before each step
    it calls `check_lock`, which raises once the pipeline no longer holds its lock."""

    def __init__(
        self,
        client: MlflowClient,
        experiment_id: str,
        parent_run_id: str,
        force: tuple[str, ...],
        check_lock: Callable[[], None],
    ) -> None:
        self.client, self.experiment_id, self.parent_run_id = client, experiment_id, parent_run_id
        self.force, self.check_lock = force, check_lock
        self.records: list[StepRecord] = []
        self.failed: list[str] = []  # runs this pipeline marked FAILED, left RUNNING by a dead one

    def run(
        self,
        name: str,
        *,
        params: dict[str, Any],
        inputs: dict[str, str] | Callable[[], dict[str, str]],
        work: Callable[[], StepResult],
        read: Callable[[], dict[str, str]] = dict,
    ) -> StepResult:
        """Run step `name` in a nested run, or reuse a finished run with the same key: the key covers
        `params`, the digests of its `inputs` (given, or computed inside the step's run, where a failure
        marks it FAILED) and its code (plumbing/pipeline/keys.py). `read`, called after `inputs`, names
        what the step read (the data): logged as params of the step's run whether it runs or is reused,
        and of the pipeline's run."""
        started = time.perf_counter()
        self.check_lock()
        try:
            with step_run(name) as run:
                parts = keys.key_parts(name, params, inputs() if callable(inputs) else inputs)
                mlflow.log_params(read())
                mlflow.log_params(read(), run_id=self.parent_run_id)
                key = keys.cache_key(parts)
                mlflow.set_tags(keys.key_tags(name, key, parts))
                reusable = name not in self.force
                source = cache.find_reusable(self.client, self.experiment_id, name, key) if reusable else None
                if source is not None:
                    action, why = "reused", f"same key as run {source.info.run_id}"
                    result = self._reuse(source)
                else:
                    action, why = "ran", self._why(name, parts)
                    result = work()
        except PipelineError as error:
            raise PipelineError(f"step {name} failed: {error}") from None
        self.records.append(StepRecord(name, run.info.run_id, time.perf_counter() - started, action, why))
        return result

    def result(self, evaluated: StepResult, registered: StepResult) -> PipelineResult:
        """What the pipeline did: every step's record, the holdout metrics, the registry's decision."""
        return PipelineResult(
            self.parent_run_id,
            self.experiment_id,
            self.records,
            evaluated.metrics,
            registered.summary,
            self.failed,
        )

    def _reuse(self, source: Run) -> StepResult:
        """Point this nested run at the run that did the work; do none of it."""
        tags = source.data.tags
        copied = {name: tags[name] for name in (OUTPUTS_TAG, OUTPUT_DIGEST_TAG, SUMMARY_TAG) if name in tags}
        mlflow.set_tags({REUSED_FROM_TAG: source.info.run_id, **copied})
        outputs = json.loads(tags[OUTPUTS_TAG])
        return StepResult(
            source.info.run_id,
            outputs,
            tags[OUTPUT_DIGEST_TAG],
            dict(source.data.metrics),
            tags.get(SUMMARY_TAG, ""),
        )

    def _why(self, name: str, parts: dict[str, Any]) -> str:
        if name in self.force:
            return "forced"
        before = cache.previous_parts(self.client, self.experiment_id, name, self.parent_run_id)
        return "no earlier run" if before is None else keys.describe_change(before, parts)


@contextmanager
def locked_runner(parent: mlflow.ActiveRun, force: tuple[str, ...]) -> Iterator[StepRunner]:
    """A StepRunner for steps nested under `parent`, holding the experiment's pipeline lock; runs left
    RUNNING by a dead pipeline are marked FAILED first (listed in `runner.failed`)."""
    options = settings.config()["pipeline"]
    stale_after, orphan_after = options["stale_after_seconds"], options["orphan_after_seconds"]
    client, run_id, experiment_id = MlflowClient(), parent.info.run_id, parent.info.experiment_id
    name, wait = client.get_experiment(experiment_id).name, options["lock_wait_seconds"]
    with pipeline_lock(client, name, run_id, wait=wait, stale_after=stale_after) as lock:
        runner = StepRunner(client, experiment_id, run_id, force, lock.check)
        runner.failed = fail_abandoned_runs(client, experiment_id, run_id, stale_after, orphan_after)
        yield runner


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
    if "kaggle_rmsle" in m:
        lines.append(f"  Kaggle protocol: {kaggle_comparison(m)}")
    for name in BASELINES:
        lines.append(
            f"  vs {name}: RMSE {m[f'baseline_{name}_rmse']:.1f}, skill {m[f'skill_vs_{name}']:+.1%}"
        )
    register = next(step for step in result.steps if step.name == "register")
    if register.action == "reused":
        lines.append(f"Registry: nothing registered, the inputs are unchanged; last time: {result.registry}")
    else:
        lines.append(f"Registry: {result.registry}")
    uri = mlflow.get_tracking_uri()
    server = uri.startswith(("http://", "https://"))
    lines.append(
        f"Look: {without_credentials(uri)}"
        if server
        else f"Look: mlflow ui --backend-store-uri {redacted(uri)}"
    )
    return "\n".join(lines)
