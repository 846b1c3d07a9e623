"""Running one step of the pipeline: in a nested run, or reused from a finished run with the same key."""

from __future__ import annotations

import importlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Run

from steps import cache
from steps.errors import PipelineError
from steps.names import OUTPUT_DIGEST_TAG, OUTPUTS_TAG, REUSED_FROM_TAG, SUMMARY_TAG
from steps.tracking import StepResult, step_run


@dataclass(frozen=True)
class StepRecord:
    name: str
    run_id: str
    seconds: float
    action: str  # "ran" or "reused"
    why: str


def step_function(name: str) -> Callable[..., StepResult]:
    """The step's work function, imported only when the step really runs: a reused step loads no
    pandas-heavy modules, scikit-learn, xgboost or matplotlib."""
    return getattr(importlib.import_module(f"steps.{name}"), name)


class StepRunner:
    """Runs each step in a nested run, or reuses a finished run with the same cache key."""

    def __init__(
        self, client: MlflowClient, experiment_id: str, parent_run_id: str, force: tuple[str, ...]
    ) -> None:
        self.client, self.experiment_id, self.parent_run_id, self.force = (
            client,
            experiment_id,
            parent_run_id,
            force,
        )
        self.records: list[StepRecord] = []

    def run(
        self,
        name: str,
        params: dict[str, Any],
        inputs: Callable[[], dict[str, str]],
        work: Callable[[], StepResult],
    ) -> StepResult:
        started = time.perf_counter()
        try:
            with step_run(name) as run:
                parts = cache.key_parts(name, params, inputs())
                key = cache.cache_key(parts)
                mlflow.set_tags(cache.key_tags(name, key, parts))
                reusable = name not in self.force
                source = cache.find_reusable(self.client, self.experiment_id, name, key) if reusable else None
                if source is not None:
                    result, action, why = (
                        self._reuse(source),
                        "reused",
                        f"same key as run {source.info.run_id}",
                    )
                else:
                    action, why = "ran", self._why(name, parts)
                    result = work()
        except PipelineError as error:
            raise PipelineError(f"step {name} failed: {error}") from None
        self.records.append(StepRecord(name, run.info.run_id, time.perf_counter() - started, action, why))
        return result

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
        return "no earlier run" if before is None else cache.describe_change(before, parts)
