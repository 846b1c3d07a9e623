"""Models: every choice fits raw records, predicts non-negative counts, and rejects bad settings clearly."""

from __future__ import annotations

import numpy as np
import pytest

from steps import settings
from steps.errors import PipelineError
from steps.features import derive_features
from steps.models import build_model, feature_importances, model_inputs
from steps.params import MODELS, parse_overrides, resolve_hyperparameters, validate_training
from steps.schema import TARGET, parse_hourly
from steps.serving import load_pipeline, save_pipeline
from steps.train import fit
from tests.synthetic import hourly_table

SMALL = {"xgb": {"n_estimators": "20"}, "rf": {"n_estimators": "10"}, "hgb": {"max_iter": "20"}, "ridge": {}}


@pytest.fixture(scope="module")
def table():
    return parse_hourly(hourly_table(days=21).astype(str), "hour.csv")


def test_config_has_hyperparameters_for_every_model() -> None:
    assert set(settings.config()["models"]) == set(MODELS)


@pytest.mark.parametrize("model", MODELS)
def test_every_model_fits_raw_records_and_predicts_counts(table, model: str, tmp_path) -> None:
    hyperparameters = validate_training(model, SMALL[model])
    pipeline = fit(table, model, hyperparameters, seed=0)
    predicted = pipeline.predict(model_inputs(table))
    assert predicted.shape == (len(table),)
    assert (predicted >= 0).all()
    assert np.corrcoef(predicted, table[TARGET])[0, 1] > 0.8, "the model should learn the daily profile"
    saved = tmp_path / "model.skops"
    save_pipeline(pipeline, saved)  # and loads back with the allow-list in steps/serving.py, no pickle
    np.testing.assert_allclose(load_pipeline(saved).predict(model_inputs(table)), predicted, rtol=1e-12)


def test_predictions_are_floored_at_zero_whatever_the_loss(table) -> None:
    negative_target = table.assign(cnt=table["cnt"] - 200)  # a squared-error fit now predicts below zero
    pipeline = fit(
        negative_target, "hgb", validate_training("hgb", {"loss": "squared_error", "max_iter": "20"}), 0
    )
    predicted = pipeline.predict(model_inputs(table))
    assert predicted.min() == 0.0
    assert (pipeline.named_steps["model"].regressor_.predict(derive_features(model_inputs(table))) < 0).any()


def test_same_inputs_give_the_same_model(table) -> None:
    hyperparameters = validate_training("xgb", SMALL["xgb"])
    first = fit(table, "xgb", hyperparameters, seed=7).predict(model_inputs(table))
    second = fit(table, "xgb", hyperparameters, seed=7).predict(model_inputs(table))
    np.testing.assert_array_equal(first, second)


def test_tree_models_expose_importances(table) -> None:
    pipeline = fit(table, "rf", validate_training("rf", SMALL["rf"]), seed=0)
    importances = feature_importances(pipeline)
    assert importances is not None and importances.index[0] in (
        "hr",
        "hour_of_workday",
        "hour_sin",
        "hour_cos",
    )
    assert feature_importances(fit(table, "ridge", validate_training("ridge", {}), seed=0)) is None


def test_model_inputs_are_the_raw_columns_with_text_dates(table) -> None:
    records = model_inputs(table)
    assert "cnt" not in records and "casual" not in records and "registered" not in records
    assert records["dteday"].iloc[0] == "2012-06-01"


def test_unknown_model_lists_choices() -> None:
    with pytest.raises(PipelineError, match=r"unknown model 'lasso'; choose one of: xgb, rf, hgb, ridge"):
        validate_training("lasso", {})
    with pytest.raises(PipelineError, match="unknown model"):
        build_model("lasso", {}, 0)


def test_overrides_are_typed_from_config_defaults() -> None:
    defaults = {"n_estimators": 100, "learning_rate": 0.1, "objective": "reg:squarederror", "max_depth": None}
    overrides = {"n_estimators": "300", "learning_rate": "1", "objective": "count:poisson", "max_depth": "8"}
    resolved = resolve_hyperparameters(defaults, overrides, "xgb")
    assert resolved == {
        "n_estimators": 300,
        "learning_rate": 1.0,
        "objective": "count:poisson",
        "max_depth": 8,
    }
    assert isinstance(resolved["learning_rate"], float)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"max_depth": "deep"},
            r"hyperparameter max_depth='deep' is not a number \(config.yaml default: \d+\)",
        ),
        ({"max_depth": "6.5"}, r"max_depth='6.5' must be a whole number"),
        ({"max_depth": "["}, r"max_depth='\[' is not a number"),
        ({"learning_rate": "nan"}, r"learning_rate='nan' is not a number"),
        ({"depth": "6"}, r"unknown hyperparameter\(s\) depth for model xgb; known: objective, n_estimators"),
    ],
)
def test_bad_overrides(overrides: dict[str, str], message: str) -> None:
    with pytest.raises(PipelineError, match=message):
        validate_training("xgb", overrides)


def test_parse_overrides_as_mlflow_passes_them() -> None:
    assert parse_overrides(["--max_depth", "8", "--learning_rate=0.1"]) == {
        "max_depth": "8",
        "learning_rate": "0.1",
    }
    with pytest.raises(PipelineError, match="unexpected argument 'stray'"):
        parse_overrides(["stray"])
    with pytest.raises(PipelineError, match="hyperparameter max_depth has no value"):
        parse_overrides(["--max_depth"])
