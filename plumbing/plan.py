"""The pipeline's parameters, every one checked before any work starts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from plumbing import settings
from plumbing.data_source import parse_data
from plumbing.hyperparameters import parse_hyperparameters, read_hyperparameters_file
from plumbing.params import forced_steps, parse_model_name, parse_split


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
    default_name = settings.parameter_defaults("main")["model_name"]
    name = parse_model_name(default_name if model_name is None else model_name)
    return Plan(parse_data(data), split, days, model, hyperparameters, name, forced_steps(force))
