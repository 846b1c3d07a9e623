"""featurize: split the validated table into train and test rows and describe the model's features.

Parameters:
    table: URI of the table ingest logged (runs:/<ingest run>/data/hour.parquet).
    split: `time` (the last `test_days` days are the test set) or `kaggle` (day of month >= 20 is).
    test_days: days in the time-split test window.
Artifacts:
    features/train.parquet, features/test.parquet: raw hourly rows with the target. The model derives
        its features from these itself, so the served model and the evaluated one cannot disagree.
    features/features.json: each feature, how it is derived, and its range on the training rows.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path

import mlflow
import pandas as pd

from steps import settings
from steps.errors import PipelineError
from steps.features import FEATURE_DESCRIPTIONS, derive_features
from steps.names import FEATURES_DESCRIPTION_FILE, FEATURES_DIR, TABLE_ARTIFACT, TEST_FILE, TRAIN_FILE
from steps.params import validate_split
from steps.tracking import (
    StepResult,
    argument_parser,
    artifact_uri,
    read_table,
    record_outputs,
    run_cli,
    step_run,
)

log = logging.getLogger(__name__)
KAGGLE_LAST_TRAIN_DAY = 19  # Kaggle "Bike Sharing Demand": days 1-19 of each month train, 20+ test


def split_table(table: pd.DataFrame, split: str, test_days: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train and test rows. `time` holds out the last `test_days` calendar days of the data."""
    if split == "kaggle":
        is_test = table["dteday"].dt.day > KAGGLE_LAST_TRAIN_DAY
    else:
        days = table["dteday"].nunique()
        if test_days >= days:
            raise PipelineError(
                f"parameter test_days={test_days} leaves no training rows: the table spans {days} days"
            )
        first_test_day = table["dteday"].max() - pd.Timedelta(days=test_days - 1)
        is_test = table["dteday"] >= first_test_day
    train, test = table[~is_test].reset_index(drop=True), table[is_test].reset_index(drop=True)
    if train.empty or test.empty:
        side = "training" if train.empty else "test"
        raise PipelineError(f"split={split} leaves no {side} rows in this data; choose the other split")
    return train, test


def describe_features(train: pd.DataFrame) -> dict[str, dict[str, object]]:
    """How each feature is made and its range on the training rows."""
    matrix = derive_features(train)
    return {
        name: {"description": text, "min": float(matrix[name].min()), "max": float(matrix[name].max())}
        for name, text in FEATURE_DESCRIPTIONS.items()
    }


def describe_split(train: pd.DataFrame, test: pd.DataFrame) -> dict[str, str]:
    def span(frame: pd.DataFrame) -> str:
        return f"{frame['dteday'].min().date()}..{frame['dteday'].max().date()}"

    return {"train_period": span(train), "test_period": span(test)}


def featurize(table: str, split: str, test_days: int) -> StepResult:
    """Split and describe in the active run (parameters already checked by validate_split)."""
    mlflow.log_params({"table": table, "split": split, "test_days": test_days})
    frame = read_table(table, "ingested table")
    train, test = split_table(frame, split, test_days)
    mlflow.log_params(describe_split(train, test))
    mlflow.log_metrics({"train_rows": len(train), "test_rows": len(test)})
    run_id = mlflow.active_run().info.run_id
    outputs = {
        "features": artifact_uri(run_id, FEATURES_DIR),
        "train": artifact_uri(run_id, f"{FEATURES_DIR}/{TRAIN_FILE}"),
        "test": artifact_uri(run_id, f"{FEATURES_DIR}/{TEST_FILE}"),
    }
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / FEATURES_DIR
        folder.mkdir()
        train.to_parquet(folder / TRAIN_FILE, index=False)
        test.to_parquet(folder / TEST_FILE, index=False)
        (folder / FEATURES_DESCRIPTION_FILE).write_text(json.dumps(describe_features(train), indent=2))
        mlflow.log_artifacts(str(folder), FEATURES_DIR)
        digest = record_outputs(outputs, list(folder.iterdir()))
    log.info("Split %d train and %d test rows (%s)", len(train), len(test), split)
    return StepResult(run_id, outputs, digest)


def main() -> None:
    defaults = settings.parameter_defaults("featurize")
    parser = argument_parser(__doc__)
    parser.add_argument("--table", required=True, help=f"e.g. runs:/<ingest run id>/{TABLE_ARTIFACT}")
    parser.add_argument("--split", default=defaults["split"])
    parser.add_argument("--test_days", default=defaults["test_days"])
    args = parser.parse_args()

    def work() -> None:
        split, test_days = validate_split(args.split, args.test_days)
        with step_run("featurize"):
            featurize(args.table, split, test_days)

    run_cli(work)


if __name__ == "__main__":
    main()
