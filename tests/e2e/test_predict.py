"""Batch prediction: `mlflow run . -e predict` with the champion, on good and bad files."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from demand.schema import MODEL_INPUT_COLUMNS, PREDICTION_COLUMN
from plumbing.plan import make_plan
from steps.main import run_pipeline
from tests.helpers import dash_p, mlflow_run, runs_by_entry_point


@pytest.fixture
def champion(client: MlflowClient, experiment_id: str, real_data: Path) -> str:
    """A champion registered by a real pipeline run; its version."""
    return run_pipeline(make_plan(str(real_data), "time", "92", "ridge", {})).registry.split()[3]


def predict(tracking_uri: str, source: Path, output: Path | str) -> subprocess.CompletedProcess:
    """`mlflow run . -e predict` of `source` into `output`, with the current environment."""
    return mlflow_run(
        tracking_uri,
        "-e",
        "predict",
        "--env-manager",
        "local",
        *dash_p(f"input={source}", f"output={output}"),
    )


def hour_csv_lines(real_data: Path, last: int) -> list[str]:
    lines = (real_data / "hour.csv").read_text().splitlines()
    return [lines[0], *lines[-last:]]


def test_predict_writes_one_prediction_per_record_and_logs_the_run(
    client: MlflowClient, tracking_uri: str, champion: str, real_data: Path, tmp_path: Path
) -> None:
    source = tmp_path / "records.csv"
    source.write_text("\n".join(hour_csv_lines(real_data, 48)) + "\n")
    output = tmp_path / "out" / "predictions.csv"
    finished = predict(tracking_uri, source, output)
    assert finished.returncode == 0, finished.stderr[-3000:]
    written = pd.read_csv(output)
    assert list(written.columns) == [*MODEL_INPUT_COLUMNS, PREDICTION_COLUMN]
    expected = pd.read_csv(source)
    assert written["instant"].tolist() == expected["instant"].tolist()  # input order
    assert (written[PREDICTION_COLUMN] >= 0).all()
    (run,) = runs_by_entry_point(client)["predict"]
    assert run.info.status == "FINISHED"
    assert run.data.metrics["rows"] == 48
    assert run.data.params["model_version"] == f"bike-sharing-demand/{champion}"
    assert len(run.data.tags["input_sha256"]) == 64


def test_bad_rows_fail_the_run_with_their_line_numbers_and_write_nothing(
    client: MlflowClient, tracking_uri: str, champion: str, real_data: Path, tmp_path: Path
) -> None:
    lines = hour_csv_lines(real_data, 10)
    for line_number in (4, 7):  # hr = 25 on file lines 4 and 7
        fields = lines[line_number - 1].split(",")
        fields[5] = "25"
        lines[line_number - 1] = ",".join(fields)
    source = tmp_path / "records.csv"
    source.write_text("\n".join(lines) + "\n")
    output = tmp_path / "predictions.csv"
    finished = predict(tracking_uri, source, output)
    assert finished.returncode != 0
    assert f"{source}: column 'hr' is outside the documented range 0..23 on lines 4 ('25'), 7 ('25')" in (
        finished.stderr
    )
    assert not output.exists()
    (run,) = runs_by_entry_point(client)["predict"]
    assert run.info.status == "FAILED"


def test_predict_without_a_champion_says_what_to_do(
    tracking_uri: str, tmp_path: Path, real_data: Path
) -> None:
    source = tmp_path / "records.csv"
    source.write_text("\n".join(hour_csv_lines(real_data, 2)) + "\n")
    finished = predict(tracking_uri, source, tmp_path / "out.csv")
    assert finished.returncode != 0
    assert "no version of registered model 'bike-sharing-demand' has the alias @champion" in finished.stderr


def test_an_output_folder_is_refused_before_any_work(
    client: MlflowClient, tracking_uri: str, champion: str, real_data: Path, tmp_path: Path
) -> None:
    source = tmp_path / "records.csv"
    source.write_text("\n".join(hour_csv_lines(real_data, 2)) + "\n")
    finished = predict(tracking_uri, source, tmp_path)
    assert finished.returncode != 0
    assert f"output {tmp_path} is a folder, not a file" in error_lines(finished)[0]
    assert sorted(path.name for path in tmp_path.iterdir() if path.suffix == ".csv") == ["records.csv"]
    (run,) = runs_by_entry_point(client)["predict"]
    assert run.info.status == "FAILED"


def test_a_full_disk_is_one_line_and_leaves_no_partial_file(
    client: MlflowClient, tracking_uri: str, champion: str, real_data: Path, tmp_path: Path, small_disk: Path
) -> None:
    source = tmp_path / "records.csv"
    source.write_text("\n".join(hour_csv_lines(real_data, 5000)) + "\n")  # ~400 KB of predictions
    output = small_disk / "predictions.csv"
    finished = predict(tracking_uri, source, output)
    assert finished.returncode != 0
    (line,) = error_lines(finished)
    assert f"cannot write {output}: no space left on device" in line
    assert list(small_disk.iterdir()) == []
    (run,) = runs_by_entry_point(client)["predict"]
    assert run.info.status == "FAILED"


def error_lines(finished) -> list[str]:
    """The project's own error lines (MLflow adds one of its own: `Run ... failed`)."""
    return [line for line in finished.stderr.splitlines() if " ERROR plumbing." in line]
