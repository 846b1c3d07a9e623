"""Where defaults come from: MLproject declares the parameters, config.yaml holds everything else.

The step CLIs read their defaults from here, so a default is written once and cannot drift.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path
from typing import Any

import yaml

PROJECT_DIR = Path(__file__).resolve().parent.parent
CONFIG_FILE = PROJECT_DIR / "config.yaml"
MLPROJECT_FILE = PROJECT_DIR / "MLproject"
REQUIREMENTS_FILE = PROJECT_DIR / "requirements.txt"


@cache
def config() -> dict[str, Any]:
    """The parsed config.yaml, shared by the whole process: read it, never change it (tests check that a
    pipeline leaves it as the file says)."""
    return yaml.safe_load(CONFIG_FILE.read_text())


def split_options(split: str) -> dict[str, Any]:
    """config.yaml's `splits` entry: the split's `score`, the `target` models fit, and hyperparameters
    that replace the defaults of `models` under it."""
    return {"models": {}} | config()["splits"][split]


def model_defaults(model: str, split: str) -> dict[str, Any]:
    """A model's hyperparameters under a split, before any override."""
    return config()["models"][model] | split_options(split)["models"].get(model, {})


def requirements_digest() -> str:
    """sha256 of requirements.txt, which every logged model carries as its pip requirements."""
    return hashlib.sha256(REQUIREMENTS_FILE.read_bytes()).hexdigest()


def parameter_defaults(entry_point: str) -> dict[str, str]:
    """Defaults MLproject declares for an entry point, as the strings `mlflow run` would pass: a new dict
    on every call, so that a caller that changes it changes no other caller's defaults."""
    return dict(_declared_defaults(entry_point))


@cache
def _declared_defaults(entry_point: str) -> tuple[tuple[str, str], ...]:
    spec = yaml.safe_load(MLPROJECT_FILE.read_text())["entry_points"][entry_point]
    return tuple(
        (name, str(declared["default"]))
        for name, declared in spec.get("parameters", {}).items()
        if isinstance(declared, dict) and "default" in declared
    )
