"""Pick a model's hyperparameters by time-series cross-validation inside the training period only.

The default time split's test rows (the last `test_days` days) are dropped before anything else, so the
holdout never influences the choice. Each fold trains on the past and validates on the next weeks.

    python -m scripts.tune <hour.csv or folder> [--model xgb]

Prints the grid's CV RMSE, best first. Copy the winner into config.yaml by hand.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import TimeSeriesSplit

from demand.models import build_model
from demand.schema import TARGET, model_inputs, parse_hourly, read_csv_text
from demand.split import split_table
from plumbing import settings

FOLDS = 4
FOLD_DAYS = 42
GRIDS = {
    "xgb": {
        "objective": ["count:poisson", "reg:squarederror"],
        "max_depth": [4, 6, 8],
        "learning_rate": [0.03, 0.1],
        "n_estimators": [500, 1500],
    },
    "hgb": {"loss": ["poisson", "squared_error"], "max_leaf_nodes": [31, 63], "learning_rate": [0.05, 0.1]},
    "rf": {"max_features": [0.5, 0.8], "min_samples_leaf": [1, 3]},
    "ridge": {"alpha": [0.1, 1.0, 10.0]},
}


def cv_rmse(train: pd.DataFrame, model: str, hyperparameters: dict, seed: int) -> float:
    inputs, target = model_inputs(train), train[TARGET].to_numpy()
    folds = TimeSeriesSplit(n_splits=FOLDS, test_size=FOLD_DAYS * 24)
    errors = []
    for fit_rows, check_rows in folds.split(inputs):
        pipeline = build_model(model, hyperparameters, seed).fit(inputs.iloc[fit_rows], target[fit_rows])
        predicted = pipeline.predict(inputs.iloc[check_rows])
        errors.append(np.sqrt(np.mean((predicted - target[check_rows]) ** 2)))
    return float(np.mean(errors))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("data", type=Path)
    parser.add_argument(
        "--model", default=settings.parameter_defaults("main")["model"], choices=sorted(GRIDS)
    )
    args = parser.parse_args()
    path = args.data / "hour.csv" if args.data.is_dir() else args.data
    table = parse_hourly(read_csv_text(path.read_bytes(), str(path)), str(path))
    defaults = settings.parameter_defaults("main")
    train, _ = split_table(table, defaults["split"], int(defaults["test_days"]))  # the holdout is set aside
    base = settings.config()["models"][args.model]
    grid = GRIDS[args.model]
    results = []
    for values in itertools.product(*grid.values()):
        candidate = base | dict(zip(grid, values, strict=True))
        results.append((cv_rmse(train, args.model, candidate, settings.config()["seed"]), candidate))
        print(f"cv_rmse={results[-1][0]:7.2f}  {dict(zip(grid, values, strict=True))}", flush=True)
    print("\nbest first:")
    for score, candidate in sorted(results, key=lambda item: item[0])[:5]:
        print(f"cv_rmse={score:7.2f}  {candidate}")


if __name__ == "__main__":
    main()
