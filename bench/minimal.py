"""The floor for the pipeline benchmark: the same data, features, split and model, with no MLflow at all.

Prints the holdout RMSE so the benchmark can check that both sides fit the same model.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from xgboost import XGBRegressor

from demand.features import derive_features
from plumbing.settings import config, parameter_defaults


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("hour_csv", type=Path)
    args = parser.parse_args()
    table = pd.read_csv(args.hour_csv)
    dates = pd.to_datetime(table["dteday"])
    test_days = int(parameter_defaults("main")["test_days"])
    is_test = dates >= dates.max() - pd.Timedelta(days=test_days - 1)
    model = XGBRegressor(**config()["models"]["xgb"], random_state=config()["seed"])
    model.fit(derive_features(table[~is_test]), table.loc[~is_test, "cnt"])
    predicted = model.predict(derive_features(table[is_test]))
    print(f"rmse={np.sqrt(np.mean((predicted - table.loc[is_test, 'cnt']) ** 2)):.4f}")


if __name__ == "__main__":
    main()
