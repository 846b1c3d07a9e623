"""The real `mlflow run` CLI end to end: UCI data, a small made-up set, one step alone, and bad input."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import mlflow
import pytest

from demand.metrics import BASELINES, METRICS
from plumbing.names import EXPERIMENT_NAME, STEPS
from tests.helpers import PROJECT_DIR, artifact_paths, mlflow_run, module_command, runs_by_entry_point

RMSE_BAR = 60.0


def error_lines(result: subprocess.CompletedProcess) -> list[str]:
    """The lines our steps log at ERROR level (MLflow's own failure report follows them)."""
    return [line for line in result.stderr.splitlines() if " ERROR plumbing.cli" in line]


def as_arguments(parameters: list[str]) -> list[str]:
    return [item for parameter in parameters for item in ("-P", parameter)]


def statuses(client) -> dict[str, list[str]]:
    return {step: [run.info.status for run in runs] for step, runs in runs_by_entry_point(client).items()}


@pytest.mark.real_data
def test_default_pipeline_on_the_uci_data(tracking_uri, client, real_data: Path) -> None:
    result = mlflow_run(tracking_uri, "--env-manager", "local", env={"BIKE_SHARING_DATA": str(real_data)})
    assert result.returncode == 0, result.stderr[-3000:]
    runs = runs_by_entry_point(client)
    assert sorted(runs) == sorted(["main", *STEPS]), "one parent and one nested run per step"
    (parent,) = runs["main"]
    assert parent.info.status == "FINISHED"
    for step in STEPS:
        (run,) = runs[step]
        assert run.info.status == "FINISHED"
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert run.data.tags["mlflow.source.type"] == "PROJECT"
        assert run.data.tags["mlflow.source.name"] == parent.data.tags["mlflow.source.name"]
    featurize, train, evaluate = runs["featurize"][0], runs["train"][0], runs["evaluate"][0]
    assert featurize.data.params["test_period"] == "2012-10-01..2012-12-31"
    assert train.data.params["model"] == "xgb"
    metrics = evaluate.data.metrics
    assert metrics["rmse"] <= RMSE_BAR
    for baseline in BASELINES:
        assert metrics["rmse"] < metrics[f"baseline_{baseline}_rmse"]
        assert metrics[f"skill_vs_{baseline}"] > 0
    assert set(METRICS) <= set(metrics)
    assert "plots/feature_importance.png" in artifact_paths(client, evaluate.info.run_id)
    assert f"Holdout: RMSE {metrics['rmse']:.1f}" in result.stdout
    for step in STEPS:
        assert runs[step][0].info.run_id in result.stdout, "the summary names each step's run"


def test_pipeline_cli_on_small_data_then_one_step_alone(tracking_uri, client, small_csv: Path) -> None:
    parameters = [f"data={small_csv}", "test_days=7", "model=ridge", "alpha=2.5"]
    result = mlflow_run(tracking_uri, "--env-manager", "local", *as_arguments(parameters))
    assert result.returncode == 0, result.stderr[-3000:]
    runs = runs_by_entry_point(client)
    assert all(run.info.status == "FINISHED" for group in runs.values() for run in group)
    assert runs["train"][0].data.params["hp.alpha"] == "2.5", "an undeclared -P reaches the model"

    features = f"runs:/{runs['featurize'][0].info.run_id}/features"
    parameters = [f"features={features}", "model=rf", "n_estimators=15"]
    alone = mlflow_run(tracking_uri, "--env-manager", "local", "-e", "train", *as_arguments(parameters))
    assert alone.returncode == 0, alone.stderr[-3000:]
    (train_alone,) = [run for run in runs_by_entry_point(client)["train"] if run.data.params["model"] == "rf"]
    assert train_alone.info.status == "FINISHED"
    assert "mlflow.parentRunId" not in train_alone.data.tags
    assert train_alone.data.params["hp.n_estimators"] == "15"


@pytest.mark.parametrize(
    ("parameters", "message", "ran"),
    [
        (["model=lasso"], "unknown model 'lasso'; choose one of: xgb, rf, hgb, ridge", {"main"}),
        (["test_days=ninety"], "parameter test_days='ninety' is not a whole number", {"main"}),
        (["max_depth=deep"], "hyperparameter max_depth='deep' is not a number", {"main"}),
        (
            ["data=/nowhere/hour.csv"],
            "step ingest failed: data file not found: /nowhere/hour.csv",
            {"main", "ingest"},
        ),
    ],
)
def test_bad_input_is_one_clear_line_and_failed_runs(tracking_uri, client, parameters, message, ran) -> None:
    result = mlflow_run(tracking_uri, "--env-manager", "local", *as_arguments(parameters))
    assert result.returncode != 0
    (line,) = error_lines(result)
    assert message in line
    assert "Traceback" not in result.stderr.split(" ERROR plumbing.cli")[0], "no traceback before our message"
    found = statuses(client)
    assert set(found) == ran, "nothing downstream of the failure runs"
    assert all(status == ["FAILED"] for status in found.values())


def test_module_run_defaults_to_the_project_experiment(tracking_uri, client, small_csv: Path) -> None:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_EXPERIMENT")}
    command = module_command(small_csv, "--model", "ridge")
    result = subprocess.run(
        command, cwd=PROJECT_DIR, env=environment, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    experiment = mlflow.get_experiment_by_name(EXPERIMENT_NAME)
    assert experiment is not None
    assert sorted(runs_by_entry_point(client)) == sorted(["main", *STEPS])
