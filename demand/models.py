"""The models `train` can fit: each is one scikit-learn pipeline from raw hourly records to counts.

Every pipeline starts with HourlyFeatures, so whoever calls `predict` (evaluate, a batch job, the REST
server) passes raw records and gets the same features. Every model predicts non-negative counts.

What the estimator learns is the `target` (config.yaml `splits`): the count itself, or casual and
registered riders each with their own copy of the estimator, on the count or the log(1 + count) scale.
The riders are only targets: no model ever sees them as features.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from xgboost import XGBRegressor

from demand.errors import PipelineError, quoted
from demand.features import CATEGORICAL_FEATURES, FEATURE_NAMES, HourlyFeatures
from demand.schema import TARGET, model_inputs

RIDER_COLUMNS = ("casual", "registered")
BAGGED_SEEDS = "bagged_seeds"  # a hyperparameter of the tree models: how many seeds SeedBag averages
TARGETS = {
    "count": "cnt, fitted with the model's own loss",
    "riders": "casual and registered riders, one model each; the forecast is their sum",
    "log_riders": "log(1 + riders) for casual and registered, one model each; summed back as counts",
}


def unchanged(values: np.ndarray) -> np.ndarray:
    return values


def floor_at_zero(values: np.ndarray) -> np.ndarray:
    """Rentals are never negative, whatever loss a model was fitted with."""
    return np.maximum(values, 0.0)


class RiderDemand(RegressorMixin, BaseEstimator):
    """One clone of `estimator` per rider group (casual, registered), optionally on log(1 + count);
    predicts the sum of the groups' counts, each floored at zero."""

    def __init__(self, estimator: Any = None, log_scale: bool = False) -> None:
        self.estimator, self.log_scale = estimator, log_scale

    def fit(self, features: pd.DataFrame, riders: pd.DataFrame | np.ndarray) -> RiderDemand:
        columns = np.asarray(riders, dtype="float64").T
        self.models_ = [
            clone(self.estimator).fit(features, np.log1p(group) if self.log_scale else group)
            for group in columns
        ]
        return self

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        groups = [model.predict(features) for model in self.models_]
        return np.sum([floor_at_zero(np.expm1(g) if self.log_scale else g) for g in groups], axis=0)


class SeedBag(RegressorMixin, BaseEstimator):
    """The mean of `seeds` clones of `estimator`, each with its own random_state: a blend of boosted trees
    that differ in the rows and columns they sampled, steadier than any one of them."""

    def __init__(self, estimator: Any = None, seeds: int = 1) -> None:
        self.estimator, self.seeds = estimator, seeds

    def fit(self, features: pd.DataFrame, target: np.ndarray) -> SeedBag:
        first = self.estimator.get_params()["random_state"]
        self.models_ = [
            clone(self.estimator).set_params(random_state=first + offset).fit(features, target)
            for offset in range(self.seeds)
        ]
        return self

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        return np.mean([model.predict(features) for model in self.models_], axis=0)

    @property
    def feature_importances_(self) -> np.ndarray:
        return np.mean([model.feature_importances_ for model in self.models_], axis=0)


def build_model(model: str, hyperparameters: dict[str, Any], seed: int, target: str) -> Pipeline:
    """An unfitted pipeline: HourlyFeatures, then the estimator `model` names fitted to `target`, with
    predictions >= 0."""
    if model not in ESTIMATORS:
        raise PipelineError(f"unknown model {quoted(model)}; choose one of: {', '.join(MODELS)}")
    if target not in TARGETS:
        raise PipelineError(f"unknown target {quoted(target)}; choose one of: {', '.join(TARGETS)}")
    library = {name: value for name, value in hyperparameters.items() if name != BAGGED_SEEDS}
    estimator = ESTIMATORS[model](library, seed)
    if hyperparameters.get(BAGGED_SEEDS, 1) > 1:
        estimator = SeedBag(estimator, hyperparameters[BAGGED_SEEDS])
    if target == "count":
        fitted = TransformedTargetRegressor(
            estimator, func=unchanged, inverse_func=floor_at_zero, check_inverse=False
        )
    else:
        fitted = RiderDemand(estimator, log_scale=target == "log_riders")
    return Pipeline([("features", HourlyFeatures()), ("model", fitted)])


def target_values(train: pd.DataFrame, target: str) -> pd.Series | pd.DataFrame:
    """What the estimator is fitted to: the count, or the two rider columns."""
    return train[TARGET] if target == "count" else train[list(RIDER_COLUMNS)]


def fit(train: pd.DataFrame, model: str, hyperparameters: dict[str, Any], seed: int, target: str) -> Pipeline:
    """The fitted pipeline (pure: no tracking, no files)."""
    pipeline = build_model(model, hyperparameters, seed, target)
    return pipeline.fit(model_inputs(train), target_values(train, target))


def model_digest(pipeline: Pipeline) -> str:
    """sha256 of the fitted model's state. The saved files carry timestamps; the fitted trees and
    coefficients do not, so the same inputs give the same digest."""
    return hashlib.sha256(pickle.dumps(pipeline, protocol=5)).hexdigest()


def _threads() -> int:
    """Threads for scikit-learn's forest: OMP_NUM_THREADS when set (tune gives each worker a share of the
    cores that way, and XGBoost and HistGradientBoosting follow it by themselves), else every core."""
    value = os.environ.get("OMP_NUM_THREADS", "")
    return int(value) if value.isdigit() and int(value) > 0 else -1


def _linear_model(hyperparameters: dict[str, Any]) -> Pipeline:
    numeric = [name for name in FEATURE_NAMES if name not in CATEGORICAL_FEATURES]
    encode = ColumnTransformer(
        [
            ("codes", OneHotEncoder(handle_unknown="ignore"), list(CATEGORICAL_FEATURES)),
            ("quantities", StandardScaler(), numeric),
        ]
    )
    return Pipeline([("encode", encode), ("ridge", Ridge(**hyperparameters))])


ESTIMATORS: dict[str, Callable[[dict[str, Any], int], Any]] = {
    "xgb": lambda hyperparameters, seed: XGBRegressor(**hyperparameters, random_state=seed),
    "rf": lambda hyperparameters, seed: RandomForestRegressor(
        **hyperparameters, random_state=seed, n_jobs=_threads()
    ),
    "hgb": lambda hyperparameters, seed: HistGradientBoostingRegressor(**hyperparameters, random_state=seed),
    "ridge": lambda hyperparameters, seed: _linear_model(hyperparameters),
}
MODELS = tuple(ESTIMATORS)  # config.yaml has each one's hyperparameters


def feature_importances(pipeline: Pipeline) -> pd.Series | None:
    """Impurity or gain importances for tree models that expose them; None otherwise."""
    fitted = pipeline.named_steps["model"]
    estimators = fitted.models_ if isinstance(fitted, RiderDemand) else [fitted.regressor_]
    found = [getattr(estimator, "feature_importances_", None) for estimator in estimators]
    if any(importances is None for importances in found):
        return None
    importances = np.mean(found, axis=0)
    return pd.Series(importances, index=list(FEATURE_NAMES)).sort_values(ascending=False)
