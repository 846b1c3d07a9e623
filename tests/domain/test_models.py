"""Models: every choice fits raw records and predicts non-negative counts; the same inputs, the same model."""

from __future__ import annotations

import numpy as np
import pytest

from demand.errors import PipelineError
from demand.features import derive_features
from demand.models import MODELS, build_model, feature_importances, fit, model_digest
from demand.schema import TARGET, model_inputs, parse_hourly
from plumbing import settings
from tests.synthetic import hourly_table

# What the default (time) split fits, as config.yaml ships it: the tests fit what a user's model fits.
SHIPPED = settings.split_options("time")["target"]

SMALL = {
    "xgb": {"n_estimators": 20, "max_depth": 3},
    "rf": {"n_estimators": 10, "min_samples_leaf": 3},
    "hgb": {"max_iter": 20},
    "ridge": {"alpha": 1.0},
}


@pytest.fixture(scope="module")
def table():
    return parse_hourly(hourly_table(days=21).astype(str), "hour.csv")


@pytest.mark.parametrize("model", MODELS)
def test_every_model_fits_raw_records_and_predicts_counts(table, model: str) -> None:
    pipeline = fit(table, model, SMALL[model], seed=0, target=SHIPPED)
    predicted = pipeline.predict(model_inputs(table))
    assert predicted.shape == (len(table),)
    assert (predicted >= 0).all()
    assert np.corrcoef(predicted, table[TARGET])[0, 1] > 0.8, "the model should learn the daily profile"


def test_predictions_are_floored_at_zero_whatever_the_loss(table) -> None:
    negative_target = table.assign(cnt=table["cnt"] - 200)  # a squared-error fit now predicts below zero
    pipeline = fit(negative_target, "hgb", {"loss": "squared_error", "max_iter": 20}, 0, "count")
    predicted = pipeline.predict(model_inputs(table))
    assert predicted.min() == 0.0
    assert (pipeline.named_steps["model"].regressor_.predict(derive_features(model_inputs(table))) < 0).any()


def test_same_inputs_give_the_same_model(table) -> None:
    first, second = (fit(table, "xgb", SMALL["xgb"], seed=7, target=SHIPPED) for _ in range(2))
    np.testing.assert_array_equal(first.predict(model_inputs(table)), second.predict(model_inputs(table)))
    assert model_digest(first) == model_digest(second)
    assert model_digest(fit(table, "xgb", SMALL["xgb"], seed=8, target=SHIPPED)) != model_digest(first)


def test_tree_models_expose_importances(table) -> None:
    pipeline = fit(table, "rf", SMALL["rf"], seed=0, target=SHIPPED)
    importances = feature_importances(pipeline)
    assert importances is not None and importances.index[0] in (
        "hr",
        "hour_of_workday",
        "hour_sin",
        "hour_cos",
    )
    assert feature_importances(fit(table, "ridge", SMALL["ridge"], seed=0, target=SHIPPED)) is None


def test_model_inputs_are_the_raw_columns_with_text_dates(table) -> None:
    records = model_inputs(table)
    assert "cnt" not in records and "casual" not in records and "registered" not in records
    assert records["dteday"].iloc[0] == "2012-06-01"


def test_unknown_model_lists_choices() -> None:
    with pytest.raises(PipelineError, match=r"unknown model 'lasso'; choose one of: xgb, rf, hgb, ridge"):
        build_model("lasso", {}, 0, SHIPPED)


@pytest.mark.parametrize("target", ["riders", "log_riders"])
def test_rider_targets_predict_the_sum_of_casual_and_registered(table, target: str) -> None:
    pipeline = fit(table, "xgb", SMALL["xgb"], seed=0, target=target)
    inputs = model_inputs(table)
    groups = pipeline.named_steps["model"].models_
    features = pipeline.named_steps["features"].transform(inputs)
    parts = [group.predict(features) for group in groups]
    if target == "log_riders":
        parts = [np.expm1(part) for part in parts]
    expected = np.maximum(parts[0], 0) + np.maximum(parts[1], 0)
    assert len(groups) == 2
    np.testing.assert_allclose(pipeline.predict(inputs), expected)
    assert np.corrcoef(pipeline.predict(inputs), table[TARGET])[0, 1] > 0.8
    assert feature_importances(pipeline) is not None


def test_riders_are_targets_never_features(table) -> None:
    """Changing casual, registered, cnt and instant changes nothing a fitted model predicts."""
    pipeline = fit(table, "xgb", SMALL["xgb"], seed=0, target="riders")
    scrambled = table.assign(casual=table["casual"][::-1].to_numpy(), registered=0, cnt=7, instant=1)
    np.testing.assert_array_equal(pipeline.predict(scrambled), pipeline.predict(model_inputs(table)))


def test_an_unknown_target_is_one_line(table) -> None:
    with pytest.raises(PipelineError, match=r"unknown target 'counts'; choose one of: count, riders"):
        build_model("xgb", SMALL["xgb"], 0, target="counts")
