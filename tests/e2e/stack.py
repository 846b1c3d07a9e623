"""The team stack as the e2e tests use it: one stack per test session (tests/e2e/conftest.py starts it),
commands against it as the pipeline user, and everything they printed, kept for the secrets check."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlflow import MlflowClient

from tests.helpers import PROJECT_DIR, VENV_BIN, cli_environment, dash_p

POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
MLFLOW_RUN = (str(VENV_BIN / "mlflow"), "run", str(PROJECT_DIR), "--env-manager", "local")
RUNNING_TRAIN = "tags.`mlflow.project.entryPoint` = 'train' AND attributes.status = 'RUNNING'"


@dataclass(frozen=True)
class Stack:
    folder: Path
    pipeline: dict[str, str]  # the contents of $STACK_DIR/env
    admin: dict[str, str]  # the contents of $STACK_DIR/admin.env
    environment: dict[str, str]  # what `scripts/stack.py` ran with
    outputs: list[str]  # everything the tests saw printed, to search for secrets

    @property
    def url(self) -> str:
        return self.pipeline["MLFLOW_TRACKING_URI"]

    def secrets(self) -> list[str]:
        return [
            self.pipeline["MLFLOW_TRACKING_PASSWORD"],
            self.admin["MLFLOW_TRACKING_PASSWORD"],
            self.admin["AWS_SECRET_ACCESS_KEY"],
        ]

    def run(self, *arguments: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """A command against the stack as the pipeline user; its output is kept for the secrets check."""
        environment = cli_environment(self.url) | self.pipeline | (env or {})
        result = subprocess.run(
            list(arguments),
            cwd=PROJECT_DIR,
            env=environment,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        self.outputs.extend([result.stdout, result.stderr])
        return result

    def s3(self) -> Any:
        """A boto3 S3 client of the stack's object store, with the operators' keys."""
        import boto3  # noqa: PLC0415 - only the tests that look into the bucket need it

        return boto3.client(
            "s3",
            endpoint_url=self.admin["MLFLOW_S3_ENDPOINT_URL"],
            region_name="us-east-1",
            aws_access_key_id=self.admin["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.admin["AWS_SECRET_ACCESS_KEY"],
        )

    def client(self, who: str = "admin") -> MlflowClient:
        os.environ["MLFLOW_TRACKING_USERNAME"] = getattr(self, who)["MLFLOW_TRACKING_USERNAME"]
        os.environ["MLFLOW_TRACKING_PASSWORD"] = getattr(self, who)["MLFLOW_TRACKING_PASSWORD"]
        return MlflowClient(self.url)


def read_env(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if line)


def stack_command(environment: dict[str, str], command: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "scripts.stack", command],
        cwd=PROJECT_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )


def pipeline_arguments(data: Path, experiment: str, model_name: str, *extra: str) -> list[str]:
    parameters = dash_p(f"data={data}", "test_days=7", f"model_name={model_name}")
    return [*MLFLOW_RUN, "--experiment-name", experiment, *parameters, *extra]


def start_pipeline(
    stack: Stack, data: Path, *parameters: str, env: dict[str, str] | None = None
) -> subprocess.Popen:
    """The scheduled rerun against the stack, in the background."""
    return subprocess.Popen(
        [str(PROJECT_DIR / "scripts" / "rerun"), *dash_p(f"data={data}", "test_days=7", *parameters)],
        cwd=PROJECT_DIR,
        env=cli_environment(stack.url) | stack.pipeline | (env or {}),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_running_train(client: MlflowClient, experiment: str, pipeline: subprocess.Popen) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and pipeline.poll() is None:
        found = client.get_experiment_by_name(experiment)
        if found and client.search_runs([found.experiment_id], RUNNING_TRAIN):
            return
        time.sleep(0.5)
    raise AssertionError(
        f"train never started: {pipeline.communicate()[1][-2000:] if pipeline.poll() else ''}"
    )


def finished_pipeline(process: subprocess.Popen, stack: Stack) -> tuple[int, str]:
    out, err = process.communicate(timeout=900)
    stack.outputs.extend([out, err])
    return process.returncode, err
