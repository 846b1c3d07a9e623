"""Helpers the tests share: the `mlflow run` CLI of this project, the pipeline in this process, and what a
tracking store holds afterwards."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import mlflow
from mlflow import MlflowClient

from plumbing.code import PACKAGES
from plumbing.names import ENTRY_POINT_TAG, EXPERIMENT_NAME, PARENT_RUN_TAG, REUSED_FROM_TAG, STEPS
from plumbing.pipeline.runner import PipelineResult
from plumbing.plan import make_plan
from steps.main import run_pipeline

PROJECT_DIR = Path(__file__).resolve().parent.parent
# What a copy of the project needs to run (tests that change code work on a copy).
PROJECT_FILES = ("MLproject", "python_env.yaml", "config.yaml", "README.md", "requirements.txt", *PACKAGES)
VENV_BIN = Path(sys.executable).parent
CLI_TIMEOUT_SECONDS = 900
ALL_RAN = dict.fromkeys(STEPS, "ran")
ALL_REUSED = dict.fromkeys(STEPS, "reused")


def pipeline(
    data: str, split: str, test_days: str, model: str, overrides: dict[str, str], force: str = "false"
) -> PipelineResult:
    """The whole pipeline in this process, as `python -m steps.main` runs it."""
    return run_pipeline(make_plan(data, split, test_days, model, overrides, force=force))


def dash_p(*parameters: str) -> list[str]:
    """`-P name=value` for each parameter, as `mlflow run` takes them."""
    return [item for parameter in parameters for item in ("-P", parameter)]


def actions(client: MlflowClient, parent_run_id: str) -> dict[str, str]:
    """'ran' or 'reused' for each step of one pipeline run, read back from the tracking store."""
    children = client.search_runs(
        [client.get_run(parent_run_id).info.experiment_id], f"tags.`{PARENT_RUN_TAG}` = '{parent_run_id}'"
    )
    return {
        run.data.tags[ENTRY_POINT_TAG]: "reused" if REUSED_FROM_TAG in run.data.tags else "ran"
        for run in children
    }


def artifact_paths(client: MlflowClient, run_id: str, path: str | None = None) -> set[str]:
    """Every artifact file of a run, recursively."""
    found = set()
    for item in client.list_artifacts(run_id, path):
        found |= artifact_paths(client, run_id, item.path) if item.is_dir else {item.path}
    return found


def cli_environment(tracking_uri: str) -> dict[str, str]:
    """This process's environment for a child CLI: the given store, this venv's tools first on PATH."""
    environment = os.environ | {
        "MLFLOW_TRACKING_URI": tracking_uri,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}",
    }
    for name in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):
        environment.pop(name, None)
    return environment


def module_command(data: Path, *extra: str) -> list[str]:
    """`python -m steps.main` on `data` with a 7-day test window: the pipeline without `mlflow run`."""
    return [sys.executable, "-m", "steps.main", "--data", str(data), "--test_days", "7", *extra]


def mlflow_command(*arguments: str, project: str = str(PROJECT_DIR)) -> list[str]:
    """`mlflow run` of this project (or of `project`, e.g. a git URL) in the project's experiment."""
    return [str(VENV_BIN / "mlflow"), "run", project, "--experiment-name", EXPERIMENT_NAME, *arguments]


def mlflow_run(
    tracking_uri: str, *arguments: str, env: dict[str, str] | None = None, project: str = str(PROJECT_DIR)
) -> subprocess.CompletedProcess:
    """The real `mlflow run` CLI on this project (or `project`), run to the end."""
    environment = cli_environment(tracking_uri) | (env or {})
    return subprocess.run(
        mlflow_command(*arguments, project=project),
        env=environment,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_SECONDS,
        check=False,
    )


def runs_by_entry_point(client: MlflowClient) -> dict[str, list[mlflow.entities.Run]]:
    """Every run of the experiment, grouped by its mlflow.project.entryPoint tag."""
    experiment = client.get_experiment_by_name(EXPERIMENT_NAME)
    grouped: dict[str, list] = {}
    if experiment is None:
        return grouped
    for run in client.search_runs([experiment.experiment_id], max_results=1000):
        grouped.setdefault(run.data.tags.get("mlflow.project.entryPoint", "?"), []).append(run)
    return grouped


def wait_until_healthy(url: str, server: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    """Return once `url` answers; fail with the end of the server's log if it exits or never answers."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(log.read_text()[-3000:]) from None
            time.sleep(0.5)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
