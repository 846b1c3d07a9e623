"""Where defaults come from: MLproject declares the parameters, config.yaml holds everything else.

The step CLIs read their defaults from here, so a default is written once and cannot drift.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

from steps.errors import PipelineError

PROJECT_DIR = Path(__file__).resolve().parent.parent
CONFIG_FILE = PROJECT_DIR / "config.yaml"
MLPROJECT_FILE = PROJECT_DIR / "MLproject"


@cache
def config() -> dict[str, Any]:
    """The parsed config.yaml (treat as read-only)."""
    return yaml.safe_load(CONFIG_FILE.read_text())


@cache
def parameter_defaults(entry_point: str) -> dict[str, str]:
    """Defaults MLproject declares for an entry point, as the strings `mlflow run` would pass."""
    spec = yaml.safe_load(MLPROJECT_FILE.read_text())["entry_points"][entry_point]
    return {
        name: str(declared["default"])
        for name, declared in spec.get("parameters", {}).items()
        if isinstance(declared, dict) and "default" in declared
    }


def parse_positive_int(name: str, value: str) -> int:
    """A whole number >= 1, or a one-line error naming the parameter."""
    try:
        number = int(str(value).strip())
    except ValueError:
        raise PipelineError(
            f"parameter {name}={value!r} is not a whole number; pass e.g. -P {name}=92"
        ) from None
    if number < 1:
        raise PipelineError(f"parameter {name}={number} must be at least 1")
    return number


def parse_choice(name: str, value: str, choices: tuple[str, ...] | list[str]) -> str:
    """One of `choices`, or a one-line error that lists them."""
    if value not in choices:
        raise PipelineError(
            f"unknown {name} {value!r}; choose one of: {', '.join(choices)} (e.g. -P {name}={choices[0]})"
        )
    return value
