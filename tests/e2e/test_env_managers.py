"""`mlflow run` builds the project's own environment from python_env.yaml with virtualenv and with uv.

The first run on a machine installs the pinned requirements (a minute or two); MLflow reuses the
environment after that, keyed by the hash of python_env.yaml and requirements.txt.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from plumbing.names import STEPS
from tests.helpers import mlflow_run, runs_by_entry_point


@pytest.mark.envs
@pytest.mark.parametrize("manager", ["virtualenv", "uv"])
def test_whole_pipeline_in_a_built_environment(tracking_uri, client, small_csv: Path, manager: str) -> None:
    parameters = [f"data={small_csv}", "test_days=7", "n_estimators=30", "bagged_seeds=1"]
    arguments = [item for parameter in parameters for item in ("-P", parameter)]
    result = mlflow_run(tracking_uri, "--env-manager", manager, *arguments)
    assert result.returncode == 0, result.stderr[-3000:]
    runs = runs_by_entry_point(client)
    assert sorted(runs) == sorted(["main", *STEPS])
    assert all(group[0].info.status == "FINISHED" for group in runs.values())
    assert runs["main"][0].data.tags["mlflow.project.env"] == manager
