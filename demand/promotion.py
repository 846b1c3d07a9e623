"""The registry's rules (pure: numbers in, decisions out): the registration gate and champion vs challenger.

Gate: a model is registered only when its holdout RMSE is at most `max_rmse` and it beats each baseline
by at least `min_skill_vs_baselines` (skill = 1 - RMSE / baseline RMSE).

Like with like: the two are compared only on today's test rows from days that neither trained on (each
version records the days it was trained on). When the champion trained on some test days and fewer than
`min_comparable_days` others remain, they cannot be compared and the champion stays.

Promotion: the candidate and the current champion are scored on the same test rows. A paired
bootstrap over test days resamples whole days (errors within a day are correlated, so rows are not
independent) and recomputes both RMSEs on each resample. The candidate is promoted when its RMSE is
lower in at least `confidence` of the resamples (a one-sided test, p = the share of resamples where it
is not lower) and the improvement is at least `min_relative_improvement` of the champion's RMSE: a
difference that is consistent but too small to matter is not worth replacing the model users get.
Otherwise it becomes the challenger.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from demand.split import in_day_ranges

CHAMPION = "champion"
CHALLENGER = "challenger"


def gate_failures(scores: dict[str, float], gate: dict[str, float], baselines: tuple[str, ...]) -> list[str]:
    """Why the model may not be registered; empty when it passes."""
    failures = []
    if not scores["rmse"] <= gate["max_rmse"]:
        failures.append(f"RMSE {scores['rmse']:.2f} is above the ceiling {gate['max_rmse']:g}")
    for name in baselines:
        skill = scores[f"skill_vs_{name}"]
        if not skill >= gate["min_skill_vs_baselines"]:
            failures.append(
                f"skill vs {name} {skill:.1%} is below the required {gate['min_skill_vs_baselines']:.0%}"
            )
    return failures


@dataclass(frozen=True)
class Comparison:
    """Candidate vs champion on the same rows. improvement = champion RMSE - candidate RMSE."""

    candidate_rmse: float
    champion_rmse: float
    improvement: float
    interval: tuple[float, float]  # 95% bootstrap interval of the improvement
    p_value: float  # share of resamples in which the candidate is not better
    days: int
    samples: int

    def as_metrics(self) -> dict[str, float]:
        return {
            "promotion_candidate_rmse": self.candidate_rmse,
            "promotion_champion_rmse": self.champion_rmse,
            "promotion_improvement": self.improvement,
            "promotion_improvement_low": self.interval[0],
            "promotion_improvement_high": self.interval[1],
            "promotion_p_value": self.p_value,
            "promotion_days": float(self.days),
        }

    def describe(self) -> str:
        low, high = self.interval
        return (
            f"RMSE {self.candidate_rmse:.2f} vs champion {self.champion_rmse:.2f} on the same "
            f"{self.days} test days neither trained on: improvement {self.improvement:+.2f} "
            f"(95% interval {low:+.2f}..{high:+.2f}), p = {self.p_value:.3f}"
        )


def unseen_by_champion(
    test_days: pd.Series, champion_trained_on: str | None, champion: str, min_days: int
) -> tuple[np.ndarray | None, str]:
    """Which test rows the champion never trained on, or (None, why the two cannot be compared).

    `champion_trained_on` is the champion's training days as `day_ranges` writes them (None: unknown).
    """
    if champion_trained_on is None:
        return None, (
            f"cannot be compared: champion version {champion} does not record the days it was trained on; "
            "the champion stays"
        )
    unseen = ~in_day_ranges(test_days, champion_trained_on)
    unseen_days, all_days = test_days[unseen].nunique(), test_days.nunique()
    if unseen_days < min(min_days, all_days):
        return None, (
            f"cannot be compared: champion version {champion} trained on {all_days - unseen_days} of the "
            f"{all_days} test days, which leaves {unseen_days} (at least {min_days} needed); "
            "the champion stays"
        )
    return unseen, ""


def paired_bootstrap(
    days: np.ndarray,
    actual: np.ndarray,
    candidate: np.ndarray,
    champion: np.ndarray,
    *,
    samples: int,
    seed: int,
) -> Comparison:
    """Resample test days with replacement; on each resample, both models' RMSE over the same rows."""
    _, day_of_row = np.unique(days, return_inverse=True)
    candidate_sse = np.bincount(day_of_row, weights=(candidate - actual) ** 2)
    champion_sse = np.bincount(day_of_row, weights=(champion - actual) ** 2)
    rows = np.bincount(day_of_row)
    n_days = len(rows)
    picks = np.random.default_rng(seed).integers(0, n_days, size=(samples, n_days))
    resampled_rows = rows[picks].sum(axis=1)
    improvements = np.sqrt(champion_sse[picks].sum(axis=1) / resampled_rows) - np.sqrt(
        candidate_sse[picks].sum(axis=1) / resampled_rows
    )
    candidate_rmse = float(np.sqrt(candidate_sse.sum() / rows.sum()))
    champion_rmse = float(np.sqrt(champion_sse.sum() / rows.sum()))
    low, high = np.percentile(improvements, [2.5, 97.5])
    return Comparison(
        candidate_rmse,
        champion_rmse,
        champion_rmse - candidate_rmse,
        (float(low), float(high)),
        float(np.mean(improvements <= 0)),
        n_days,
        samples,
    )


def decide(comparison: Comparison | None, rule: dict[str, Any]) -> tuple[str, str]:
    """The alias the candidate gets, and why."""
    if comparison is None:
        return CHAMPION, "first model: there is no champion yet"
    numbers = (
        comparison.candidate_rmse,
        comparison.champion_rmse,
        comparison.improvement,
        comparison.p_value,
    )
    if not all(math.isfinite(number) for number in (*numbers, *comparison.interval)):
        return (
            CHALLENGER,
            f"cannot be compared: the comparison is not a finite number ({comparison.describe()})",
        )
    alpha = 1 - rule["confidence"]
    needed = rule["min_relative_improvement"] * comparison.champion_rmse
    if comparison.improvement <= 0:
        return CHALLENGER, f"not better: {comparison.describe()}"
    if comparison.p_value > alpha:
        return CHALLENGER, f"better, but not significantly: {comparison.describe()} > {alpha:.2f}"
    if comparison.improvement < needed:
        return CHALLENGER, f"better, but by less than {needed:.2f}: {comparison.describe()}"
    return CHAMPION, f"clearly better than the champion: {comparison.describe()} <= {alpha:.2f}"
