"""The run a step logs into, and what it hands on: its output artifacts, their URIs and digest."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
from mlflow.utils import mlflow_tags

from demand.errors import PipelineError
from plumbing import settings
from plumbing.cli import Interrupted
from plumbing.faults import bound_the_retries_after
from plumbing.liveness import HEARTBEAT, liveness_tags
from plumbing.names import (
    ENTRY_POINT_TAG,
    MARKED_FAILED_TAG,
    OUTPUT_DIGEST_TAG,
    OUTPUTS_TAG,
    SUMMARY_TAG,
)

log = logging.getLogger(__name__)

# Tags `mlflow run` puts on an entry point's run; a nested step run copies them from its parent, so it
# looks exactly like the run of `mlflow run . -e <step>`.
PROJECT_RUN_TAGS = (
    mlflow_tags.MLFLOW_USER,
    mlflow_tags.MLFLOW_SOURCE_NAME,
    mlflow_tags.MLFLOW_SOURCE_TYPE,
    mlflow_tags.MLFLOW_GIT_COMMIT,
    mlflow_tags.MLFLOW_GIT_BRANCH,
    mlflow_tags.MLFLOW_GIT_REPO_URL,
    "mlflow.gitRepoURL",  # the older name of the repository's URL, which `mlflow run` still sets
    mlflow_tags.MLFLOW_PROJECT_ENV,
    mlflow_tags.MLFLOW_PROJECT_BACKEND,
)
BEFORE_IT_STARTED = "before it started (`mlflow run` took over pipeline.orphan_after_seconds to get here)"
WHILE_IT_LOOKED_DEAD = "while this process looked dead (paused or suspended?)"


@dataclass(frozen=True)
class StepResult:
    """What a step hands on: its run, the URIs the next step reads, a digest of what it produced."""

    run_id: str
    outputs: dict[str, str]
    digest: str
    metrics: dict[str, float] = field(default_factory=dict)
    summary: str = ""  # one line for the pipeline's summary: what the step decided


@contextmanager
def step_run(entry_point: str, given: dict[str, str] | None = None) -> Iterator[mlflow.ActiveRun]:
    """The run a step logs into: nested under an active (pipeline) run, else its own run.

    Inside `mlflow run` the latter resumes the run that `mlflow run` created (MLFLOW_RUN_ID), which logged
    the entry point's parameters; a run this process creates logs them from `given`.
    An exception marks the run FAILED; an interruption (SIGTERM, SIGINT) marks it KILLED. While it is
    open, the process's heartbeat refreshes it (plumbing/liveness.py).
    """
    run_tags = {**liveness_tags(), ENTRY_POINT_TAG: entry_point}
    parent = mlflow.active_run()
    launched = "MLFLOW_RUN_ID" in os.environ
    if parent is None:
        context = mlflow.start_run()
    else:
        parent_tags = mlflow.get_run(parent.info.run_id).data.tags
        run_tags |= {key: parent_tags[key] for key in PROJECT_RUN_TAGS if key in parent_tags}
        context = mlflow.start_run(run_name=entry_point, nested=True, tags=run_tags)
    interval = settings.config()["pipeline"]["heartbeat_seconds"]
    with HEARTBEAT.beating(mlflow.MlflowClient(), interval), context as run:
        if parent is None:  # a run `mlflow run` made: another pipeline may have judged it an orphan
            _refuse_if_marked_failed(run.info.run_id, BEFORE_IT_STARTED)
            mlflow.set_tags(run_tags)
            if given and not launched:
                mlflow.log_params(given)
        HEARTBEAT.runs.add(run.info.run_id)
        try:
            yield run
            _refuse_if_marked_failed(run.info.run_id, WHILE_IT_LOOKED_DEAD)
        except (KeyboardInterrupt, Interrupted):
            mlflow.end_run("KILLED")
            raise
        except Exception as error:
            bound_the_retries_after(error)  # before the run is marked FAILED, which would retry too
            raise
        finally:
            HEARTBEAT.runs.discard(run.info.run_id)


def _refuse_if_marked_failed(run_id: str, when: str) -> None:
    """A run another pipeline marked FAILED stays FAILED: its work is not kept, so that a paused process
    that resumes never turns it back into FINISHED."""
    marked_by = mlflow.get_run(run_id).data.tags.get(MARKED_FAILED_TAG)
    if marked_by:
        raise PipelineError(
            f"run {run_id} was marked FAILED by pipeline run {marked_by} {when}; its work is not kept: "
            "run the pipeline again"
        )


def record_outputs(
    outputs: dict[str, str], files: list[Path] | None = None, digest: str | None = None, summary: str = ""
) -> str:
    """Tag the active run with what it hands on, the sha256 of what it produced, and what it decided."""
    digest = digest or digest_files(files or [])
    tags = {OUTPUTS_TAG: json.dumps(outputs, sort_keys=True), OUTPUT_DIGEST_TAG: digest}
    mlflow.set_tags(tags | ({SUMMARY_TAG: summary} if summary else {}))
    return digest


def digest_files(files: list[Path]) -> str:
    """sha256 over the names and bytes of `files`, in name order."""
    digest = hashlib.sha256()
    for path in sorted(files, key=lambda p: p.name):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def artifact_uri(run_id: str, path: str) -> str:
    """A URI for a run's artifact that any tracking store can resolve."""
    return f"runs:/{run_id}/{path}"


def log_outputs(
    files: dict[str, Callable[[Path], None]], outputs: dict[str, str], digested: tuple[str, ...] = ()
) -> StepResult:
    """Write each artifact (its path in the run → a function that writes it) in a scratch folder, log them
    in the active run, and record what the step hands on: `outputs` (name → artifact path) as URIs, and
    the sha256 of the artifacts named in `digested` (all of them when empty)."""
    run_id = mlflow.active_run().info.run_id
    uris = {name: artifact_uri(run_id, path) for name, path in outputs.items()}
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        for path, write in files.items():
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            write(root / path)
        mlflow.log_artifacts(scratch)
        digest = record_outputs(uris, [root / path for path in digested or files])
    return StepResult(run_id, uris, digest)
