"""The floor for the pipeline benchmark: the same data, features, split and model, with no MLflow at all.

Prints the holdout RMSE so the benchmark can check that both sides fit the same model.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from demand.models import fit
from demand.schema import model_inputs
from plumbing.settings import config, model_defaults, parameter_defaults, split_options


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("hour_csv", type=Path)
    args = parser.parse_args()
    table = pd.read_csv(args.hour_csv, parse_dates=["dteday"])
    test_days = int(parameter_defaults("main")["test_days"])
    is_test = table["dteday"] >= table["dteday"].max() - pd.Timedelta(days=test_days - 1)
    train, test = table[~is_test], table[is_test]
    model = fit(
        train, "xgb", model_defaults("xgb", "time"), config()["seed"], split_options("time")["target"]
    )
    predicted = model.predict(model_inputs(test))
    print(f"rmse={np.sqrt(np.mean((predicted - test['cnt']) ** 2)):.4f}")


if __name__ == "__main__":
    main()
