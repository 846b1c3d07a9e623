"""ingest: fetch the UCI Bike Sharing hourly data, validate it, and log it.

Parameters:
    data: an http(s) URL, a local UCI zip, a local hour.csv, or a folder holding hour.csv. The MLproject
        default is the official UCI download, checked against the sha256 pinned in config.yaml; offline,
        BIKE_SHARING_DATA names a copy of it (plumbing/data_source.py).
Logged:
    params data (as given), data_sha256 (of hour.csv's exact bytes),
        data_checksum (`pinned` for the UCI download, else `recorded`), first_day, last_day; tag
        data_read_from (the file read: the download's cached copy, the offline copy, or the file itself);
        metrics rows, days, cnt_total, missing_hours (between the first and last hour; a warning
        says how many and the longest stretch).
    data/hour.parquet: the validated table, typed and sorted by (dteday, hr).
    An MLflow dataset input `bike-sharing-hourly` with the sha256 of the exact bytes read.
"""

from __future__ import annotations

import logging
from pathlib import Path

import mlflow

from demand.hourly import describe_gaps, describe_table, hourly_table, missing_hours
from demand.schema import TARGET
from plumbing import settings
from plumbing.cli import argument_parser, run_cli
from plumbing.data_source import HourlyBytes, fetch_data, is_url
from plumbing.datasets import log_table_input
from plumbing.names import DATASET_NAME, TABLE_ARTIFACT
from plumbing.tracking import StepResult, log_outputs, step_run

log = logging.getLogger(__name__)
DIGEST_LENGTH = 32  # MLflow stores at most 36 characters of a dataset digest; the full sha256 is a tag


def ingest(hourly: HourlyBytes) -> StepResult:
    """Validate and log the fetched data in the active run."""
    table = hourly_table(hourly.content, hourly.label)
    gaps = missing_hours(table)
    if len(gaps):
        log.warning(describe_gaps(gaps, len(table), hourly.label))
    mlflow.log_params(hourly.read_params())
    mlflow.log_params(
        {
            "data_checksum": "pinned" if hourly.pinned else "recorded",
            "first_day": str(table["dteday"].min().date()),
            "last_day": str(table["dteday"].max().date()),
        }
    )
    mlflow.set_tag("data_read_from", hourly.read_from)
    mlflow.log_metrics(describe_table(table))
    result = log_outputs(
        {TABLE_ARTIFACT: lambda path: table.to_parquet(path, index=False)}, outputs={"table": TABLE_ARTIFACT}
    )
    log_table_input(
        table,
        source=hourly.source if is_url(hourly.source) else Path(hourly.read_from).as_uri(),
        name=DATASET_NAME,
        target=TARGET,
        digest=hourly.sha256[:DIGEST_LENGTH],
        context="ingest",
        tags={"sha256": hourly.sha256},
    )
    log.info("Validated %d rows from %s (sha256 %s)", len(table), hourly.label, hourly.sha256)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argument_parser(__doc__)
    parser.add_argument("--data", default=settings.parameter_defaults("ingest")["data"])
    args = parser.parse_args(argv)

    def work() -> None:
        with step_run("ingest"):
            ingest(fetch_data(args.data))

    run_cli(work)


if __name__ == "__main__":
    main()
