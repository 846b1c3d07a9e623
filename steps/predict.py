"""predict: batch predictions for a CSV of raw hourly records, from a registered (or any logged) model.

Parameters:
    input: a CSV with the columns of hour.csv; casual, registered and cnt may be there and are ignored.
    output: where to write the predictions: a CSV of the input's records and `predicted_cnt`, in input order.
    model_uri: empty for the @champion of model_name, or any model URI (models:/<name>/<version>, ...).
    model_name: the registered model whose champion is used by default.
    engine: pandas (this process) or spark (Apache Spark, plumbing/spark/scoring.py; `make install-spark`).
    spark_master: where engine=spark runs: local[*] (every core here), local[N], or a cluster's master URL.
Logged: params resolved_model_uri, model_version, engine (resolved_spark_master on Spark), tags input_sha256
and input_path, metric rows. Both engines write the same file, only once every record is scored. pandas
reads, checks and scores `predict.chunk_rows` rows at a time (config.yaml), so memory stays flat however
long the file. A bad record fails the run naming the column, the rule and (pandas) the CSV lines.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient

from demand.csv_text import read_csv_chunks
from demand.errors import shown_path
from demand.schema import PREDICTION_COLUMN, model_inputs, parse_records
from plumbing import settings
from plumbing.artifacts import load_model, resolve_model
from plumbing.cli import argument_parser, run_cli
from plumbing.files import csv_written_atomically, file_sha256, output_file, readable_file
from plumbing.params import parse_choice, parse_model_name
from plumbing.spark.scoring import parse_spark_master, require_pyspark, scored_on_spark, spark_session
from plumbing.tracking import StepResult, step_run

log = logging.getLogger(__name__)
ENGINES = ("pandas", "spark")
Scored = Iterator[tuple[pd.DataFrame, np.ndarray]]  # typed records and their predictions, chunk by chunk


def predict(
    input_path: str,
    output_path: str,
    model_uri: str,
    model_name: str,
    *,
    engine: str,
    spark_master: str,
) -> StepResult:
    """Read, check, predict and write, chunk by chunk, logging into the active run (engine and
    spark_master checked by the caller)."""
    source = readable_file(input_path, "input")
    target = output_file(output_path, source)
    label = shown_path(source)
    uri, version = resolve_model(MlflowClient(), model_uri, model_name)
    # `mlflow run` logs the parameters as given; this logs what they resolved to.
    mlflow.log_params({"resolved_model_uri": uri, "model_version": version, "engine": engine})
    mlflow.set_tags({"input_sha256": file_sha256(source), "input_path": input_path})
    if engine == "spark":
        with spark_session(spark_master) as spark:
            mlflow.log_param("resolved_spark_master", spark.sparkContext.master)
            rows = write_predictions(target, scored_on_spark(spark, str(source), label, uri))
    else:
        rows = write_predictions(target, scored_with_pandas(source, label, load_model(uri)))
    mlflow.log_metric("rows", rows)
    log.info("Wrote %d predictions of %s to %s", rows, version, output_path)
    run_id = mlflow.active_run().info.run_id
    return StepResult(run_id, {}, file_sha256(target))


def scored_with_pandas(source: Path, label: str, model: mlflow.pyfunc.PyFuncModel) -> Scored:
    """The input read, checked and scored in this process, `predict.chunk_rows` records at a time."""
    with source.open("rb") as handle:
        for raw in read_csv_chunks(handle, label, settings.config()["predict"]["chunk_rows"]):
            inputs = model_inputs(parse_records(raw, label))
            yield inputs, np.asarray(model.predict(inputs), dtype="float64")


def write_predictions(target: Path, scored: Scored) -> int:
    """Every chunk's records and predictions, in one file that appears only once all are written; the
    number of records."""
    rows = 0
    with closing(scored), csv_written_atomically(target) as write:
        for inputs, predicted in scored:
            write(inputs.assign(**{PREDICTION_COLUMN: predicted}))
            rows += len(inputs)
    return rows


def main(argv: list[str] | None = None) -> None:
    defaults = settings.parameter_defaults("predict")
    parser = argument_parser(__doc__)
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    for name in ("model_uri", "model_name", "engine", "spark_master"):
        parser.add_argument(f"--{name}", default=defaults[name])
    args = parser.parse_args(argv)

    def work() -> None:
        parse_model_name(args.model_name)
        parse_choice("engine", args.engine, ENGINES)
        parse_spark_master(args.spark_master)
        if args.engine == "spark":
            require_pyspark()
        with step_run("predict"):
            engines = {"engine": args.engine, "spark_master": args.spark_master}
            predict(args.input, args.output, args.model_uri, args.model_name, **engines)

    run_cli(work)


if __name__ == "__main__":
    main()
