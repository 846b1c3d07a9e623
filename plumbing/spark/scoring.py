"""Batch scoring on Apache Spark: `mlflow run . -e predict -P engine=spark [-P spark_master=...]`.

Spark reads the input CSV (every cell as text) and scores it with the model as a Spark UDF
(`mlflow.pyfunc.spark_udf`): the Python workers of the executors load the same pyfunc as the pandas engine,
which checks each batch of records against the hour.csv contract (serving/model.py) before predicting.
The whole input is scored on the executors, in parallel, before anything comes back; then the driver
takes the scored partitions one at a time (toLocalIterator), as whole Arrow batches rather than row by row,
types the records as the pandas engine does and hands them on a batch at a time, so its memory is bounded
by a partition (an 8 MB split of the input), not by the input.

Nothing here imports pyspark before a session is asked for, so the pandas engine and the rest of the
project run without it (`make install-spark` adds it; requirements-spark.txt). Once it is installed, MLflow
itself imports a few of its modules.

On a cluster only `spark_master` changes (spark://host:7077, yarn, k8s://https://host:port), but:
- every executor reads `input` itself. `mlflow run` hands the step a local path (it downloads s3:// and
  other URIs of a `path` parameter to the driver's disk first), so the file must be on a filesystem that
  every node mounts at the same path. `scored_on_spark` itself takes any URI Spark reads (hdfs://, or
  s3a:// with hadoop-aws on Spark's classpath) for callers that do not go through `mlflow run`.
- the output is one CSV that the driver writes: it lands on the driver's machine.
- the model runs with env_manager=local: every node needs Java 17+ and a Python with
  requirements-spark.txt installed, named by PYSPARK_PYTHON. Spark ships the model to the executors
  itself (SparkContext.addFile); they never talk to the tracking server.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import Model, ModelSignature
from mlflow.models.model import MLMODEL_FILE_NAME

from demand.errors import PipelineError, quoted, shown, shown_path
from demand.schema import MODEL_INPUT_COLUMNS, model_inputs, parse_records
from plumbing.faults import causes

if TYPE_CHECKING:
    import pyarrow
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)
APP_NAME = "bike-sharing-demand predict"
# Spark's own log: errors only, and no report of a failed task, which the step words itself.
LOG4J2_FILE = Path(__file__).with_name("log4j2.properties")
QUIET = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.driver.extraJavaOptions": f"-Dlog4j2.configurationFile={LOG4J2_FILE.as_uri()}",
}
# FAILFAST refuses a record with more or fewer fields than the header, as pandas does, only when the CSV
# parser reads every column (pruned to the model's columns, it drops extra fields silently).
STRICT_CSV = {"spark.sql.csv.parser.columnPruning.enabled": "false"}
# The driver holds a scored partition (two, with the next one prefetched) while it writes them: file splits
# of 8 MB (~110,000 records) keep that small whatever the input's size, where Spark's default, 128 MB
# (~1.8 million records), outgrows its default 1 GB driver heap. Spark's own configuration
# (spark-defaults.conf, PYSPARK_SUBMIT_ARGS) may set another size.
SPLIT_OPTION, SPLIT_SIZE = "spark.sql.files.maxPartitionBytes", "8m"
ON_LOOPBACK = {"spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1"}
# The master URLs Spark takes (SparkContext.createTaskScheduler and its cluster managers), without spaces.
SPARK_MASTER = re.compile(
    r"local(\[(\*|[1-9]\d*)(,[1-9]\d*)?\])?"  # local, local[N], local[*], local[N or *, max task failures]
    r"|spark://[\w.-]+:\d+(,[\w.-]+:\d+)*"  # a standalone master, or several with ZooKeeper
    r"|yarn|k8s://\S+"
)
MASTER_EXAMPLES = "local[*] (every core here), local[N], spark://host:7077, yarn or k8s://https://host:port"
PREDICTED = "_predicted"  # the UDF's column
BATCH = "batch"  # the column of the scored batches' bytes
# What the model's record check (serving/model.py InvalidRecords) says in a worker's traceback: the label
# (`request`), the column and rule, and the records of that batch, which are no lines of the input.
INVALID_RECORDS = re.compile(
    r"InvalidRecords: (?:[^:\n]*: )?(?P<rule>[^\n]*?)(?: on records? \d[^\n]*)?$", re.M
)
MALFORMED = "MALFORMED_RECORD_IN_PARSING"  # Spark's error class for a CSV record it cannot parse (FAILFAST)
TRACEBACK = "Traceback (most recent call last)"
SQLSTATE = re.compile(r"\s*SQLSTATE: \w+\.?")
PY4J_CALL = "An error occurred while calling"  # py4j's first line of a Java exception: which call failed


def parse_spark_master(value: str) -> str:
    """A Spark master URL, or a one-line error naming the parameter."""
    if not SPARK_MASTER.fullmatch(value):
        raise PipelineError(
            f"parameter spark_master={quoted(value)} is not a Spark master URL; pass {MASTER_EXAMPLES}"
        )
    return value


def require_pyspark() -> None:
    """engine=spark needs pyspark, which `make install` leaves out: one line if this Python lacks it."""
    if importlib.util.find_spec("pyspark") is None:
        raise PipelineError(
            "engine=spark needs Apache Spark (pyspark), which this Python environment lacks: run "
            "`make install-spark` and `mlflow run` with --env-manager local, or pass -P engine=pandas"
        )


@contextmanager
def spark_session(master: str) -> Iterator[SparkSession]:
    """A SparkSession on `master`, quiet (Spark's errors only, no UI, no progress bar), stopped afterwards."""
    from pyspark.sql import SparkSession  # noqa: PLC0415 - only engine=spark loads Spark

    # pyspark 4.3 warns that it does not fully support pandas 3 yet; the e2e test holds this engine's
    # output to the pandas engine's.
    warnings.filterwarnings("ignore", "PySpark does not yet fully support pandas", FutureWarning)
    logging.getLogger("py4j").setLevel(logging.WARNING)  # not a line for each connection it opens or closes
    options = QUIET | STRICT_CSV
    if master.startswith("local"):  # the executors are threads of this JVM, their Python workers ours
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        options |= ON_LOOPBACK
    builder = SparkSession.builder.master(master).appName(APP_NAME).config(map=options)
    try:
        spark = builder.getOrCreate()
    except Exception as error:  # pyspark and py4j raise several types; Java missing is one of them
        raise PipelineError(
            f"cannot start Spark on spark_master={quoted(master)} ({shown(summary(error))}); is the master "
            "up and reachable from here, and Java 17 or later installed (java on PATH or JAVA_HOME)?"
        ) from None
    if not spark.sparkContext.getConf().contains(SPLIT_OPTION):
        spark.conf.set(SPLIT_OPTION, SPLIT_SIZE)
    try:
        yield spark
    finally:
        spark.stop()


def scored_on_spark(
    spark: SparkSession, source: str, label: str, model_uri: str
) -> Iterator[tuple[pd.DataFrame, np.ndarray]]:
    """The records of the CSV at `source` (a path or URI every executor can read), typed as the pandas
    engine types them, and the model's predictions: a batch of Spark's (Arrow's, 10,000 records) at a
    time, in input order.

    Every record is checked and scored before the first batch comes back, so a bad one anywhere fails this
    before the caller has written anything."""
    import pyarrow.ipc  # noqa: PLC0415 - as above
    from pyspark.sql.functions import struct  # noqa: PLC0415

    def as_one_value(batches: Iterator[pyarrow.RecordBatch]) -> Iterator[pyarrow.RecordBatch]:
        """Each Arrow batch as a one-row batch of its bytes (Arrow's IPC stream). It runs on the executors,
        which get it by value (a local function) and need only pyarrow, not this project."""
        for batch in batches:
            sink = pyarrow.BufferOutputStream()
            with pyarrow.ipc.new_stream(sink, batch.schema) as writer:
                writer.write_batch(batch)
            yield pyarrow.RecordBatch.from_pydict({BATCH: [sink.getvalue().to_pybytes()]})

    columns = list(MODEL_INPUT_COLUMNS)
    with spark_errors(label):
        table = spark.read.options(header=True, mode="FAILFAST").csv(source)  # every cell as text
        parse_records(table.limit(1).toPandas(), label)  # the header and first row, worded as pandas does
        scoring = model_udf(spark, model_uri)
        # One file's partitions are its splits in file order, and a UDF keeps the order of its rows.
        scored = table.select(*columns, scoring(struct(*columns)).alias(PREDICTED))
        # Each batch as one value, so that the driver takes whole batches, not millions of rows one by one.
        batches = scored.mapInArrow(as_one_value, f"{BATCH} binary").persist()
    try:
        with spark_errors(label):
            log.info("Spark scored %d batches of records", batches.count())
            for (packed,) in batches.toLocalIterator(prefetchPartitions=True):
                chunk = pyarrow.ipc.open_stream(packed).read_all().to_pandas()
                yield model_inputs(parse_records(chunk[columns], label)), chunk[PREDICTED].to_numpy("float64")
    finally:
        batches.unpersist()


def model_udf(spark: SparkSession, model_uri: str):  # noqa: ANN201 - a pyspark UDF, typed only there
    """The model as a Spark UDF of a struct of the record's columns (so the pyfunc gets named columns).

    Spark hands the UDF every cell as text, which the model's own check types as the pandas engine does;
    MLflow would refuse text against the signature's typed input schema first. So the UDF is made from a
    copy of the model whose MLmodel declares the output only (spark_udf copies it again for the executors)."""
    try:
        with tempfile.TemporaryDirectory() as scratch:
            local = mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=scratch)
            described = Model.load(local)
            if described.signature is not None:
                described.signature = ModelSignature(outputs=described.signature.outputs)
            described.save(os.path.join(local, MLMODEL_FILE_NAME))
            return mlflow.pyfunc.spark_udf(spark, local, result_type="double", env_manager="local")
    except MlflowException as error:
        raise PipelineError(
            f"cannot load the model at {shown_path(model_uri)} ({shown(summary(error))})"
        ) from None


