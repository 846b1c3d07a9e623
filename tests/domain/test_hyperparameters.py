"""Hyperparameter ranges: a value outside what the model can take is one line naming the range."""

from __future__ import annotations

import pytest

from demand.errors import PipelineError
from demand.hyperparameters import MODEL_SIZE, RULES, check_hyperparameters
from demand.models import MODELS


def test_every_model_has_rules() -> None:
    assert set(RULES) == set(MODELS)


@pytest.mark.parametrize(
    ("model", "values", "message"),
    [
        ("xgb", {"learning_rate": -1.0}, r"learning_rate='-1.0' must be > 0 and <= 1"),
        ("xgb", {"learning_rate": 0.0}, r"learning_rate='0.0' must be > 0"),
        ("xgb", {"n_estimators": -5}, r"n_estimators='-5' must be >= 1 and <= 20000"),
        ("xgb", {"n_estimators": 10**9}, r"n_estimators='1000000000' must be >= 1 and <= 20000"),
        ("xgb", {"max_depth": 0}, r"max_depth='0' must be >= 1"),
        ("xgb", {"subsample": 1.5}, r"subsample='1.5' must be > 0 and <= 1"),
        ("xgb", {"objective": "reg:nonsense"}, r"objective='reg:nonsense' must be one of: count:poisson"),
        ("hgb", {"loss": "quantile"}, r"loss='quantile' must be one of: squared_error"),
        ("hgb", {"max_leaf_nodes": 1}, r"max_leaf_nodes='1' must be >= 2"),
        ("rf", {"max_features": 0.0}, r"max_features='0.0' must be > 0"),
        ("ridge", {"alpha": -0.1}, r"alpha='-0.1' must be >= 0"),
        ("ridge", {"alpha": True}, r"alpha='True' must be a number"),
    ],
)
def test_a_value_out_of_range_is_one_line(model: str, values: dict, message: str) -> None:
    with pytest.raises(PipelineError, match=message):
        check_hyperparameters(model, values)


def test_values_at_the_bounds_pass() -> None:
    check_hyperparameters(
        "xgb", {"learning_rate": 1.0, "n_estimators": 1, "max_depth": 20, "min_child_weight": 0}
    )
    check_hyperparameters("ridge", {"alpha": 0.0})


@pytest.mark.parametrize(("model", "size"), sorted(MODEL_SIZE.items()))
def test_bagged_models_together_are_bounded_as_one_model_is(model: str, size: str) -> None:
    most = int(RULES[model][size].high)
    check_hyperparameters(model, {size: most // 10, "bagged_seeds": 10})
    check_hyperparameters(model, {size: most, "bagged_seeds": 1})
    with pytest.raises(PipelineError, match=rf"{size}={most} and bagged_seeds=50 train {most * 50:,} trees"):
        check_hyperparameters(model, {size: most, "bagged_seeds": 50})
    with pytest.raises(PipelineError, match=rf"more than {most:,} \(model {model}\); lower one of them"):
        check_hyperparameters(model, {size: most // 10 + 1, "bagged_seeds": 10})


def test_every_bagged_model_has_a_size() -> None:
    assert {model for model, rules in RULES.items() if "bagged_seeds" in rules} == set(MODEL_SIZE)
