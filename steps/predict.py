"""predict: batch predictions for a CSV of raw hourly records, from a registered (or any logged) model.

Parameters:
    input: a CSV with the columns of hour.csv; casual, registered and cnt may be there and are ignored.
    output: where to write the predictions: a CSV of the input's records and `predicted_cnt`, in input order.
    model_uri: empty for the @champion of model_name, or any model URI (models:/<name>/<version>, ...).
    model_name: the registered model whose champion is used by default.
Logged: params resolved_model_uri and model_version, tags input_sha256 and input_path, metric rows.
The input is read, checked and scored `predict.chunk_rows` rows at a time (config.yaml), so memory stays
flat however long the file. A bad record fails the run and no output appears, naming the column, the rule
and the CSV lines (of the first chunk that has bad rows).
"""

from __future__ import annotations

import logging

import mlflow
import numpy as np
from mlflow import MlflowClient

from demand.csv_text import read_csv_chunks
from demand.errors import shown_path
from demand.schema import model_inputs, parse_records
from plumbing import settings
from plumbing.cli import argument_parser, run_cli
from plumbing.files import csv_written_atomically, file_sha256, output_file, readable_file
from plumbing.params import parse_model_name
from plumbing.registry import resolve_model
from plumbing.tracking import StepResult, load_model, step_run

log = logging.getLogger(__name__)
PREDICTION_COLUMN = "predicted_cnt"


def predict(input_path: str, output_path: str, model_uri: str, model_name: str) -> StepResult:
    """Read, check, predict and write, chunk by chunk, logging into the active run."""
    target = output_file(output_path)
    source = readable_file(input_path, "input")
    label = shown_path(source)
    uri, version = resolve_model(MlflowClient(), model_uri, model_name)
    # `mlflow run` logs the parameters as given; this logs what they resolved to.
    mlflow.log_params({"resolved_model_uri": uri, "model_version": version})
    mlflow.set_tags({"input_sha256": file_sha256(source), "input_path": input_path})
    model, rows = load_model(uri), 0
    with csv_written_atomically(target) as write:
        for raw in read_csv_chunks(source, label, settings.config()["predict"]["chunk_rows"]):
            inputs = model_inputs(parse_records(raw, label))
            predicted = np.asarray(model.predict(inputs), dtype="float64")
            write(inputs.assign(**{PREDICTION_COLUMN: predicted}))
            rows += len(inputs)
    mlflow.log_metric("rows", rows)
    log.info("Wrote %d predictions of %s to %s", rows, version, output_path)
    run_id = mlflow.active_run().info.run_id
    return StepResult(run_id, {}, file_sha256(target))


def main() -> None:
    defaults = settings.parameter_defaults("predict")
    parser = argument_parser(__doc__)
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--model_uri", default=defaults["model_uri"])
    parser.add_argument("--model_name", default=defaults["model_name"])
    args = parser.parse_args()

    def work() -> None:
        parse_model_name(args.model_name)
        with step_run("predict"):
            predict(args.input, args.output, args.model_uri, args.model_name)

    run_cli(work)


if __name__ == "__main__":
    main()
