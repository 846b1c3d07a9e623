"""MLflow plumbing shared by the steps: the run a step logs into, artifact I/O, and the CLI wrapper."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import mlflow
import pandas as pd

from steps.errors import PipelineError
from steps.names import ENTRY_POINT_TAG, EXPERIMENT_NAME

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
URI_HINT = "pass a URI that the previous step logged (its run's artifacts or models:/<id>)"
EXPERIMENT_ENV_VARS = ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID")


@contextmanager
def step_run(entry_point: str) -> Iterator[mlflow.ActiveRun]:
    """The run a step logs into: nested under an active (pipeline) run, else its own run.

    Inside `mlflow run` the latter resumes the run that `mlflow run` created (MLFLOW_RUN_ID).
    An exception marks the run FAILED.
    """
    parent = mlflow.active_run()
    if parent is None:
        with mlflow.start_run() as run:
            mlflow.set_tag(ENTRY_POINT_TAG, entry_point)
            yield run
        return
    parent_tags = mlflow.get_run(parent.info.run_id).data.tags
    tags = {key: parent_tags[key] for key in PROJECT_RUN_TAGS if key in parent_tags}
    tags[ENTRY_POINT_TAG] = entry_point
    with mlflow.start_run(run_name=entry_point, nested=True, tags=tags) as run:
        yield run


def artifact_uri(run_id: str, path: str) -> str:
    """A URI for a run's artifact that any tracking store can resolve."""
    return f"runs:/{run_id}/{path}"


def read_table(uri: str, what: str) -> pd.DataFrame:
    """A Parquet table logged as an artifact, read through a temporary copy."""
    with tempfile.TemporaryDirectory() as scratch:
        try:
            path = mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=scratch)
        except Exception as error:  # MLflow raises several types for a bad or missing URI
            raise PipelineError(
                f"cannot read the {what} at {uri} ({_first_line(error)}); {URI_HINT}"
            ) from None
        return pd.read_parquet(path)


def load_model(uri: str) -> Any:
    """The scikit-learn pipeline logged at a model URI."""
    try:
        return mlflow.sklearn.load_model(uri)
    except Exception as error:  # as above
        raise PipelineError(f"cannot load the model at {uri} ({_first_line(error)}); {URI_HINT}") from None


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def argument_parser(description: str | None) -> argparse.ArgumentParser:
    """A step CLI's parser, with the module docstring as its help."""
    return argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )


def run_cli(work: Callable[[], object]) -> None:
    """Run a step's CLI: logging set up, a PipelineError printed as one line and a non-zero exit."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not any(os.environ.get(name) for name in EXPERIMENT_ENV_VARS):
        mlflow.set_experiment(EXPERIMENT_NAME)  # only outside `mlflow run`, which picks the experiment
    try:
        work()
    except PipelineError as error:
        log.error("%s", error)
        sys.exit(1)
