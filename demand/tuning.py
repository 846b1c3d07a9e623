"""Hyperparameter search as pure functions: a search space from config.yaml, time-ordered folds inside the
training rows, and the running cross-validation score after each fold.

Only training rows ever reach these functions: `tune` hands them the train table that featurize wrote, so
the test window cannot shape a choice. No Optuna import here: `suggest` takes any object with Optuna's
`suggest_int`, `suggest_float` and `suggest_categorical`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

import numpy as np
import pandas as pd

from demand.errors import PipelineError
from demand.hyperparameters import check_hyperparameters
from demand.metrics import regression_metrics
from demand.models import fit
from demand.schema import TARGET, model_inputs

Folds = list[tuple[np.ndarray, np.ndarray]]


class Trial(Protocol):
    def suggest_int(self, name: str, low: int, high: int, *, log: bool = False) -> int: ...
    def suggest_float(self, name: str, low: float, high: float, *, log: bool = False) -> float: ...
    def suggest_categorical(self, name: str, choices: list[Any]) -> Any: ...


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def suggest(trial: Trial, space: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A value per hyperparameter of `space`: a choice, an int range (whole-number bounds) or a float one."""
    values = {}
    for name, spec in space.items():
        if "choices" in spec:
            values[name] = trial.suggest_categorical(name, list(spec["choices"]))
        elif _is_int(spec["low"]) and _is_int(spec["high"]):
            values[name] = trial.suggest_int(name, spec["low"], spec["high"], log=spec.get("log", False))
        else:
            low, high = float(spec["low"]), float(spec["high"])
            values[name] = trial.suggest_float(name, low, high, log=spec.get("log", False))
    return values


def check_search_space(model: str, space: dict[str, dict[str, Any]], known: dict[str, Any]) -> None:
    """Every name is a hyperparameter of `model` and every bound or choice lies in its allowed range."""
    for name, spec in space.items():
        if name not in known:
            raise PipelineError(f"config.yaml tune.search.{model} names unknown hyperparameter {name}")
        bounds = spec["choices"] if "choices" in spec else [spec["low"], spec["high"]]
        for value in bounds:
            try:
                check_hyperparameters(model, {name: value})
            except PipelineError as error:
                raise PipelineError(f"config.yaml tune.search.{model}: {error}") from None
        if "choices" not in spec and spec["low"] >= spec["high"]:
            raise PipelineError(f"config.yaml tune.search.{model}.{name}: low must be below high")


def time_folds(train: pd.DataFrame, folds: int, fold_days: int) -> Folds:
    """Row positions (fit, score) of each fold, oldest first: a fold scores `fold_days` days of training
    rows and fits on every training row before them. Days are the training table's own days, so under
    split=kaggle a fold's days are days 1-19 of consecutive months."""
    days = np.sort(train["dteday"].unique())
    if len(days) <= folds * fold_days:
        raise PipelineError(
            f"the training rows span {len(days)} days, too few for {folds} folds of {fold_days} days; "
            "lower tune.folds or tune.fold_days in config.yaml"
        )
    row_days = train["dteday"].to_numpy()
    result = []
    for back in range(folds, 0, -1):
        first, last = days[len(days) - back * fold_days], days[len(days) - (back - 1) * fold_days - 1]
        fit_rows = np.flatnonzero(row_days < first)
        score_rows = np.flatnonzero((row_days >= first) & (row_days <= last))
        result.append((fit_rows, score_rows))
    return result


def fold_scores(
    train: pd.DataFrame,
    folds: Folds,
    *,
    model: str,
    hyperparameters: dict[str, Any],
    seed: int,
    target: str,
    score: str,
) -> Iterator[float]:
    """After each fold, the mean of `score` over the folds so far. A generator, so a caller can stop
    early: that is how a pruned trial skips its remaining folds."""
    scores = []
    for fit_rows, score_rows in folds:
        pipeline = fit(train.iloc[fit_rows], model, hyperparameters, seed, target)
        scored = train.iloc[score_rows]
        scores.append(regression_metrics(scored[TARGET], pipeline.predict(model_inputs(scored)))[score])
        yield float(np.mean(scores))
