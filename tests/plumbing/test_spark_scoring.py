"""predict's Spark engine without Spark: its parameters are checked before any work, a missing pyspark is one
line, the model's record check is found in a worker's traceback, and the project imports without pyspark."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from demand.errors import PipelineError
from plumbing.spark.scoring import parse_spark_master, require_pyspark, spark_failure
from tests.helpers import PROJECT_DIR

# The end of what a Python worker sends back when the model refuses a batch (Spark 4.3, MLflow 3.17).
WORKER_TRACEBACK = """An exception was thrown from the Python worker:
Traceback (most recent call last):
  File "/tmp/tmpvens0ion/models/tmp1i43jl8m/code/serving/model.py", line 78, in checked_records
    raise InvalidRecords(str(error)) from None
serving.model.InvalidRecords: request: {message}
 SQLSTATE: 38000."""


@pytest.mark.parametrize(
    "master",
    [
        "local",
        "local[*]",
        "local[2]",
        "local[4,3]",
        "local[*,2]",
        "spark://head:7077",
        "spark://a.example:7077,b.example:7077",
        "yarn",
        "k8s://https://k8s.example:6443",
    ],
)
def test_spark_master_urls_that_spark_takes(master: str) -> None:
    assert parse_spark_master(master) == master


@pytest.mark.parametrize(
    "master",
    ["", "lokal[2]", "local[0]", "local[]", " local[2]", "local[2] ", "spark://head", "mesos://m:5050"],
)
def test_other_master_urls_are_one_line_naming_the_parameter(master: str) -> None:
    with pytest.raises(
        PipelineError, match=r"^parameter spark_master='.*' is not a Spark master URL; pass local"
    ):
        parse_spark_master(master)


def test_a_missing_pyspark_says_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(PipelineError, match=r"engine=spark needs Apache Spark .* run `make install-spark`"):
        require_pyspark()


@pytest.mark.parametrize(
    ("message", "rule"),
    [
        (
            "column 'hr' is outside the documented range 0..23 on record 280",
            "column 'hr' is outside the documented range 0..23",
        ),
        (
            "column 'temp' is not a number on records 3, 5, 8, 9, 10 and 2 more",
            "column 'temp' is not a number",
        ),
        (
            "yr does not match the year of dteday (0: 2011, 1: 2012) on record 1",
            "yr does not match the year of dteday (0: 2011, 1: 2012)",
        ),
    ],
)
def test_the_record_check_is_found_in_the_cause_of_a_spark_error(message: str, rule: str) -> None:
    try:
        try:
            raise RuntimeError(WORKER_TRACEBACK.format(message=message))
        except RuntimeError as worker:
            raise RuntimeError("An error occurred while calling o93.count.") from worker
    except RuntimeError as error:
        failure = spark_failure(error, "records.csv")
    assert str(failure) == f"records.csv: {rule} (Spark does not say on which line; -P engine=pandas does)"


def test_any_other_spark_error_is_its_one_line() -> None:
    worker = RuntimeError(
        "Traceback (most recent call last):\n  File ...\nModuleNotFoundError: No module named 'x'"
    )
    assert (
        str(spark_failure(worker, "r.csv"))
        == "Spark could not score r.csv: ModuleNotFoundError: No module named 'x'"
    )
    missing = RuntimeError(
        "[PATH_NOT_FOUND] Path does not exist: file:/data/r.csv. SQLSTATE: 42K03\n\tat org..."
    )
    assert str(spark_failure(missing, "r.csv")).endswith(
        ": [PATH_NOT_FOUND] Path does not exist: file:/data/r.csv."
    )
    malformed = RuntimeError(
        "[MALFORMED_RECORD_IN_PARSING.WITHOUT_SUGGESTION] Malformed records ... FAILFAST."
    )
    assert str(spark_failure(malformed, "r.csv")).startswith("r.csv is not a readable CSV (a record has more")
    java = RuntimeError(
        "An error occurred while calling o42.count.\n: java.lang.IllegalStateException: stopped"
    )
    assert str(spark_failure(java, "r.csv")).endswith(": java.lang.IllegalStateException: stopped")


def test_the_project_imports_without_pyspark() -> None:
    code = (
        "import sys; sys.modules['pyspark'] = None; import steps.predict, steps.main"  # as if not installed
    )
    finished = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_DIR, capture_output=True, check=False)
    assert finished.returncode == 0, finished.stderr.decode()[-2000:]
