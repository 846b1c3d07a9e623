"""predict: batch predictions for a CSV of raw hourly records, from a registered (or any logged) model.

Parameters:
    input: a CSV with the columns of hour.csv; casual, registered and cnt may be there and are ignored.
    output: where to write the predictions: a CSV of the input's records and `predicted_cnt`, in input order.
    model_uri: empty for the @champion of model_name, or any model URI (models:/<name>/<version>, ...).
    model_name: the registered model whose champion is used by default.
Logged: params resolved_model_uri and model_version, tags input_sha256 and input_path, metric rows.
A bad record fails the run before anything is written, naming the column, the rule and the CSV lines.
"""

from __future__ import annotations

import hashlib
import logging

import mlflow
import numpy as np
from mlflow import MlflowClient

from demand.schema import model_inputs, parse_records, read_csv_text
from plumbing import settings
from plumbing.cli import argument_parser, run_cli
from plumbing.files import input_file, output_file, write_csv_atomically
from plumbing.params import parse_model_name
from plumbing.registry import resolve_model
from plumbing.tracking import StepResult, load_model, step_run

log = logging.getLogger(__name__)
PREDICTION_COLUMN = "predicted_cnt"


def predict(input_path: str, output_path: str, model_uri: str, model_name: str) -> StepResult:
    """Read, check, predict and write, logging into the active run."""
    target = output_file(output_path)
    content, label = input_file(input_path, "input")
    records = parse_records(read_csv_text(content, label), label)
    uri, version = resolve_model(MlflowClient(), model_uri, model_name)
    # `mlflow run` logs the parameters as given; this logs what they resolved to.
    mlflow.log_params({"resolved_model_uri": uri, "model_version": version})
    mlflow.set_tags({"input_sha256": hashlib.sha256(content).hexdigest(), "input_path": input_path})
    inputs = model_inputs(records)
    predicted = np.asarray(load_model(uri).predict(inputs), dtype="float64")
    write_csv_atomically(inputs.assign(**{PREDICTION_COLUMN: predicted}), target)
    mlflow.log_metric("rows", len(records))
    log.info("Wrote %d predictions of %s to %s", len(records), version, output_path)
    run_id = mlflow.active_run().info.run_id
    return StepResult(run_id, {}, hashlib.sha256(target.read_bytes()).hexdigest())


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
