"""MLflow plumbing shared by the steps: the run a step logs into, what it hands on, artifact I/O."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd

from demand.errors import PipelineError, shown, shown_path
from plumbing.cli import Interrupted, server_trouble
from plumbing.liveness import BEATING_RUNS, liveness_tags
from plumbing.names import (
    ENTRY_POINT_TAG,
    MARKED_FAILED_TAG,
    OUTPUT_DIGEST_TAG,
    OUTPUTS_TAG,
    SPLIT_FILE,
    SUMMARY_TAG,
)

log = logging.getLogger(__name__)

# Tags `mlflow run` puts on an entry point's run; a nested step run copies them from its parent, so it
# looks exactly like the run of `mlflow run . -e <step>`.
PROJECT_RUN_TAGS = (
    "mlflow.user",
    "mlflow.source.name",
    "mlflow.source.type",
    "mlflow.source.git.commit",
    "mlflow.source.git.branch",
    "mlflow.source.git.repoURL",
    "mlflow.gitRepoURL",
    "mlflow.project.env",
    "mlflow.project.backend",
)
# A run's artifact, a logged model (models:/m-...) or a model version (models:/name/3): never rewritten.
UNCHANGING_URI = re.compile(r"runs:/|models:/[^@]+/\d+$|models:/m-[0-9a-f]+$")
KEPT_READS = 8
_KEPT: OrderedDict[tuple[str, str], Any] = OrderedDict()
BEFORE_IT_STARTED = "before it started (`mlflow run` took over pipeline.orphan_after_seconds to get here)"
WHILE_IT_LOOKED_DEAD = "while this process looked dead (paused or suspended?)"
URI_HINT = "pass a URI that the previous step logged (its run's artifacts or models:/<id>)"


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
    An exception marks the run FAILED; an interruption (SIGTERM, SIGINT) marks it KILLED.
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
    with context as run:
        if parent is None:  # a run `mlflow run` made: another pipeline may have judged it an orphan
            _refuse_if_marked_failed(run.info.run_id, BEFORE_IT_STARTED)
            mlflow.set_tags(run_tags)
            if given and not launched:
                mlflow.log_params(given)
        BEATING_RUNS.add(run.info.run_id)
        try:
            yield run
            _refuse_if_marked_failed(run.info.run_id, WHILE_IT_LOOKED_DEAD)
        except (KeyboardInterrupt, Interrupted):
            mlflow.end_run("KILLED")
            raise
        finally:
            BEATING_RUNS.discard(run.info.run_id)


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


def read_table(uri: str, what: str) -> pd.DataFrame:
    """A Parquet table logged as an artifact, read through a temporary copy (once per process)."""
    return read_once(uri, lambda: read_artifact(uri, what, pd.read_parquet)).copy()


def read_split(features: str) -> dict[str, Any]:
    """The split and test_days that made the features folder at `features`."""
    uri = f"{features}/{SPLIT_FILE}"
    return dict(read_once(uri, lambda: read_artifact(uri, "split file", _json)))


def _json(path: str) -> Any:
    return json.loads(Path(path).read_text())


def read_once(uri: str, read: Callable[[], Any]) -> Any:
    """What `read` returns for `uri`, read once per process when the URI names something that cannot
    change: `main` runs every step in one process, and train, evaluate and register read the same tables
    and model. Aliases (models:/name@champion) are read every time. The newest KEPT_READS are kept."""
    if not UNCHANGING_URI.match(uri):
        return read()
    key = (mlflow.get_tracking_uri(), uri)
    if key not in _KEPT:
        _KEPT[key] = read()
        while len(_KEPT) > KEPT_READS:
            _KEPT.popitem(last=False)
    _KEPT.move_to_end(key)
    return _KEPT[key]


def read_artifact(uri: str, what: str, reader: Callable[[str], Any]) -> Any:
    """An artifact read by `reader` from a temporary copy; a bad URI or file is one line."""
    with tempfile.TemporaryDirectory() as scratch:
        try:
            path = mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=scratch)
            return reader(path)
        except Exception as error:  # MLflow and pyarrow raise several types for a bad URI or file
            if server_trouble(error):
                raise  # not the URI's fault: run_cli says what happened
            _raise_if_the_artifact_store_is_down(uri, what)
            reason = _first_line(error)
            raise PipelineError(
                f"cannot read the {what} at {shown_path(uri)} ({shown(reason)}); {URI_HINT}"
            ) from None


def _raise_if_the_artifact_store_is_down(uri: str, what: str) -> None:
    """A download that failed for a runs:/ URI: if even listing that run's artifacts fails, the store behind
    the tracking server is down (MLflow reports it only as 'please ensure that the path is correct')."""
    run_id = uri.removeprefix("runs:/").split("/", 1)[0]
    if not uri.startswith("runs:/"):
        return
    try:
        mlflow.MlflowClient().list_artifacts(run_id)
    except Exception as error:  # MLflow and requests raise several types when the store does not answer
        if getattr(error, "error_code", "") == "RESOURCE_DOES_NOT_EXIST":
            return  # no such run: the URI is wrong, which the caller says
        raise PipelineError(
            f"cannot read the {what}: the tracking server could not reach its artifact store "
            f"({shown(_first_line(error))}); its log says why. Run again once it is back: finished steps "
            "are reused"
        ) from None


def load_model(uri: str) -> mlflow.pyfunc.PyFuncModel:
    """The model logged at a model URI, as MLflow serves it (serving/model.py); loaded once per process."""
    try:
        return read_once(uri, lambda: mlflow.pyfunc.load_model(uri))
    except Exception as error:  # as above
        if server_trouble(error):
            raise
        raise PipelineError(
            f"cannot load the model at {shown_path(uri)} ({shown(_first_line(error))}); {URI_HINT}"
        ) from None


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
