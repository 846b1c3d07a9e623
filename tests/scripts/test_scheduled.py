"""The scheduled rerun's arguments: `mlflow run`'s -P forms become `main`'s options; others are refused."""

from __future__ import annotations

import pytest

from demand.errors import PipelineError
from plumbing.names import EXPERIMENT_NAME
from scripts.scheduled import main_arguments


def test_every_form_of_dash_p_becomes_an_option_of_main(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    arguments = ["-P", "model=rf", "-Ptest_days=7", "--param-list", "alpha=0.5", "--param-list=data=a=b.csv"]
    assert main_arguments(arguments) == (
        ["--model", "rf", "--test_days", "7", "--alpha", "0.5", "--data", "a=b.csv"],
        EXPERIMENT_NAME,
    )


def test_the_experiment_comes_from_the_option_else_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "nightly")
    assert main_arguments([]) == ([], "nightly")
    assert main_arguments(["--experiment-name", "weekly", "-P", "force=true"]) == (
        ["--force", "true"],
        "weekly",
    )


@pytest.mark.parametrize("argument", ["--env-manager", "-e", "model=rf"])
def test_an_argument_the_rerun_does_not_take_is_one_line_before_anything_runs(argument: str) -> None:
    with pytest.raises(
        PipelineError, match=rf"takes -P name=value and --experiment-name <name>, not '{argument}'"
    ):
        main_arguments([argument, "local"])
