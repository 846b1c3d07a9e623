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
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd

from steps import settings
from steps.names import DATASET_NAME, TABLE_ARTIFACT
from steps.schema import TARGET, parse_hourly, read_csv_text
from steps.sources import HourlyBytes, cache_dir, choose_source, is_url, read_hourly
from steps.tracking import argument_parser, artifact_uri, run_cli, step_run

log = logging.getLogger(__name__)
DIGEST_LENGTH = 32  # MLflow stores at most 36 characters of a dataset digest; the full sha256 is a tag


@dataclass(frozen=True)
class IngestResult:
    run_id: str
    table_uri: str
    sha256: str
    rows: int


def load_table(hourly: HourlyBytes) -> pd.DataFrame:
    """The validated, typed, time-ordered table from the raw bytes of hour.csv."""
    return parse_hourly(read_csv_text(hourly.content, hourly.label), hourly.label)


def summarize(table: pd.DataFrame) -> dict[str, float]:
    return {"rows": len(table), "days": table["dteday"].nunique(), "cnt_total": float(table[TARGET].sum())}


def run_ingest(data: str) -> IngestResult:
    """Fetch, validate and log the data inside the `ingest` run."""
    default = settings.parameter_defaults("ingest")["data"]
    source = choose_source(data, default, os.environ)
    options = settings.config()["ingest"]
    pinned = options["uci_hour_csv_sha256"] if source == default else None
    with step_run("ingest") as run:
        mlflow.log_params({"data": data, "data_source": source})
        hourly = read_hourly(source, pinned, cache_dir(os.environ), options["download_timeout_seconds"])
        table = load_table(hourly)
        mlflow.log_params(
            {
                "data_sha256": hourly.sha256,
                "data_checksum": "pinned" if pinned else "recorded",
                "first_day": str(table["dteday"].min().date()),
                "last_day": str(table["dteday"].max().date()),
            }
        )
        mlflow.log_metrics(summarize(table))
        with tempfile.TemporaryDirectory() as scratch:
            path = Path(scratch) / Path(TABLE_ARTIFACT).name
            table.to_parquet(path, index=False)
            mlflow.log_artifact(str(path), str(Path(TABLE_ARTIFACT).parent))
        dataset_source = hourly.source if is_url(hourly.source) else Path(hourly.source).as_uri()
        with warnings.catch_warnings():  # MLflow's hints on file URIs and integer columns do not apply here
            warnings.simplefilter("ignore", UserWarning)
            dataset = mlflow.data.from_pandas(
                table,
                source=dataset_source,
                name=DATASET_NAME,
                targets=TARGET,
                digest=hourly.sha256[:DIGEST_LENGTH],
            )
            mlflow.log_input(dataset, context="ingest", tags={"sha256": hourly.sha256})
        log.info("Validated %d rows from %s (sha256 %s)", len(table), hourly.label, hourly.sha256)
    return IngestResult(
        run.info.run_id, artifact_uri(run.info.run_id, TABLE_ARTIFACT), hourly.sha256, len(table)
    )


def main() -> None:
    defaults = settings.parameter_defaults("ingest")
    parser = argument_parser(__doc__)
    parser.add_argument("--data", default=defaults["data"])
    args = parser.parse_args()
    run_cli(lambda: run_ingest(args.data))


if __name__ == "__main__":
    main()
