"""The registry's rules on small arrays: the gate and the paired bootstrap decision."""

from __future__ import annotations

import numpy as np
import pytest

from demand.metrics import BASELINES
from demand.promotion import CHALLENGER, CHAMPION, decide, gate_failures, paired_bootstrap
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
