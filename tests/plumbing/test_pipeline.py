"""The pipeline in this process against a real SQLite store: the run tree, and failures that stop it."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import zipfile
from pathlib import Path

import mlflow
import pytest
import yaml
from mlflow.exceptions import MlflowException

from demand.errors import PipelineError
from demand.metrics import BASELINES, METRICS
from demand.schema import COUNT_COLUMNS, HOURLY_COLUMNS, MODEL_INPUT_COLUMNS, PREDICTION_COLUMN
from plumbing import settings
from plumbing.data_source import DATA_ENV_VAR, cache_dir
from plumbing.names import DATASET_NAME, OUTPUTS_TAG, STEPS, SUMMARY_TAG
from plumbing.pipeline.runner import summary
from tests.helpers import artifact_paths, pipeline, runs_by_entry_point
from tests.synthetic import hourly_table, write_csv

FAST = {"alpha": "1.0"}


def test_pipeline_logs_one_parent_and_a_finished_run_per_step(client, experiment_id, small_csv: Path) -> None:
    result = pipeline(str(small_csv), "time", "7", "ridge", FAST)
    runs = runs_by_entry_point(client)
    assert sorted(runs) == sorted(["main", *STEPS])
    parent = runs["main"][0]
    assert parent.info.run_id == result.run_id and parent.info.status == "FINISHED"
    for step in STEPS:
        (run,) = runs[step]
        assert run.info.status == "FINISHED"
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert run.info.experiment_id == experiment_id
    assert [s.name for s in result.steps] == list(STEPS)
    assert settings.config() == yaml.safe_load(settings.CONFIG_FILE.read_text()), "no step changes the config"

    ingest, featurize, train, evaluate, register = (runs[step][0] for step in STEPS)
    assert "data/hour.parquet" in artifact_paths(client, ingest.info.run_id)
    (dataset_input,) = ingest.inputs.dataset_inputs
    assert dataset_input.dataset.name == DATASET_NAME
    assert ingest.data.params["data_sha256"].startswith(dataset_input.dataset.digest)
    schema = json.loads(dataset_input.dataset.schema)["mlflow_colspec"]
    assert [(c["name"], c["required"]) for c in schema] == [(name, True) for name in HOURLY_COLUMNS]
    assert json.loads(dataset_input.dataset.profile)["num_rows"] == ingest.data.metrics["rows"]
    assert {"features/train.parquet", "features/test.parquet", "features/features.json"} <= artifact_paths(
        client, featurize.info.run_id
    )
    assert featurize.data.metrics["test_rows"] == 7 * 24
    assert train.data.params["model"] == "ridge" and train.data.params["hp.alpha"] == "1.0"
    expected = set(METRICS) | {f"baseline_{b}_{m}" for b in BASELINES for m in METRICS}
    assert expected | {f"skill_vs_{b}" for b in BASELINES} <= set(evaluate.data.metrics)
    assert evaluate.data.metrics["rmse"] == result.metrics["rmse"]
    plots = {"plots/predicted_vs_actual.png", "plots/last_two_weeks.png", "plots/error_by_hour.png"}
    assert plots | {"report.html", "predictions.parquet"} <= artifact_paths(client, evaluate.info.run_id)
    assert evaluate.data.metrics["rmse"] < evaluate.data.metrics["baseline_last_week_rmse"]
    assert register.data.tags[SUMMARY_TAG] == result.registry
    assert f"Holdout: RMSE {result.metrics['rmse']:.1f}" in summary(result)


def test_the_signature_types_the_hour_csv_columns_and_the_model_checks_the_rest(
    client, experiment_id, small_csv: Path
) -> None:
    pipeline(str(small_csv), "time", "7", "ridge", FAST)
    (train,) = runs_by_entry_point(client)["train"]
    model_uri = json.loads(train.data.tags[OUTPUTS_TAG])["model"]
    signature = mlflow.models.get_model_info(model_uri).signature
    declared = {spec.name: (spec.type.name, spec.required) for spec in signature.inputs.inputs}
    assert list(declared) == [*MODEL_INPUT_COLUMNS, *COUNT_COLUMNS], "hour.csv's columns, in its order"
    assert declared["dteday"] == ("string", True) and declared["hr"] == ("long", True)
    assert declared["temp"] == ("double", True) and declared["cnt"] == ("long", False)
    assert signature.outputs.input_names() == [PREDICTION_COLUMN]
    example = Path(mlflow.artifacts.download_artifacts(model_uri)) / "serving_input_example.json"
    assert len(mlflow.models.validate_serving_input(model_uri, example.read_text())) == 5  # train skips it
    model = mlflow.pyfunc.load_model(model_uri)
    records = hourly_table(days=1)  # raw records with their counts, which the model ignores
    assert len(model.predict(records)) == 24
    with pytest.raises(MlflowException, match="Incompatible input types for column temp"):
        model.predict(records.assign(temp="warm"))  # MLflow's schema check: the types
    with pytest.raises(MlflowException, match=r"missing inputs \['hr'\]"):
        model.predict(records.drop(columns="hr"))
    for broken, message in [  # the model's own check: the rest of the contract, never quoting values
        (records.assign(hr=24), "column 'hr' is outside the documented range 0..23 on records 1, 2"),
        (records.assign(dteday="2012-13-01"), "column 'dteday' is not a date in YYYY-MM-DD form"),
        (records.assign(mnth=3), "mnth does not match the month of dteday on records 1, 2"),
    ]:
        with pytest.raises(MlflowException, match=message) as raised:
            model.predict(broken)
        assert "2012-13-01" not in raised.value.message


def test_bad_data_fails_ingest_and_nothing_downstream_runs(client, experiment_id, tmp_path: Path) -> None:
    bad = write_csv(hourly_table(days=10).drop(columns="hum"), tmp_path / "bad.csv")
    with pytest.raises(PipelineError, match=r"step ingest failed: .*bad\.csv is missing column\(s\) hum"):
        pipeline(str(bad), "time", "3", "ridge", FAST)
    runs = runs_by_entry_point(client)
    assert sorted(runs) == ["ingest", "main"]
    assert runs["main"][0].info.status == runs["ingest"][0].info.status == "FAILED"


def test_bad_parameters_fail_before_any_run(client, experiment_id, small_csv: Path) -> None:
    with pytest.raises(PipelineError, match="unknown model 'lasso'"):
        pipeline(str(small_csv), "time", "7", "lasso", {})
    with pytest.raises(PipelineError, match="test_days='1e3' is not a whole number"):
        pipeline(str(small_csv), "time", "1e3", "ridge", {})
    assert runs_by_entry_point(client) == {}


def test_too_long_test_window_fails_featurize(client, experiment_id, small_csv: Path) -> None:
    with pytest.raises(
        PipelineError, match="step featurize failed: parameter test_days=500 leaves no training rows"
    ):
        pipeline(str(small_csv), "time", "500", "ridge", FAST)
    statuses = {step: runs[0].info.status for step, runs in runs_by_entry_point(client).items()}
    assert statuses == {"main": "FAILED", "ingest": "FINISHED", "featurize": "FAILED"}


@pytest.fixture
def cached_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the official download is cached, in a private cache folder; BIKE_SHARING_DATA unset."""
    monkeypatch.delenv("BIKE_SHARING_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    url = settings.parameter_defaults("ingest")["data"]
    path = cache_dir(os.environ) / hashlib.sha256(url.encode()).hexdigest()[:16] / Path(url).name
    path.parent.mkdir(parents=True)
    return path


@pytest.mark.real_data
def test_default_url_is_served_offline_from_a_verified_cache(
    client, experiment_id, real_data: Path, cached_download: Path
) -> None:
    """The official download, already in the user's cache, is reused and checked against the pin."""
    shutil.copyfile(_real_zip(real_data), cached_download)
    result = pipeline(settings.parameter_defaults("ingest")["data"], "time", "92", "ridge", FAST)
    (ingest,) = runs_by_entry_point(client)["ingest"]
    assert ingest.data.params["data_checksum"] == "pinned"
    assert ingest.data.params["data_sha256"] == settings.config()["ingest"]["uci_hour_csv_sha256"]
    assert result.metrics["rmse"] > 0


@pytest.mark.real_data
def test_tampered_download_fails_the_checksum(
    client, experiment_id, real_data: Path, cached_download: Path
) -> None:
    _write_tampered_zip(_real_zip(real_data), cached_download)
    with pytest.raises(
        PipelineError, match=r"step ingest failed: checksum mismatch: .* expected the pinned e03de4ee"
    ):
        pipeline(settings.parameter_defaults("ingest")["data"], "time", "92", "ridge", FAST)
    statuses = {step: runs[0].info.status for step, runs in runs_by_entry_point(client).items()}
    assert statuses == {"main": "FAILED", "ingest": "FAILED"}


def _real_zip(real_data: Path) -> Path:
    return real_data / "Bike-Sharing-Dataset.zip" if real_data.is_dir() else real_data


def _write_tampered_zip(source: Path, target: Path) -> None:
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(target, "w") as tampered:
        for name in original.namelist():
            data = original.read(name)
            tampered.writestr(
                name,
                data.replace(b"2012-12-31,1,1,12,23", b"2012-12-31,1,1,12,22")
                if name.endswith("hour.csv")
                else data,
            )


def test_the_params_name_the_data_actually_read_even_when_reused(
    client, experiment_id, small_csv: Path
) -> None:
    """params.data of the ingest run, run or reused, and of the pipeline's run name the data read, with the
    sha256 of its exact bytes; data_read_from names the file."""
    first = pipeline(str(small_csv), "time", "7", "ridge", FAST)
    second = pipeline(str(small_csv), "time", "7", "ridge", FAST)
    for result in (first, second):
        (ingest,) = [step for step in result.steps if step.name == "ingest"]
        for run in (client.get_run(ingest.run_id), client.get_run(result.run_id)):
            assert run.data.params["data"] == str(small_csv)
            assert run.data.params["data_sha256"] == hashlib.sha256(small_csv.read_bytes()).hexdigest()
    assert [step.action for step in second.steps if step.name == "ingest"] == ["reused"]
    (ran,) = [step for step in first.steps if step.name == "ingest"]
    assert client.get_run(ran.run_id).data.tags["data_read_from"] == str(small_csv)


def test_other_data_in_bike_sharing_data_stops_the_pipeline_before_any_work(
    client, experiment_id, small_csv: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """BIKE_SHARING_DATA stands in for the UCI download only: a file that is not a copy of it can never
    become what a run trains on while params.data says the UCI URL."""
    monkeypatch.setenv(DATA_ENV_VAR, str(small_csv))
    with pytest.raises(
        PipelineError, match=r"step ingest failed: BIKE_SHARING_DATA=.* is not a copy of the UCI"
    ):
        pipeline(settings.parameter_defaults("ingest")["data"], "time", "7", "ridge", FAST)
    statuses = {step: runs[0].info.status for step, runs in runs_by_entry_point(client).items()}
    assert statuses == {"main": "FAILED", "ingest": "FAILED"}
