"""The models `train` can fit: each is one scikit-learn pipeline from raw hourly records to counts.

Every pipeline starts with HourlyFeatures, so whoever calls `predict` (evaluate, a batch job, the REST
server) passes raw records and gets the same features. Every model predicts non-negative counts.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from xgboost import XGBRegressor

from steps.errors import PipelineError
from steps.features import CATEGORICAL_FEATURES, FEATURE_NAMES, HourlyFeatures
from steps.params import MODELS
from steps.schema import MODEL_INPUT_COLUMNS

DATE_FORMAT = "%Y-%m-%d"


def model_inputs(table: pd.DataFrame) -> pd.DataFrame:
    """Raw records as the model takes them: the hour.csv columns minus the counts, dates as text."""
    records = table.loc[:, list(MODEL_INPUT_COLUMNS)].copy()
    records["dteday"] = pd.to_datetime(records["dteday"]).dt.strftime(DATE_FORMAT)
    return records


def unchanged(values: np.ndarray) -> np.ndarray:
    return values


def floor_at_zero(values: np.ndarray) -> np.ndarray:
    """Rentals are never negative, whatever loss a model was fitted with."""
    return np.maximum(values, 0.0)


def build_model(model: str, hyperparameters: dict[str, Any], seed: int) -> Pipeline:
    """An unfitted pipeline: HourlyFeatures, then the estimator `model` names, with predictions >= 0."""
    if model == "xgb":
        estimator = XGBRegressor(**hyperparameters, random_state=seed)
    elif model == "rf":
        estimator = RandomForestRegressor(**hyperparameters, random_state=seed, n_jobs=-1)
    elif model == "hgb":
        estimator = HistGradientBoostingRegressor(**hyperparameters, random_state=seed)
    elif model == "ridge":
        estimator = _linear_model(hyperparameters)
    else:
        raise PipelineError(f"unknown model {model!r}; choose one of: {', '.join(MODELS)}")
    counts = TransformedTargetRegressor(
        estimator, func=unchanged, inverse_func=floor_at_zero, check_inverse=False
    )
    return Pipeline([("features", HourlyFeatures()), ("model", counts)])


def _linear_model(hyperparameters: dict[str, Any]) -> Pipeline:
    numeric = [name for name in FEATURE_NAMES if name not in CATEGORICAL_FEATURES]
    encode = ColumnTransformer(
        [
            ("codes", OneHotEncoder(handle_unknown="ignore"), list(CATEGORICAL_FEATURES)),
            ("quantities", StandardScaler(), numeric),
        ]
    )
    return Pipeline([("encode", encode), ("ridge", Ridge(**hyperparameters))])


def feature_importances(pipeline: Pipeline) -> pd.Series | None:
    """Impurity or gain importances for tree models that expose them; None otherwise."""
    importances = getattr(pipeline.named_steps["model"].regressor_, "feature_importances_", None)
    if importances is None:
        return None
    return pd.Series(importances, index=list(FEATURE_NAMES)).sort_values(ascending=False)
