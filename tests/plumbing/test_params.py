"""Parameter checks before any work: each bad value is one line naming the parameter."""

from __future__ import annotations

import pytest

from demand.errors import PipelineError
from demand.models import MODELS
from plumbing import settings
from plumbing.hyperparameters import parse_hyperparameters, parse_overrides, resolve_hyperparameters
from plumbing.params import parse_split
from plumbing.plan import make_plan


def test_config_has_hyperparameters_for_every_model() -> None:
    assert set(settings.config()["models"]) == set(MODELS)


def test_each_caller_gets_its_own_copy_of_the_declared_defaults() -> None:
    declared = settings.parameter_defaults("main")
    declared["model"] = "changed by one caller"
    assert settings.parameter_defaults("main")["model"] == "xgb", "the next caller sees what MLproject says"


def test_unknown_model_lists_the_configured_choices() -> None:
    with pytest.raises(PipelineError, match=r"unknown model 'lasso'; choose one of: xgb, rf, hgb, ridge"):
        parse_hyperparameters("lasso", {}, "time")


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
        parse_hyperparameters("xgb", overrides, "time")


def test_parse_overrides_as_mlflow_passes_them() -> None:
    assert parse_overrides(["--max_depth", "8", "--learning_rate=0.1"]) == {
        "max_depth": "8",
        "learning_rate": "0.1",
    }
    with pytest.raises(PipelineError, match="unexpected argument 'stray'"):
        parse_overrides(["stray"])
    with pytest.raises(PipelineError, match="hyperparameter max_depth has no value"):
        parse_overrides(["--max_depth"])


@pytest.mark.parametrize(
    ("split", "days", "message"),
    [
        ("random", "92", r"unknown split 'random'; choose one of: time, kaggle"),
        ("time", "ninety", r"parameter test_days='ninety' is not a whole number"),
        ("time", "0", r"parameter test_days=0 must be at least 1"),
    ],
)
def test_bad_parameters(split: str, days: str, message: str) -> None:
    with pytest.raises(PipelineError, match=message):
        parse_split(split, days)


@pytest.mark.parametrize(
    "check",
    [
        lambda huge: parse_overrides([f"--{huge}"]),
        lambda huge: parse_overrides([huge]),
        lambda huge: parse_hyperparameters("xgb", {huge: "1"}, "time"),
        lambda huge: parse_hyperparameters("xgb", {"max_depth": huge}, "time"),
        lambda huge: parse_hyperparameters(huge, {}, "time"),
        lambda huge: parse_split("time", huge),
    ],
    ids=["name without value", "stray argument", "unknown name", "bad value", "model", "test_days"],
)
def test_a_message_repeats_only_a_short_prefix_of_a_parameter(check) -> None:
    with pytest.raises(PipelineError) as raised:
        check("z" * 50_000 + "\n$(rm -rf /)")
    message = str(raised.value)
    assert len(message) < 400 and "\n" not in message, message


@pytest.mark.parametrize("model", MODELS)
def test_config_defaults_are_within_their_ranges(model: str) -> None:
    parse_hyperparameters(model, {}, "time")


def test_an_override_out_of_range_is_refused_before_any_work() -> None:
    with pytest.raises(PipelineError, match=r"hyperparameter learning_rate='-1.0' must be > 0 and <= 1"):
        parse_hyperparameters("xgb", {"learning_rate": "-1"}, "time")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("kaggle", "5"), r"test_days=5 applies to split=time only; split=kaggle fixes its own test days"),
        (("time", "7", ""), r"parameter model_name='' is not a usable registered model name"),
    ],
    ids=["test_days under the kaggle split", "an empty model_name"],
)
def test_what_would_be_ignored_or_replaced_silently_is_refused(
    arguments: tuple[str, ...], message: str
) -> None:
    split, test_days, *name = arguments
    with pytest.raises(PipelineError, match=message):
        make_plan("hour.csv", split, test_days, "ridge", {}, **({"model_name": name[0]} if name else {}))
    assert make_plan("hour.csv", "kaggle", "92", "ridge", {}).split == "kaggle", "the default is no choice"
