"""ingest: fetch the UCI Bike Sharing hourly data, validate it, and log it.

Parameters:
    data: an http(s) URL, a local UCI zip, a local hour.csv, or a folder holding hour.csv. The MLproject
        default is the official UCI download; BIKE_SHARING_DATA, when set, replaces that default.
Artifacts:
    data/hour.parquet: the validated table, typed and sorted by (dteday, hr).
    An MLflow dataset input `bike-sharing-hourly` with the sha256 of the exact bytes read.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import mlflow

from demand.schema import TARGET
from demand.sources import HourlyBytes, describe_table, hourly_table, is_url
from plumbing import settings
from plumbing.cli import argument_parser, run_cli
from plumbing.datasets import log_table_input
from plumbing.names import DATASET_NAME, TABLE_ARTIFACT
from plumbing.tracking import StepResult, artifact_uri, record_outputs, step_run

log = logging.getLogger(__name__)
DIGEST_LENGTH = 32  # MLflow stores at most 36 characters of a dataset digest; the full sha256 is a tag


def ingest(data: str, hourly: HourlyBytes | None = None) -> StepResult:
    """Fetch (unless `hourly` was fetched already), validate and log the data in the active run."""
    hourly = hourly or settings.fetch_data(data)
    table = hourly_table(hourly)
    # `data` names what was read, unless `mlflow run -e ingest` logged it already, as passed.
    if "data" not in mlflow.get_run(mlflow.active_run().info.run_id).data.params:
        mlflow.log_param("data", hourly.source)
    mlflow.log_params(
        {
            "data_source": hourly.source,
            "data_sha256": hourly.sha256,
            "data_checksum": "pinned" if hourly.pinned else "recorded",
            "first_day": str(table["dteday"].min().date()),
            "last_day": str(table["dteday"].max().date()),
        }
    )
    mlflow.log_metrics(describe_table(table))
    run_id = mlflow.active_run().info.run_id
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / Path(TABLE_ARTIFACT).name
        table.to_parquet(path, index=False)
        mlflow.log_artifact(str(path), str(Path(TABLE_ARTIFACT).parent))
        digest = record_outputs({"table": artifact_uri(run_id, TABLE_ARTIFACT)}, [path])
    dataset_source = hourly.source if is_url(hourly.source) else Path(hourly.source).as_uri()
    log_table_input(
        table, source=dataset_source, name=DATASET_NAME, target=TARGET,
        digest=hourly.sha256[:DIGEST_LENGTH], context="ingest", tags={"sha256": hourly.sha256},
    )  # fmt: skip
    log.info("Validated %d rows from %s (sha256 %s)", len(table), hourly.label, hourly.sha256)
    return StepResult(run_id, {"table": artifact_uri(run_id, TABLE_ARTIFACT)}, digest)


def main() -> None:
    defaults = settings.parameter_defaults("ingest")
    parser = argument_parser(__doc__)
    parser.add_argument("--data", default=defaults["data"])
    args = parser.parse_args()

    def work() -> None:
        with step_run("ingest"):
            ingest(args.data)

    run_cli(work)


if __name__ == "__main__":
    main()
