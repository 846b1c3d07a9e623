"""`mlflow run <git url>`: a bare clone of this project served by a real `git daemon` on a free port, run at
a pinned commit with the current environment and with the one built from python_env.yaml."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow import MlflowClient

from plumbing.names import EXPERIMENT_NAME
from tests.helpers import PROJECT_DIR, dash_p, free_port, mlflow_run, runs_by_entry_point


@pytest.fixture(scope="module")
def git_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(git://127.0.0.1:<port>/project.git, the commit before its HEAD)."""
    if shutil.which("git") is None or not (PROJECT_DIR / ".git").exists():
        pytest.skip("needs git and a git checkout of the project")
    served = tmp_path_factory.mktemp("git")
    subprocess.run(
        ["git", "clone", "--quiet", "--bare", str(PROJECT_DIR), str(served / "project.git")], check=True
    )
    # Not HEAD: a run that ignored --version would record another commit.
    commit = subprocess.run(
        ["git", "-C", str(served / "project.git"), "rev-parse", "HEAD~1"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    port = free_port()
    options = ["--export-all", "--reuseaddr", "--listen=127.0.0.1", f"--port={port}", f"--base-path={served}"]
    daemon = subprocess.Popen(
        ["git", "daemon", *options, str(served)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"git://127.0.0.1:{port}/project.git"
    deadline = time.monotonic() + 30
    while subprocess.run(["git", "ls-remote", url], capture_output=True, check=False).returncode != 0:
        assert time.monotonic() < deadline and daemon.poll() is None, "git daemon did not start"
        time.sleep(0.3)
    yield url, commit
    daemon.terminate()
    daemon.wait(timeout=30)


@pytest.mark.parametrize("manager", ["local", "virtualenv"])
def test_a_run_from_a_git_url_records_its_commit_on_every_step(
    git_url: tuple[str, str],
    tracking_uri: str,
    client: MlflowClient,
    small_csv: Path,
    manager: str,
    tmp_path: Path,
) -> None:
    url, commit = git_url
    clones = tmp_path / "clones"  # MLflow leaves a clone per git run in TMPDIR: give it one we clear
    clones.mkdir()
    options = ["--env-manager", manager, "--version", commit]
    parameters = dash_p("model=xgb", f"data={small_csv}", "test_days=7", "n_estimators=30", "bagged_seeds=1")
    finished = mlflow_run(tracking_uri, *options, *parameters, project=url, env={"TMPDIR": str(clones)})
    assert any((path / "MLproject").is_file() for path in clones.iterdir()), "the clone landed in TMPDIR"
    assert finished.returncode == 0, finished.stderr[-3000:]
    runs = [run for group in runs_by_entry_point(client).values() for run in group]
    entry_points = {run.data.tags["mlflow.project.entryPoint"] for run in runs}
    assert entry_points == {"main", "ingest", "featurize", "train", "evaluate", "register"}
    assert {run.data.tags.get("mlflow.source.git.commit") for run in runs} == {commit}
    assert {run.info.status for run in runs} == {"FINISHED"}
    assert client.get_experiment_by_name(EXPERIMENT_NAME) is not None
