"""Scores and baselines for the test rows (pure: frames in, numbers out).

Baselines, each scored on exactly the model's test rows:
    hour_workingday_mean: the mean training count for the same (hour, workingday).
    last_week: the count 168 hours earlier where the data has that hour; otherwise the first baseline.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from demand.schema import TARGET
from demand.split import KAGGLE_LAST_TRAIN_DAY

METRICS = ("rmse", "mae", "r2", "rmsle")
# Each is logged as `baseline_<name>_<metric>`, with the model's skill against it as `skill_vs_<name>`.
BASELINES = ("hour_workingday_mean", "last_week")
WEEK = pd.Timedelta(days=7)


def regression_metrics(actual: pd.Series | np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """rmse, mae, r2 and rmsle (predictions are counts, so never negative)."""
    y = np.asarray(actual, dtype="float64")
    p = np.asarray(predicted, dtype="float64")
    errors = p - y
    total = np.sum((y - y.mean()) ** 2)
    return {
        "rmse": float(np.sqrt(np.mean(errors**2))),
        "mae": float(np.mean(np.abs(errors))),
        "r2": float(1 - np.sum(errors**2) / total) if total > 0 else float("nan"),
        "rmsle": float(np.sqrt(np.mean((np.log1p(np.maximum(p, 0)) - np.log1p(y)) ** 2))),
    }


def kaggle_protocol(test: pd.DataFrame, predicted: np.ndarray, winner_rmsle: float) -> dict[str, float]:
    """RMSLE on the rows Kaggle's "Bike Sharing Demand" scored (days 20 and later of each month), next to
    the winners' score. Kaggle scored a hidden public/private split of those rows, so the two are close
    kin, not the same number."""
    scored = (test["dteday"].dt.day > KAGGLE_LAST_TRAIN_DAY).to_numpy()
    rmsle = regression_metrics(test[TARGET][scored], np.asarray(predicted)[scored])["rmsle"]
    return {
        "kaggle_rmsle": rmsle,
        "kaggle_test_rows": float(scored.sum()),
        "kaggle_winner_rmsle": winner_rmsle,
    }


def kaggle_comparison(scores: dict[str, float]) -> str:
    """The Kaggle protocol's score next to the winners', in one sentence (for the summary and the report)."""
    return (
        f"RMSLE {scores['kaggle_rmsle']:.4f} on {scores['kaggle_test_rows']:.0f} rows (days 20 and later of "
        f"each month); the winners scored {scores['kaggle_winner_rmsle']} on a hidden public/private split "
        "of the same rows"
    )


def skill(model_rmse: float, baseline_rmse: float) -> float:
    """1 - RMSE(model) / RMSE(baseline): 0 is no better than the baseline, 1 is perfect."""
    return 1.0 - model_rmse / baseline_rmse


def hour_workingday_mean(train: pd.DataFrame, test: pd.DataFrame) -> np.ndarray:
    """Mean training count for each test row's (hr, workingday); the overall mean if never seen."""
    means = train.groupby(["hr", "workingday"])[TARGET].mean()
    keys = pd.MultiIndex.from_frame(test[["hr", "workingday"]])
    return means.reindex(keys).fillna(train[TARGET].mean()).to_numpy()


def timestamps(table: pd.DataFrame) -> pd.Series:
    return pd.to_datetime(table["dteday"]) + pd.to_timedelta(table["hr"], unit="h")


def last_week(history: pd.DataFrame, test: pd.DataFrame, fallback: np.ndarray) -> tuple[np.ndarray, float]:
    """Count one week earlier from `history` (train and test rows), and the share of rows that had one."""
    counts = pd.Series(history[TARGET].to_numpy(), index=timestamps(history))
    earlier = counts.reindex(timestamps(test) - WEEK).to_numpy(dtype="float64")
    found = ~np.isnan(earlier)
    return np.where(found, earlier, fallback), float(found.mean())


def error_by_hour(test: pd.DataFrame, predicted: np.ndarray) -> pd.Series:
    """RMSE of the predictions for each hour of the day."""
    squared = pd.Series((predicted - test[TARGET].to_numpy()) ** 2, index=test["hr"].to_numpy())
    return np.sqrt(squared.groupby(level=0).mean())


@dataclass(frozen=True)
class Scores:
    """A model's holdout scores next to the baselines', before anything is logged."""

    metrics: dict[str, float]  # flat, as logged
    by_name: dict[str, dict[str, float]]  # model and baselines -> metrics, for the report
    skills: dict[str, float]
    predicted: np.ndarray


def holdout_scores(train: pd.DataFrame, test: pd.DataFrame, predicted: np.ndarray) -> Scores:
    """The model's and the baselines' metrics on exactly the same test rows."""
    mean_baseline = hour_workingday_mean(train, test)
    history = pd.concat([train, test], ignore_index=True)
    week_baseline, coverage = last_week(history, test, fallback=mean_baseline)
    baselines = dict(zip(BASELINES, (mean_baseline, week_baseline), strict=True))
    by_name = {"model": regression_metrics(test[TARGET], predicted)}
    flat = dict(by_name["model"])
    skills = {}
    for name, baseline in baselines.items():
        by_name[f"baseline {name}"] = regression_metrics(test[TARGET], baseline)
        flat |= {f"baseline_{name}_{key}": value for key, value in by_name[f"baseline {name}"].items()}
        skills[name] = skill(flat["rmse"], flat[f"baseline_{name}_rmse"])
    flat |= {f"skill_vs_{name}": value for name, value in skills.items()}
    flat["last_week_coverage"] = coverage
    return Scores(flat, by_name, skills, predicted)
