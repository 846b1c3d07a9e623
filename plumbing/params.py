"""Parameter checks that run before any work: each bad value is one line naming the parameter.

Light on purpose (no scikit-learn, xgboost or matplotlib), so `main` can check everything up front and a
reused step imports nothing heavy. The models to choose from are those config.yaml has hyperparameters for.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from demand.errors import PipelineError, quoted, shown
from demand.hyperparameters import check_hyperparameters
from demand.split import SPLITS
from plumbing import settings
from plumbing.names import LOCK_SUFFIX, STEPS

FORCE_CHOICES = ("false", "true", *STEPS)


@dataclass(frozen=True)
class Plan:
    """The pipeline's parameters, checked."""

    data: str
    split: str
    test_days: int
    model: str
    hyperparameters: dict[str, Any]
    model_name: str
    force: tuple[str, ...]

    @property
    def target(self) -> str:
        return settings.split_options(self.split)["target"]


def make_plan(
    data: str,
    split: str,
    test_days: str,
    model: str,
    overrides: dict[str, str],
    *,
    model_name: str | None = None,
    force: str = "false",
    hyperparameters: str = "",
) -> Plan:
    """Every parameter of the pipeline checked before any work starts. `hyperparameters` names a YAML file
    (a path or a URI such as runs:/<tune run>/best_params.yaml) whose values replace config.yaml's."""
    split, days = parse_split(split, test_days)
    chosen = read_hyperparameters_file(hyperparameters, model, split) if hyperparameters else {}
    hyperparameters = parse_hyperparameters(model, overrides, split, chosen)
    name = parse_model_name(model_name or settings.parameter_defaults("main")["model_name"])
    return Plan(data, split, days, model, hyperparameters, name, forced_steps(force))


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
    """Check the parameters before any work starts."""
    return parse_choice("split", split, SPLITS), parse_positive_int("test_days", test_days)


def parse_hyperparameters(
    model: str, overrides: dict[str, str], split: str, chosen: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The resolved hyperparameters (config.yaml's for the split, then `chosen`, then -P overrides), each
    checked against its type and range, or a one-line error before any work starts."""
    parse_choice("model", model, tuple(settings.config()["models"]))
    defaults = settings.model_defaults(model, split) | (chosen or {})
    resolved = resolve_hyperparameters(defaults, overrides, model)
    check_hyperparameters(model, resolved)
    if resolved.get("loss") == "gamma" and settings.split_options(split)["target"] != "count":
        raise PipelineError(
            f"hyperparameter loss='gamma' needs counts above zero, but split={split} fits casual and "
            "registered riders apart, and each is zero in many hours; choose another loss"
        )
    return resolved


def read_hyperparameters_file(location: str, model: str, split: str) -> dict[str, Any]:
    """The `hyperparameters` of a best_params.yaml that tune logged (or any YAML file in its shape), for
    `model` under `split`, typed like config.yaml's; one line if it cannot be read, is not that shape, or
    holds another model's or another split's values."""
    import mlflow.artifacts  # noqa: PLC0415 - only when a file is named: params stays light

    try:
        remote = len(urlsplit(location).scheme) > 1  # runs:/, models:/, s3://, file://, not C:/
        local = mlflow.artifacts.download_artifacts(location) if remote else location
        content = yaml.safe_load(Path(local).read_text())
    except Exception as error:
        raise PipelineError(
            f"parameter hyperparameters={quoted(location)} cannot be read ({shown(error)}); "
            "pass a YAML file or a URI such as runs:/<tune run id>/best_params.yaml"
        ) from None
    values = content.get("hyperparameters") if isinstance(content, dict) else None
    if not isinstance(values, dict) or not all(isinstance(name, str) for name in values):
        raise PipelineError(
            f"parameter hyperparameters={quoted(location)} holds no `hyperparameters:` mapping of names "
            "to values"
        )
    if content.get("model", model) != model:
        raise PipelineError(
            f"parameter hyperparameters={quoted(location)} holds {shown(content['model'])} hyperparameters; "
            f"pass -P model={shown(content['model'])}"
        )
    if content.get("split", split) != split:
        raise PipelineError(
            f"parameter hyperparameters={quoted(location)} was tuned under split={shown(content['split'])}, "
            f"where the model fits another target; pass -P split={shown(content['split'])}"
        )
    defaults = settings.model_defaults(model, split)
    unknown = sorted(set(values) - set(defaults))
    if unknown:
        raise PipelineError(
            f"parameter hyperparameters={quoted(location)} names unknown hyperparameter(s) "
            f"{', '.join(shown(name) for name in unknown)} for model {model}"
        )
    typed = {name: _coerce(name, str(value), defaults[name]) for name, value in values.items()}
    check_hyperparameters(model, typed)
    return typed


def parse_overrides(arguments: list[str]) -> dict[str, str]:
    """`--name value` (or `--name=value`) pairs, which is how `mlflow run` passes undeclared -P params."""
    overrides: dict[str, str] = {}
    tokens = iter(arguments)
    for token in tokens:
        if not token.startswith("--") or len(token) == 2:
            raise PipelineError(
                f"unexpected argument {quoted(token)}; pass hyperparameters as -P <name>=<value>"
            )
        name, equals, value = token[2:].partition("=")
        if not equals:
            value = next(tokens, None)
            if value is None:
                raise PipelineError(
                    f"hyperparameter {shown(name)} has no value; pass it as -P {shown(name)}=<value>"
                )
        overrides[name] = value
    return overrides


def resolve_hyperparameters(
    defaults: dict[str, Any], overrides: dict[str, str], model: str
) -> dict[str, Any]:
    """config.yaml's hyperparameters with command-line overrides, each checked against its default's type."""
    unknown = sorted(set(overrides) - set(defaults))
    if unknown:
        raise PipelineError(
            f"unknown hyperparameter(s) {', '.join(shown(name) for name in unknown)} for model {model}; "
            f"known: {', '.join(defaults)} (defaults in config.yaml)"
        )
    resolved = dict(defaults)
    for name, text in overrides.items():
        resolved[name] = _coerce(name, text, defaults[name])
    return resolved


def _coerce(name: str, text: str, default: Any) -> Any:
    """`text` as the type of the config default: text, true/false, a whole number, or a number."""
    text = text.strip()
    if isinstance(default, str):
        return text
    if isinstance(default, bool):
        if text.lower() not in ("true", "false"):
            raise PipelineError(f"hyperparameter {name}={quoted(text)} must be true or false")
        return text.lower() == "true"
    if default is None:  # no type to follow: a number if it reads as one, else null or the text
        return (
            _number(text)
            if _number(text) is not None
            else (None if text.lower() in ("", "none", "null") else text)
        )
    number = _number(text)
    if number is None:
        raise PipelineError(
            f"hyperparameter {name}={quoted(text)} is not a number (config.yaml default: {default})"
        )
    if isinstance(default, int) and not isinstance(number, int):
        raise PipelineError(
            f"hyperparameter {name}={quoted(text)} must be a whole number (config.yaml default: {default})"
        )
    return float(number) if isinstance(default, float) else number


def _number(text: str) -> int | float | None:
    """A finite number, or None."""
    for parse in (int, float):
        try:
            number = parse(text)
        except ValueError:
            continue
        return number if math.isfinite(number) else None
    return None


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
