"""tune's and best_params.yaml's parameters: each bad value is one line naming the parameter."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from demand.errors import PipelineError
from plumbing import settings
from plumbing.hyperparameters import parse_hyperparameters, read_hyperparameters_file
from plumbing.plan import make_plan
from plumbing.tuning.study import parse_storage, parse_study_name


def write(tmp_path: Path, content: object) -> str:
    path = tmp_path / "best_params.yaml"
    path.write_text(content if isinstance(content, str) else yaml.safe_dump(content))
    return str(path)


def test_a_best_params_file_replaces_config_values_and_minus_p_wins(tmp_path: Path) -> None:
    path = write(tmp_path, {"model": "xgb", "hyperparameters": {"max_depth": 6, "learning_rate": 0.05}})
    plan = make_plan("data", "time", "92", "xgb", {"max_depth": "7"}, hyperparameters=path)
    assert plan.hyperparameters == settings.model_defaults("xgb", "time") | {
        "max_depth": 7,
        "learning_rate": 0.05,
    }


def test_the_kaggle_split_fits_its_own_objective() -> None:
    assert parse_hyperparameters("xgb", {}, "kaggle")["objective"] == "reg:squarederror"
    assert parse_hyperparameters("xgb", {}, "time")["objective"] == "count:poisson"
    assert make_plan("data", "kaggle", "92", "xgb", {}).target == "log_riders"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[1, 2", r"cannot be read \("),
        ({"model": "xgb"}, r"holds no `hyperparameters:` mapping"),
        (
            {"model": "rf", "hyperparameters": {"max_depth": 6}},
            r"holds rf hyperparameters; pass -P model=rf",
        ),
        ({"hyperparameters": {"depth": 6}}, r"names unknown hyperparameter\(s\) depth for model xgb"),
        ({"hyperparameters": {"max_depth": 0}}, r"hyperparameter max_depth='0' must be >= 1"),
        ({"hyperparameters": {"bagged_seeds": 2.5}}, r"bagged_seeds='2.5' must be a whole number"),
        ({"hyperparameters": {"max_depth": 4.5}}, r"max_depth='4.5' must be a whole number"),
        ({"split": "kaggle", "hyperparameters": {}}, r"was tuned under split=kaggle.*pass -P split=kaggle"),
    ],
)
def test_a_bad_best_params_file_is_one_line(tmp_path: Path, content: object, message: str) -> None:
    with pytest.raises(PipelineError, match=message):
        read_hyperparameters_file(write(tmp_path, content), "xgb", "time")


ALIAS_BOMB = "\n".join(
    ["a: &a [x, x, x, x, x, x, x, x, x]"]
    + [f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]" for i in range(8)]
    + ["hyperparameters: {max_depth: *i}"]
)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (ALIAS_BOMB, r"cannot be read \(it uses YAML aliases \(\*name\); write each value out\)"),
        ("hyperparameters: {max_depth: &d 4, learning_rate: *d}", r"it uses YAML aliases"),
        ("#" * (65 * 1024), r"cannot be read \(it is larger than 64 KiB"),
        (
            "hyperparameters: !!python/object/apply:os.system [echo hi]",
            r"cannot be read \(could not determine",
        ),
    ],
)
def test_a_hostile_best_params_file_is_refused_before_it_is_expanded(
    tmp_path: Path, content: str, message: str
) -> None:
    with pytest.raises(PipelineError, match=message):
        read_hyperparameters_file(write(tmp_path, content), "xgb", "time")


def test_a_missing_best_params_file_says_what_to_pass(tmp_path: Path) -> None:
    with pytest.raises(
        PipelineError, match=r"pass a YAML file or a URI such as runs:/<tune run id>/best_params"
    ):
        read_hyperparameters_file(str(tmp_path / "nope.yaml"), "xgb", "time")


@pytest.mark.parametrize(
    ("storage", "message"),
    [
        ("optuna.db", r"is not a database URL; pass e.g. -P storage=postgresql://"),
        ("redis://localhost:6379", r"is not a database URL"),
        ("postgresql://optuna:s3cret@db:5432/optuna", r"holds a password, and mlflow run logs parameters"),
        ("postgresql://optuna@db/optuna?password=s3cret", r"holds a password"),
        ("postgresql://optuna@db:abc/optuna", r"is not a valid URL"),
        ("postgresql://[::1", r"is not a valid URL"),
        ("sqlite://", r"is a database in memory, which each worker would have to itself"),
        ("sqlite:///:memory:", r"is a database in memory"),
    ],
)
def test_a_bad_storage_is_one_line_that_never_repeats_a_password(storage: str, message: str) -> None:
    with pytest.raises(PipelineError, match=message) as raised:
        parse_storage(storage)
    assert "s3cret" not in str(raised.value)


def test_good_storages_and_study_names_pass() -> None:
    for storage in (
        "sqlite:////tmp/optuna.db",
        "postgresql://optuna@db:5432/optuna",
        "mysql+pymysql://u@h/d",
    ):
        assert parse_storage(storage) == storage
    assert parse_study_name("xgb-2026.11:team") == "xgb-2026.11:team"


@pytest.mark.parametrize("name", ["", "a b", "x" * 101, "../up", "name\nnext"])
def test_a_bad_study_name_is_one_line(name: str) -> None:
    with pytest.raises(PipelineError, match=r"parameter study=.* is not a usable study name"):
        parse_study_name(name)


def test_file_values_are_typed_like_config(tmp_path: Path) -> None:
    values = {"max_depth": 6, "learning_rate": 1, "objective": "reg:squarederror"}
    read = read_hyperparameters_file(write(tmp_path, {"hyperparameters": values}), "xgb", "time")
    assert read == {"max_depth": 6, "learning_rate": 1.0, "objective": "reg:squarederror"}
    assert isinstance(read["max_depth"], int) and isinstance(read["learning_rate"], float)


def test_a_gamma_loss_is_refused_where_riders_can_be_zero() -> None:
    with pytest.raises(PipelineError, match=r"loss='gamma' needs counts above zero, but split=time"):
        parse_hyperparameters("hgb", {"loss": "gamma"}, "time")
