"""Racing pipelines and registrations against a real MLflow tracking server, each racer its own process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from plumbing import settings
from plumbing.data_source import fetch_data
from plumbing.hyperparameters import parse_hyperparameters
from plumbing.names import EXPERIMENT_NAME, REUSED_FROM_TAG, STEPS
from steps.featurize import featurize
from steps.ingest import ingest
from steps.train import train
from tests.helpers import PROJECT_DIR, cli_environment, mlflow_command, mlflow_run, runs_by_entry_point

NAME = settings.parameter_defaults("main")["model_name"]


def test_two_reruns_at_once_against_a_tracking_server(tracking_server: str, small_csv: Path) -> None:
    """After a first run, two reruns with a new hyperparameter start together: one retrains, the other
    waits for it and then reuses every step."""
    common = ["--env-manager", "local", "-P", f"data={small_csv}", "-P", "test_days=7"]
    first_run = mlflow_run(tracking_server, *common, "-P", "n_estimators=30", "-P", "bagged_seeds=1")
    assert first_run.returncode == 0, first_run.stderr[-3000:]

    command = mlflow_command(*common, "-P", "n_estimators=40", "-P", "bagged_seeds=1")
    environment = cli_environment(tracking_server)
    reruns = [
        subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=300) for process in reruns]
    assert [process.returncode for process in reruns] == [0, 0], outputs[0][1][-2000:] + outputs[1][1][-2000:]
    assert any("waiting for another pipeline" in stderr for _, stderr in outputs)

    runs = runs_by_entry_point(MlflowClient(tracking_server))
    assert [run.info.status for run in runs["main"]] == ["FINISHED"] * 3
    for step in STEPS:
        did_work = [run for run in runs[step] if REUSED_FROM_TAG not in run.data.tags]
        expected = 2 if step in ("train", "evaluate", "register") else 1  # the first run's, and one rerun's
        assert len(runs[step]) == 3
        assert len(did_work) == expected, f"{step}: only one of the overlapping reruns does the work"


@pytest.fixture
def server_uri(tracking_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_server)
    mlflow.set_tracking_uri(tracking_server)
    yield tracking_server
    for name in ("MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):
        monkeypatch.delenv(name, raising=False)


def test_two_registrations_at_once_leave_the_better_model_champion(server_uri: str, real_data: Path) -> None:
    mlflow.set_experiment(EXPERIMENT_NAME)
    with mlflow.start_run():
        table = ingest(fetch_data(str(real_data))).outputs["table"]
    with mlflow.start_run():
        features = featurize(table, "time", 92).outputs["features"]
    models = {}
    small = {"hgb": {"max_iter": "50"}, "xgb": {"n_estimators": "200", "bagged_seeds": "1"}}  # quick fits
    for model, hyperparameters in small.items():
        with mlflow.start_run():
            fitted = train(features, model, parse_hyperparameters(model, hyperparameters, "time"), "time")
            models[model] = fitted.outputs["model"]
    command = [sys.executable, "-m", "steps.register", "--features", features, "--model_uri"]
    racers = [
        subprocess.Popen(
            [*command, uri],
            cwd=PROJECT_DIR,
            env=cli_environment(server_uri),
            stderr=subprocess.PIPE,
            text=True,
        )
        for uri in models.values()
    ]
    logs = [racer.communicate(timeout=300)[1] for racer in racers]
    assert [racer.returncode for racer in racers] == [0, 0], logs
    client = MlflowClient(server_uri)
    assert client.get_model_version_by_alias(NAME, "champion").tags["model"] == "xgb"
    summaries = [line for log in logs for line in log.splitlines() if f"registered {NAME} version" in line]
    assert len(summaries) == 2, logs
    # Without the registry lock both would see no champion yet, and both would claim to be the first.
    assert sum("first model" in line for line in summaries) == 1, summaries