@contextmanager
def spark_errors(label: str) -> Iterator[None]:
    """A failed Spark job (or a Spark call that failed) as one line, spark_failure's."""
    from py4j.protocol import Py4JError  # noqa: PLC0415 - as above
    from pyspark.errors import PySparkException  # noqa: PLC0415

    try:
        yield
    except (PySparkException, Py4JError) as error:
        log.debug("Spark failed", exc_info=error)
        raise spark_failure(error, label) from None


def spark_failure(error: BaseException, label: str) -> PipelineError:
    """The record check the model refused, found in a worker's traceback anywhere in the error's chain:
    the column and the rule, as the pandas engine words them, without the line, which Spark does not
    know. Anything else: what Spark said, in one line."""
    for cause in causes(error):
        text = _text(cause)
        if found := INVALID_RECORDS.search(text):
            return PipelineError(
                f"{label}: {found['rule']} (Spark does not say on which line; -P engine=pandas does)"
            )
        if MALFORMED in text:
            return PipelineError(
                f"{label} is not a readable CSV (a record has more or fewer fields than the header); "
                "expected the UCI hour.csv"
            )
    return PipelineError(f"Spark could not score {label}: {shown(summary(error))}")


def summary(error: BaseException) -> str:
    """An error in one line: a Python worker's traceback by its last line, anything else by its first
    (after py4j's own), without Spark's SQLSTATE code."""
    text = SQLSTATE.sub("", _text(error)).strip()
    lines = [line.strip().removeprefix(": ") for line in text.splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith(PY4J_CALL)]
    if not lines:
        return type(error).__name__
    return lines[-1] if TRACEBACK in text else lines[0]


def _text(error: BaseException) -> str:
    """str(error), or its type's name when even that fails: py4j asks the JVM for a Java error's text, and
    the JVM may be gone (killed, or out of memory)."""
    try:
        return str(error)
    except Exception:  # py4j raises several types when the JVM does not answer
        return type(error).__name__
