"""Faults in real processes: a pipeline killed between two calls to the registry."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from mlflow import MlflowClient

from plumbing.registry import DECISION_TAG
from tests.helpers import PROJECT_DIR, cli_environment, pipeline
from tests.plumbing.test_registry import NAME, champion

# `python -m steps.main`, except that the process is SIGKILLed at the moment it would set an alias: the
# version exists, its alias and decision do not.
KILLED_BEFORE_THE_ALIAS = """
import os, signal, sys
from mlflow import MlflowClient
MlflowClient.set_registered_model_alias = lambda *args, **kwargs: os.kill(os.getpid(), signal.SIGKILL)
from steps.main import main
sys.argv = ["main", *sys.argv[1:]]
main()
"""


def test_a_registration_killed_before_its_alias_is_finished_by_the_next_run(
    client: MlflowClient, tracking_uri: str, experiment_id: str, small_csv: Path
) -> None:
    pipeline(str(small_csv), "time", "7", "ridge", {})
    arguments = ["--data", str(small_csv), "--test_days", "7", "--n_estimators", "200"]
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_BEFORE_THE_ALIAS, *arguments],
        cwd=PROJECT_DIR,
        env=cli_environment(tracking_uri),
        capture_output=True,
        text=True,
        check=False,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert DECISION_TAG not in client.get_model_version(NAME, "2").tags
    assert champion(client) == "1"

    resumed = pipeline(str(small_csv), "time", "7", "xgb", {"n_estimators": "200"})
    assert resumed.registry.startswith(
        f"finished the interrupted registration of {NAME} version 2 as @champion"
    )
    assert champion(client) == "2"
    assert len(resumed.marked_failed) >= 2, "the killed pipeline's parent and register runs"
