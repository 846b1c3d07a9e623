"""Batch prediction on Apache Spark: `mlflow run . -e predict -P engine=spark` writes what the pandas engine
writes, and a bad record or an unknown engine is one line and a FAILED run (bad master URLs: the fast
tests/plumbing/test_spark_scoring.py).

Starting Spark costs most of these tests' time, so one module-scoped fixture registers one champion and
runs every case side by side: Spark starts twice (a good and a bad file), the refusal starts no Spark, and
the pandas engine's output for the same file is written in this process."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.entities import Run

from demand.schema import PREDICTION_COLUMN
from plumbing import settings
from plumbing.names import EXPERIMENT_NAME
from plumbing.plan import make_plan
from steps.main import run_pipeline
from steps.predict import predict
from tests.e2e.test_predict import error_lines, hour_csv_lines
from tests.helpers import CLI_TIMEOUT_SECONDS, cli_environment, dash_p, mlflow_command, runs_by_entry_point

pytestmark = pytest.mark.spark
RECORDS = 400
SPARK = ("engine=spark", "spark_master=local[2]")
# Small file splits, so that the few hundred records come back from several partitions, in input order.
SMALL_PARTITIONS = {"PYSPARK_SUBMIT_ARGS": "--conf spark.sql.files.maxPartitionBytes=8192 pyspark-shell"}


@dataclass(frozen=True)
class Case:
    """One `mlflow run . -e predict`: its input, output, process and run."""

    source: Path
    output: Path
    finished: subprocess.CompletedProcess
    run: Run


@pytest.fixture(scope="module")
def pyspark_installed() -> None:
    """pyspark, which `make install-spark` adds. Under CI its absence is a failure, not a skip."""
    if importlib.util.find_spec("pyspark"):
        return
    if os.environ.get("CI"):
        pytest.fail("pyspark must be installed under CI (.ci/run runs make install-spark)")
    pytest.skip("run `make install-spark` to test predict -P engine=spark")


@pytest.fixture(scope="module")
def cases(
    pyspark_installed: None, real_data: Path, empty_store: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Case]]:
    """A ridge champion in a fresh store, then every case of this module at once, and the pandas engine's
    predictions of the good file as `expected.csv`."""
    folder = tmp_path_factory.mktemp("spark")
    shutil.copyfile(empty_store, folder / "mlflow.db")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        mlflow.set_tracking_uri(uri)
        mlflow.set_experiment(EXPERIMENT_NAME)
        run_pipeline(make_plan(str(real_data), "time", "92", "ridge", {}))
        good, bad = write_inputs(real_data, folder)
        arguments = {
            "good": (good, folder / "good" / "predictions.csv", *SPARK),
            "bad": (bad, folder / "bad" / "predictions.csv", *SPARK),
            "engine": (good, folder / "engine.csv", "engine=dask"),
        }
        env = {"good": SMALL_PARTITIONS}
        processes = {name: started(uri, *given, env=env.get(name)) for name, given in arguments.items()}
        with mlflow.start_run():
            predict(
                str(good),
                str(folder / "expected.csv"),
                "",
                settings.parameter_defaults("predict")["model_name"],
                engine="pandas",
                spark_master="local[1]",
            )
        finished = {name: ended(process) for name, process in processes.items()}
        runs = {
            run.data.params["output"]: run for run in runs_by_entry_point(mlflow.MlflowClient())["predict"]
        }
        yield {
            name: Case(source, output, finished[name], runs[str(output)])
            for name, (source, output, *_) in arguments.items()
        }
        for name in ("MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):  # mlflow.set_experiment exports these
            os.environ.pop(name, None)


def write_inputs(real_data: Path, folder: Path) -> tuple[Path, Path]:
    """The last RECORDS records of hour.csv, and the same with hr = 25 in a late record, each in its own
    folder (where the output goes too)."""
    lines = hour_csv_lines(real_data, RECORDS)
    fields = lines[-20].split(",")
    fields[5] = "25"  # hr
    late = [*lines[:-20], ",".join(fields), *lines[-19:]]
    paths = []
    for name, content in (("good", lines), ("bad", late)):
        (folder / name).mkdir()
        paths.append(folder / name / "records.csv")
        paths[-1].write_text("\n".join(content) + "\n")
    return paths[0], paths[1]


def started(
    tracking_uri: str, source: Path, output: Path, *parameters: str, env: dict[str, str] | None = None
) -> subprocess.Popen:
    """`mlflow run . -e predict` of `source` into `output` with the current environment, in the background."""
    parameters = (f"input={source}", f"output={output}", *parameters)
    command = mlflow_command("-e", "predict", "--env-manager", "local", *dash_p(*parameters))
    environment = cli_environment(tracking_uri) | (env or {})
    return subprocess.Popen(
        command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def ended(process: subprocess.Popen) -> subprocess.CompletedProcess:
    stdout, stderr = process.communicate(timeout=CLI_TIMEOUT_SECONDS)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def test_spark_writes_what_the_pandas_engine_writes(cases: dict[str, Case]) -> None:
    good = cases["good"]
    assert good.finished.returncode == 0, good.finished.stderr[-3000:]
    written = pd.read_csv(good.output)
    expected = pd.read_csv(good.source.parent.parent / "expected.csv")
    assert len(written) == RECORDS
    assert int(re.search(r"Spark scored (\d+) batches", good.finished.stderr)[1]) > 1, (
        "from several partitions"
    )
    pd.testing.assert_frame_equal(
        written.drop(columns=PREDICTION_COLUMN), expected.drop(columns=PREDICTION_COLUMN)
    )
    np.testing.assert_allclose(written[PREDICTION_COLUMN], expected[PREDICTION_COLUMN], rtol=1e-9, atol=1e-9)
    assert good.run.info.status == "FINISHED"
    assert good.run.data.params["engine"] == "spark"
    assert good.run.data.params["resolved_spark_master"] == "local[2]"
    assert good.run.data.params["model_version"] == "bike-sharing-demand/1"
    assert good.run.data.metrics["rows"] == RECORDS
    assert len(good.run.data.tags["input_sha256"]) == 64
    assert " WARN " not in good.finished.stderr, "Spark's own log is quiet"


def test_a_bad_record_is_one_line_a_failed_run_and_no_output(cases: dict[str, Case]) -> None:
    bad = cases["bad"]
    assert bad.finished.returncode != 0
    (line,) = error_lines(bad.finished)
    assert (
        f"{bad.source}: column 'hr' is outside the documented range 0..23 (Spark does not say on which"
        in line
    )
    assert "Traceback" not in bad.finished.stderr and "org.apache.spark" not in bad.finished.stderr
    assert sorted(path.name for path in bad.source.parent.iterdir()) == ["records.csv"], (
        "no output, no partial file"
    )
    assert bad.run.info.status == "FAILED"


def test_an_unknown_engine_is_refused_before_any_work(cases: dict[str, Case]) -> None:
    refused = cases["engine"]
    assert refused.finished.returncode != 0
    (line,) = error_lines(refused.finished)
    assert "unknown engine 'dask'; choose one of: pandas, spark (e.g. -P engine=pandas)" in line
    assert not refused.output.exists()
    assert refused.run.info.status == "FAILED"
