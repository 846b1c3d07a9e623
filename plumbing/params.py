"""Parameter checks that run before any work: each bad value is one line naming the parameter.

Light on purpose (no scikit-learn, xgboost or matplotlib), so `main` can check everything up front and a
reused step imports nothing heavy. Hyperparameters are checked in plumbing/hyperparameters.py; the whole
pipeline's parameters come together in plumbing/plan.py.
"""

from __future__ import annotations

import re

from demand.errors import PipelineError, quoted
from demand.split import SPLITS
from plumbing import settings
from plumbing.names import LOCK_SUFFIX, STEPS

FORCE_CHOICES = ("false", "true", *STEPS)


def parse_positive_int(name: str, value: str) -> int:
    """A whole number >= 1, or a one-line error naming the parameter."""
    try:
        number = int(str(value).strip())
    except ValueError:
        raise PipelineError(
            f"parameter {name}={quoted(value)} is not a whole number; pass e.g. -P {name}=92"
        ) from None
    if number < 1:
        raise PipelineError(f"parameter {name}={number} must be at least 1")
    return number


def parse_choice(name: str, value: str, choices: tuple[str, ...] | list[str]) -> str:
    """One of `choices`, or a one-line error that lists them."""
    if value not in choices:
        raise PipelineError(
            f"unknown {name} {quoted(value)}; choose one of: {', '.join(choices)} "
            f"(e.g. -P {name}={choices[0]})"
        )
    return value


def parse_split(split: str, test_days: str) -> tuple[str, int]:
    """The split and its test window; a test_days other than the default under a split that has no window
    (kaggle tests days 20 and later of each month) is refused rather than ignored."""
    split, days = parse_choice("split", split, SPLITS), parse_positive_int("test_days", test_days)
    default = parse_positive_int("test_days", settings.parameter_defaults("featurize")["test_days"])
    if split != "time" and days != default:
        raise PipelineError(
            f"parameter test_days={days} applies to split=time only; split={split} fixes its own test days: "
            "drop -P test_days"
        )
    return split, days


def forced_steps(force: str) -> tuple[str, ...]:
    """The steps `force` reruns: none (false), all (true), or the named step and every step after it."""
    parse_choice("force", force, FORCE_CHOICES)
    if force == "false":
        return ()
    return STEPS if force == "true" else STEPS[STEPS.index(force) :]


def parse_model_name(name: str) -> str:
    """A registered model name that is safe in registry search filters and URIs, and that no pipeline lock
    can take: locks are registered models named `<name>.lock` (plumbing/pipeline/lock.py)."""
    parse_safe_name("model_name", name, "registered model name", ".", "_", "-")
    if name.endswith(LOCK_SUFFIX) or f"{LOCK_SUFFIX}." in name:
        raise PipelineError(
            f"parameter model_name={quoted(name)} is reserved: registered models named *{LOCK_SUFFIX} are "
            "the pipeline's locks; choose another name"
        )
    return name


def parse_safe_name(parameter: str, value: str, what: str, *punctuation: str) -> str:
    """Up to 100 letters, digits and `punctuation`, starting with a letter or digit: safe to print, to put
    in a filter or URI, and to type again on another machine."""
    allowed = re.escape("".join(punctuation))
    if not re.fullmatch(rf"[A-Za-z0-9][A-Za-z0-9{allowed}]{{0,99}}", value):
        marks = [f"'{mark}'" for mark in punctuation]
        raise PipelineError(
            f"parameter {parameter}={quoted(value)} is not a usable {what}; use up to 100 letters, digits, "
            f"{', '.join(marks[:-1])} or {marks[-1]}, starting with a letter or digit"
        )
    return value
