"""The registry's rules on small arrays: the gate and the paired bootstrap decision."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from demand.errors import PipelineError
from demand.metrics import BASELINES
from demand.promotion import CHALLENGER, CHAMPION, decide, gate_failures, paired_bootstrap, unseen_by_champion
from demand.split import day_ranges, in_day_ranges
from plumbing import settings

RULE = settings.config()["registry"]["promotion"]
GATE = settings.config()["registry"]["gate"]
DAYS = np.repeat(np.arange(60), 24)
ACTUAL = np.random.default_rng(0).poisson(200, size=DAYS.size).astype(float)


def compare(candidate_noise: float, champion_noise: float, seed: int = 1):
    rng = np.random.default_rng(seed)
    candidate = ACTUAL + rng.normal(0, candidate_noise, ACTUAL.size)
    champion = ACTUAL + rng.normal(0, champion_noise, ACTUAL.size)
    return paired_bootstrap(DAYS, ACTUAL, candidate, champion, samples=2000, seed=0)


def test_a_clearly_better_model_is_promoted() -> None:
    comparison = compare(candidate_noise=40, champion_noise=60)
    assert comparison.improvement == pytest.approx(20, abs=2)
    assert comparison.p_value == 0.0
    assert comparison.interval[0] > 0
    assert decide(comparison, RULE)[0] == CHAMPION


def test_a_worse_model_is_the_challenger() -> None:
    comparison = compare(candidate_noise=60, champion_noise=40)
    assert comparison.improvement < 0
    assert decide(comparison, RULE) == (CHALLENGER, f"not better: {comparison.describe()}")


def test_an_improvement_within_the_noise_is_the_challenger() -> None:
    errors = np.random.default_rng(2).normal(0, 50, ACTUAL.size)
    # Much better on even days, worse on odd days: a bit better overall, but it depends on the days drawn.
    candidate = ACTUAL + errors * np.where(DAYS % 2 == 0, 0.5, 1.3)
    comparison = paired_bootstrap(DAYS, ACTUAL, candidate, ACTUAL + errors, samples=2000, seed=0)
    assert comparison.improvement > 0
    assert comparison.interval[0] < 0 < comparison.interval[1]
    assert comparison.p_value > 1 - RULE["confidence"]
    alias, why = decide(comparison, RULE)
    assert (alias, why.split(":")[0]) == (CHALLENGER, "better, but not significantly")


def test_a_consistent_but_negligible_improvement_is_the_challenger() -> None:
    rng = np.random.default_rng(5)
    champion = ACTUAL + rng.normal(0, 50, ACTUAL.size)
    candidate = ACTUAL + (champion - ACTUAL) * 0.998  # the same errors, 0.2% smaller everywhere
    comparison = paired_bootstrap(DAYS, ACTUAL, candidate, champion, samples=2000, seed=0)
    assert comparison.p_value == 0.0
    alias, why = decide(comparison, RULE)
    assert (alias, why.split(":")[0]) == (
        CHALLENGER,
        f"better, but by less than {0.01 * comparison.champion_rmse:.2f}",
    )


def test_the_first_model_is_champion() -> None:
    assert decide(None, RULE)[0] == CHAMPION


def test_the_bootstrap_resamples_days_not_rows() -> None:
    comparison = compare(40, 60)
    assert comparison.days == 60
    assert comparison == compare(40, 60), "the same seed gives the same decision"


def test_the_gate_names_every_failed_criterion() -> None:
    passing = {"rmse": 50.0} | {f"skill_vs_{name}": 0.5 for name in BASELINES}
    assert gate_failures(passing, GATE, BASELINES) == []
    failing = {"rmse": 150.0, f"skill_vs_{BASELINES[0]}": 0.5, f"skill_vs_{BASELINES[1]}": 0.02}
    failures = gate_failures(failing, GATE, BASELINES)
    assert failures == [
        f"RMSE 150.00 is above the ceiling {GATE['max_rmse']:g}",
        f"skill vs {BASELINES[1]} 2.0% is below the required {GATE['min_skill_vs_baselines']:.0%}",
    ]
    assert gate_failures(dict.fromkeys(failing, 0.5) | {"rmse": float("nan")}, GATE, BASELINES)


def test_only_test_days_the_champion_never_trained_on_are_compared() -> None:
    test_days = pd.Series(pd.date_range("2012-12-01", periods=31, freq="D").repeat(24))
    trained_on = day_ranges(pd.Series(pd.date_range("2012-01-01", "2012-12-10", freq="D")))
    unseen, why = unseen_by_champion(test_days, trained_on, "3", min_days=14)
    assert (
        why == ""
        and test_days[unseen].nunique() == 21
        and test_days[unseen].min() == pd.Timestamp("2012-12-11")
    )
    unseen, why = unseen_by_champion(test_days, trained_on, "3", min_days=22)
    assert unseen is None
    assert why == (
        "cannot be compared: champion version 3 trained on 10 of the 31 test days, which leaves 21 "
        "(at least 22 needed); the champion stays"
    )
    unseen, why = unseen_by_champion(test_days.head(48), "2011-01-01..2011-12-31", "3", min_days=14)
    assert unseen is not None and unseen.all(), "no overlap: a short test window is compared whole"
    assert unseen_by_champion(test_days, None, "3", 14)[1].startswith(
        "cannot be compared: champion version 3 does not"
    )


def test_day_ranges_round_trip() -> None:
    days = pd.Series(pd.to_datetime(["2011-01-03", "2011-01-01", "2011-01-02", "2011-01-02", "2011-02-01"]))
    assert day_ranges(days) == "2011-01-01..2011-01-03,2011-02-01..2011-02-01"
    probe = pd.Series(pd.to_datetime(["2011-01-04", "2011-01-03", "2011-02-01", "2010-12-31"]))
    assert in_day_ranges(probe, day_ranges(days)).tolist() == [False, True, True, False]


@pytest.mark.parametrize("field", ["candidate_rmse", "champion_rmse", "improvement", "p_value"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_a_comparison_that_is_not_a_finite_number_never_promotes(field: str, value: float) -> None:
    comparison = dataclasses.replace(compare(candidate_noise=40, champion_noise=60), **{field: value})
    alias, why = decide(comparison, RULE)
    assert (alias, why.split(":")[0]) == (CHALLENGER, "cannot be compared")


@pytest.mark.parametrize("ranges", ["garbage", "2011-01-01", "2011-01-01..", "2012-02-31..2012-03-01"])
def test_unreadable_day_ranges_are_one_line(ranges: str) -> None:
    with pytest.raises(PipelineError, match=r"is not a range of days|names a day that does not exist"):
        in_day_ranges(pd.Series(pd.to_datetime(["2011-01-01"])), ranges)
