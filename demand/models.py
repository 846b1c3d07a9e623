"""The models `train` can fit: each is one scikit-learn pipeline from raw hourly records to counts.

Every pipeline starts with HourlyFeatures, so whoever calls `predict` (evaluate, a batch job, the REST
server) passes raw records and gets the same features. Every model predicts non-negative counts.
"""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from xgboost import XGBRegressor

from demand.errors import PipelineError, quoted
from demand.features import CATEGORICAL_FEATURES, FEATURE_NAMES, HourlyFeatures
from demand.schema import TARGET, model_inputs


def unchanged(values: np.ndarray) -> np.ndarray:
    return values


def floor_at_zero(values: np.ndarray) -> np.ndarray:
    """Rentals are never negative, whatever loss a model was fitted with."""
    return np.maximum(values, 0.0)


def build_model(model: str, hyperparameters: dict[str, Any], seed: int) -> Pipeline:
    """An unfitted pipeline: HourlyFeatures, then the estimator `model` names, with predictions >= 0."""
    if model not in ESTIMATORS:
        raise PipelineError(f"unknown model {quoted(model)}; choose one of: {', '.join(MODELS)}")
    counts = TransformedTargetRegressor(
        ESTIMATORS[model](hyperparameters, seed),
        func=unchanged,
        inverse_func=floor_at_zero,
        check_inverse=False,
    )
    return Pipeline([("features", HourlyFeatures()), ("model", counts)])


def fit(train: pd.DataFrame, model: str, hyperparameters: dict[str, Any], seed: int) -> Pipeline:
    """The fitted pipeline (pure: no tracking, no files)."""
    return build_model(model, hyperparameters, seed).fit(model_inputs(train), train[TARGET])


def model_digest(pipeline: Pipeline) -> str:
    """sha256 of the fitted model's state. The saved files carry timestamps; the fitted trees and
    coefficients do not, so the same inputs give the same digest."""
    return hashlib.sha256(pickle.dumps(pipeline, protocol=5)).hexdigest()


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
        **hyperparameters, random_state=seed, n_jobs=-1
    ),
    "hgb": lambda hyperparameters, seed: HistGradientBoostingRegressor(**hyperparameters, random_state=seed),
    "ridge": lambda hyperparameters, seed: _linear_model(hyperparameters),
}
MODELS = tuple(ESTIMATORS)  # config.yaml has each one's hyperparameters


def feature_importances(pipeline: Pipeline) -> pd.Series | None:
    """Impurity or gain importances for tree models that expose them; None otherwise."""
    importances = getattr(pipeline.named_steps["model"].regressor_, "feature_importances_", None)
    if importances is None:
        return None
    return pd.Series(importances, index=list(FEATURE_NAMES)).sort_values(ascending=False)
