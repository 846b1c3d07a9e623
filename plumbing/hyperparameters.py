"""Hyperparameters, checked before any work: config.yaml's for the model under the split, then a YAML file
(tune's best_params.yaml), then `-P <name>=<value>` overrides, each typed like config.yaml's value and
checked against its range (demand/hyperparameters.py). The models to choose from are those config.yaml has
hyperparameters for; each bad value is one line naming it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from demand.errors import PipelineError, quoted, shown
from demand.hyperparameters import check_hyperparameters
from plumbing import settings
from plumbing.params import parse_choice

MAX_YAML_BYTES = 64 * 1024  # a hyperparameters file is a few lines


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
        content = _plain_yaml(Path(local))
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


class _PlainLoader(yaml.SafeLoader):
    """YAML without anchors and aliases: a few lines of aliases can stand for gigabytes of values."""

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            raise yaml.YAMLError("it uses YAML aliases (*name); write each value out")
        return super().compose_node(parent, index)


def _plain_yaml(path: Path) -> Any:
    """A small YAML file's content, read without aliases; ValueError or YAMLError otherwise."""
    with path.open("rb") as handle:
        text = handle.read(MAX_YAML_BYTES + 1)
    if len(text) > MAX_YAML_BYTES:
        raise ValueError(
            f"it is larger than {MAX_YAML_BYTES // 1024} KiB, and best_params.yaml is a few lines"
        )
    return yaml.load(text, Loader=_PlainLoader)  # a SafeLoader: no Python objects either


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
