"""The values each model's hyperparameters may take: checked before any work starts, so that
`-P learning_rate=-1` or `-P n_estimators=1000000000` is one clear line, not a crash or a day of training.

Bounds are what the library accepts, narrowed to what makes sense for 17,379 hourly rows on one machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from demand.errors import PipelineError, quoted


@dataclass(frozen=True)
class Between:
    """A number from `low` to `high`; `low` itself excluded when `low_open`."""

    low: float
    high: float
    low_open: bool = False
    whole: bool = False

    def problem(self, value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "must be a number"
        if self.whole and not isinstance(value, int):
            return "must be a whole number"
        too_low = value <= self.low if self.low_open else value < self.low
        if too_low or value > self.high:
            return f"must be {'>' if self.low_open else '>='} {self.low:g} and <= {self.high:g}"
        return None


@dataclass(frozen=True)
class OneOf:
    choices: tuple[str, ...]

    def problem(self, value: Any) -> str | None:
        return None if value in self.choices else f"must be one of: {', '.join(self.choices)}"


FRACTION = Between(0, 1, low_open=True)
SEEDS = Between(1, 50, whole=True)  # bagged_seeds: demand/models.py SeedBag
RULES: dict[str, dict[str, Between | OneOf]] = {
    "xgb": {
        "objective": OneOf(("count:poisson", "reg:squarederror", "reg:absoluteerror", "reg:tweedie")),
        "n_estimators": Between(1, 20_000),
        "learning_rate": FRACTION,
        "max_depth": Between(1, 20),
        "subsample": FRACTION,
        "colsample_bytree": FRACTION,
        "min_child_weight": Between(0, 1_000),
        "bagged_seeds": SEEDS,
    },
    "rf": {
        "n_estimators": Between(1, 5_000),
        "min_samples_leaf": Between(1, 10_000),
        "max_features": FRACTION,
        "bagged_seeds": SEEDS,
    },
    "hgb": {
        "loss": OneOf(("squared_error", "absolute_error", "poisson", "gamma")),
        "max_iter": Between(1, 20_000),
        "learning_rate": FRACTION,
        "max_leaf_nodes": Between(2, 4_096),
        "min_samples_leaf": Between(1, 10_000),
        "bagged_seeds": SEEDS,
    },
    "ridge": {"alpha": Between(0, 1e9)},
}


# The hyperparameter that sizes one model: bagged_seeds models of that size are trained, and together
# they may not grow past the size one model may have.
MODEL_SIZE = {"xgb": "n_estimators", "rf": "n_estimators", "hgb": "max_iter"}


def check_hyperparameters(model: str, values: dict[str, Any]) -> None:
    """A PipelineError naming the first hyperparameter outside its range, and the range; then the
    bagged models' total size."""
    for name, value in values.items():
        rule = RULES.get(model, {}).get(name)
        problem = rule.problem(value) if rule is not None else f"has no known range for model {model}"
        if problem:
            raise PipelineError(f"hyperparameter {name}={quoted(value)} {problem} (model {model})")
    _check_bagged_size(model, values)


def _check_bagged_size(model: str, values: dict[str, Any]) -> None:
    size, seeds = MODEL_SIZE.get(model), values.get("bagged_seeds")
    if size not in values or seeds is None:
        return
    trees, most = values[size] * seeds, RULES[model][size].high
    if trees > most:
        raise PipelineError(
            f"hyperparameters {size}={values[size]} and bagged_seeds={seeds} train {trees:,} trees in all, "
            f"more than {most:,.0f} (model {model}); lower one of them"
        )
