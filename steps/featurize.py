"""featurize: split the validated table into train and test rows and describe the model's features.

Parameters:
    table: URI of the table ingest logged (runs:/<ingest run>/data/hour.parquet).
    split: `time` (the last `test_days` days are the test set) or `kaggle` (day of month >= 20 is).
    test_days: days in the time-split test window.
Artifacts:
    features/train.parquet, features/test.parquet: raw hourly rows with the target. The model derives
        its features from these itself, so the served model and the evaluated one cannot disagree.
    features/features.json: each feature, how it is derived, and its range on the training rows.
    features/split.json: the split and test_days, from which train picks what the model fits.
"""

from __future__ import annotations

import json
import logging

import mlflow

from demand.features import describe_features
from demand.split import describe_split, split_table
from plumbing import settings
from plumbing.artifacts import read_table
from plumbing.cli import argument_parser, run_cli
from plumbing.names import (
    FEATURES_DESCRIPTION_FILE,
    FEATURES_DIR,
    SPLIT_FILE,
    TABLE_ARTIFACT,
    TEST_FILE,
    TRAIN_FILE,
)
from plumbing.params import parse_split
from plumbing.tracking import StepResult, log_outputs, step_run

log = logging.getLogger(__name__)


def featurize(table: str, split: str, test_days: int) -> StepResult:
    """Split and describe in the active run (parameters already checked by parse_split)."""
    mlflow.log_params({"table": table, "split": split, "test_days": test_days})
    frame = read_table(table, "ingested table")
    train, test = split_table(frame, split, test_days)
    mlflow.log_params(describe_split(train, test))
    mlflow.log_metrics({"train_rows": len(train), "test_rows": len(test)})
    folder = {
        TRAIN_FILE: lambda path: train.to_parquet(path, index=False),
        TEST_FILE: lambda path: test.to_parquet(path, index=False),
        FEATURES_DESCRIPTION_FILE: lambda path: path.write_text(
            json.dumps(describe_features(train), indent=2)
        ),
        SPLIT_FILE: lambda path: path.write_text(json.dumps({"split": split, "test_days": test_days})),
    }
    result = log_outputs(
        {f"{FEATURES_DIR}/{name}": write for name, write in folder.items()},
        outputs={
            "features": FEATURES_DIR,
            "train": f"{FEATURES_DIR}/{TRAIN_FILE}",
            "test": f"{FEATURES_DIR}/{TEST_FILE}",
        },
    )
    log.info("Split %d train and %d test rows (%s)", len(train), len(test), split)
    return result


def main(argv: list[str] | None = None) -> None:
    defaults = settings.parameter_defaults("featurize")
    parser = argument_parser(__doc__)
    parser.add_argument("--table", required=True, help=f"e.g. runs:/<ingest run id>/{TABLE_ARTIFACT}")
    parser.add_argument("--split", default=defaults["split"])
    parser.add_argument("--test_days", default=defaults["test_days"])
    args = parser.parse_args(argv)

    def work() -> None:
        split, test_days = parse_split(args.split, args.test_days)
        with step_run("featurize"):
            featurize(args.table, split, test_days)

    run_cli(work)


if __name__ == "__main__":
    main()
