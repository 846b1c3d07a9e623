"""Tuning's pure parts: folds inside the training rows only, the running score, and the search space."""

from __future__ import annotations

import numpy as np
import optuna
import pandas as pd
import pytest

from demand.csv_text import read_csv_text
from demand.errors import PipelineError
from demand.schema import parse_hourly
from demand.split import SPLITS, split_table
from demand.tuning import check_search_space, fold_scores, suggest, time_folds
from plumbing import settings

FAST = {"model": "xgb", "seed": 0, "target": "riders", "score": "rmse"}
FAST_XGB = {"n_estimators": 30, "max_depth": 3, "learning_rate": 0.2}


@pytest.fixture(scope="module")
def table(real_data) -> pd.DataFrame:
    path = real_data / "hour.csv" if real_data.is_dir() else real_data
    return parse_hourly(read_csv_text(path.read_bytes(), str(path)), str(path))


@pytest.mark.parametrize("split", SPLITS)
def test_folds_fit_on_the_past_and_never_touch_the_test_window(table, split: str) -> None:
    train, test = split_table(table, split, 92)
    folds = time_folds(train, folds=4, fold_days=42)
    test_days = set(test["dteday"])
    previous_end = None
    for fit_rows, score_rows in folds:
        fit_days, score_days = train["dteday"].iloc[fit_rows], train["dteday"].iloc[score_rows]
        assert fit_days.max() < score_days.min(), "a fold fits on the past only"
        assert score_days.nunique() == 42
        assert not (set(fit_days) | set(score_days)) & test_days
        assert previous_end is None or score_days.min() > previous_end, "folds are ordered, not overlapping"
        previous_end = score_days.max()
    assert previous_end == train["dteday"].max(), "the last fold ends where the training rows end"


@pytest.mark.parametrize("split", SPLITS)
def test_scores_do_not_change_when_the_test_window_does(table, split: str) -> None:
    """Scramble every count in the test window: the cross-validation scores are exactly the same."""
    _, test = split_table(table, split, 92)
    in_test = table["dteday"].isin(set(test["dteday"]))
    scrambled = table.copy()
    for column in ("casual", "registered"):
        scrambled.loc[in_test, column] = np.random.default_rng(0).integers(0, 5000, in_test.sum())
    scrambled["cnt"] = scrambled["casual"] + scrambled["registered"]
    scores = []
    for frame in (table, scrambled):
        train, _ = split_table(frame, split, 92)
        folds = time_folds(train, folds=2, fold_days=30)
        scores.append(list(fold_scores(train, folds, hyperparameters=FAST_XGB, **FAST)))
    assert scores[0] == scores[1]
    assert len(scores[0]) == 2 and all(np.isfinite(scores[0]))


def test_the_running_score_is_the_mean_of_the_folds_so_far(table) -> None:
    train, _ = split_table(table, "time", 92)
    folds = time_folds(train, folds=3, fold_days=20)
    running = list(fold_scores(train, folds, hyperparameters=FAST_XGB, **FAST))
    single = [next(fold_scores(train, [fold], hyperparameters=FAST_XGB, **FAST)) for fold in folds]
    assert running == pytest.approx([np.mean(single[: k + 1]) for k in range(3)])


def test_too_few_days_for_the_folds_is_one_line(table) -> None:
    train = table[table["dteday"] < "2011-03-01"]
    with pytest.raises(
        PipelineError, match=r"span 59 days, too few for 4 folds of 42 days; lower tune.folds"
    ):
        time_folds(train, folds=4, fold_days=42)


@pytest.mark.parametrize("model", list(settings.config()["tune"]["search"]))
def test_each_search_space_in_config_is_valid_and_sampled_with_its_types(model: str) -> None:
    space = settings.config()["tune"]["search"][model]
    check_search_space(model, space, settings.config()["models"][model])
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(20):
        values = suggest(study.ask(), space)
        assert set(values) == set(space)
        for name, value in values.items():
            low, high = space[name]["low"], space[name]["high"]
            assert low <= value <= high
            assert isinstance(value, int) == isinstance(low, int), name


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({"max_depth": {"low": 0, "high": 5}}, r"tune.search.xgb: hyperparameter max_depth='0' must be >= 1"),
        ({"learning_rate": {"low": 0.1, "high": 2.0}}, r"learning_rate='2.0' must be > 0 and <= 1"),
        ({"max_depth": {"low": 6, "high": 3}}, r"low must be below high"),
        ({"depth": {"low": 1, "high": 3}}, r"unknown hyperparameter depth"),
        ({"objective": {"choices": ["count:poisson", "nope"]}}, r"objective='nope' must be one of"),
    ],
)
def test_a_bad_search_space_is_one_line(space: dict, message: str) -> None:
    with pytest.raises(PipelineError, match=message):
        check_search_space("xgb", space, settings.config()["models"]["xgb"])
