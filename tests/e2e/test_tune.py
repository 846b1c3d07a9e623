"""`mlflow run . -e tune` for real: trials as nested runs, workers sharing a study in SQLite and in
PostgreSQL, a worker killed mid-trial, and the best trial fed back into a normal pipeline run."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import mlflow
import optuna
import psycopg2
import pytest
import yaml
from mlflow import MlflowClient
from sqlalchemy.exc import OperationalError

from plumbing.names import (
    BEST_PARAMS_ARTIFACT,
    ENTRY_POINT_TAG,
    OUTPUT_DIGEST_TAG,
    PARENT_RUN_TAG,
    REUSED_FROM_TAG,
)
from plumbing.tuning.worker import RUN_ATTR, STUDY_TAG, TRIAL_STATE_TAG, TRIAL_TAG, WORKER_ATTR
from tests.e2e.stack import POSTGRES
from tests.helpers import (
    CLI_TIMEOUT_SECONDS,
    cli_environment,
    dash_p,
    mlflow_command,
    mlflow_run,
    runs_by_entry_point,
)

# Small trials: a fixed, small forest, so that the search (learning rate, sampling) takes seconds.
QUICK = ("n_estimators=100", "max_depth=5", "bagged_seeds=1")
FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


def tune_arguments(data: Path, *parameters: str) -> list[str]:
    return ["-e", "tune", "--env-manager", "local", *dash_p(f"data={data}", *parameters)]


def trial_runs(client: MlflowClient, study: str) -> list:
    experiment = client.get_experiment_by_name("bike-sharing-demand")
    return client.search_runs([experiment.experiment_id], f"tags.`{STUDY_TAG}` = '{study}'", max_results=500)


def load_study(name: str, storage: str) -> optuna.Study:
    """The study as Optuna sees it, through the pinned driver (plumbing/tuning/study.py does the same)."""
    return optuna.load_study(study_name=name, storage=storage.replace("postgresql:", "postgresql+psycopg2:"))


@pytest.fixture
def optuna_storage() -> Iterator[str]:
    """A PostgreSQL database of its own, not there yet (the first tune worker creates it), dropped
    afterwards."""
    name = f"optuna_test_{secrets.token_hex(4)}"
    connection = psycopg2.connect(POSTGRES)
    connection.autocommit = True
    yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    connection.close()


def test_tune_runs_trials_as_nested_runs_and_its_best_reproduces_in_a_pipeline(
    client: MlflowClient, tracking_uri: str, real_data: Path
) -> None:
    done = mlflow_run(tracking_uri, *tune_arguments(real_data, "trials=4", "workers=2", *QUICK))
    assert done.returncode == 0, done.stderr[-3000:]
    (tune,) = runs_by_entry_point(client)["tune"]
    study = tune.data.params["study_name"]
    trials = trial_runs(client, study)
    assert sorted(int(run.data.tags[TRIAL_TAG]) for run in trials) == [0, 1, 2, 3]
    assert {run.data.tags[PARENT_RUN_TAG] for run in trials} == {tune.info.run_id}
    assert {run.info.status for run in trials} == {"FINISHED"}
    assert {run.data.params["n_estimators"] for run in trials} == {"100"}, "-P values are fixed, not searched"
    complete = [run for run in trials if run.data.tags[TRIAL_STATE_TAG] == "COMPLETE"]
    assert complete and all("cv_rmse" in run.data.metrics for run in complete)
    best = yaml.safe_load(
        Path(client.download_artifacts(tune.info.run_id, BEST_PARAMS_ARTIFACT, ".")).read_text()
    )
    best_run = min(complete, key=lambda run: run.data.metrics["cv_rmse"])
    assert best["cv_rmse"] == pytest.approx(best_run.data.metrics["cv_rmse"])
    assert best["trial"] == int(best_run.data.tags[TRIAL_TAG])
    assert tune.data.metrics["best_cv_rmse"] == pytest.approx(best["cv_rmse"])
    assert (best["model"], best["split"], best["hyperparameters"]["n_estimators"]) == ("xgb", "time", 100)
    for name, value in best["hyperparameters"].items():
        logged = best_run.data.params[name]
        assert float(logged) == pytest.approx(value) if isinstance(value, float) else logged == str(value)
    assert "trial   0 " in done.stderr and "best cv_rmse" in done.stderr, "a progress line per trial"
    assert "Best trial" in done.stdout and "Registry: registered bike-sharing-demand version 1" in done.stdout

    # The pipeline after the search ran nested under the tune run, with the best values.
    nested = runs_by_entry_point_under(client, tune)
    steps = {run.data.tags[ENTRY_POINT_TAG]: run for run in nested if TRIAL_TAG not in run.data.tags}
    assert set(steps) >= {"ingest", "featurize", "train", "evaluate", "register"}
    assert steps["train"].data.params["hp.learning_rate"] == str(best["hyperparameters"]["learning_rate"])

    # A normal pipeline run with best_params.yaml fits the very same model (train forced to run again).
    uri = f"runs:/{tune.info.run_id}/{BEST_PARAMS_ARTIFACT}"
    best_parameters = dash_p(f"data={real_data}", f"hyperparameters={uri}", "force=train")
    again = mlflow_run(tracking_uri, "--env-manager", "local", *best_parameters)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "already holds this model; nothing registered" in again.stdout
    retrained = [
        run for run in runs_by_entry_point(client)["train"] if run.info.run_id != steps["train"].info.run_id
    ]
    assert [run.data.tags.get(REUSED_FROM_TAG) for run in retrained] == [None]
    assert retrained[0].data.tags[OUTPUT_DIGEST_TAG] == steps["train"].data.tags[OUTPUT_DIGEST_TAG]


def runs_by_entry_point_under(client: MlflowClient, parent) -> list:
    return client.search_runs(
        [parent.info.experiment_id], f"tags.`{PARENT_RUN_TAG}` = '{parent.info.run_id}'", max_results=500
    )


def start_tune(
    tracking_uri: str, data: Path, log: Path, *parameters: str, env: dict[str, str] | None = None
) -> subprocess.Popen:
    return subprocess.Popen(
        mlflow_command(*tune_arguments(data, *parameters)),
        env=cli_environment(tracking_uri) | (env or {}),
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def test_two_machines_share_one_study_in_postgresql_without_losing_or_repeating_a_trial(
    client: MlflowClient, experiment_id: str, real_data: Path, optuna_storage: str, tmp_path: Path
) -> None:
    """Two `mlflow run -e tune` joined to one study, as two machines would: each trial once, in one run.
    The experiment exists first, as on a team server: two `mlflow run` creating it at once race in MLflow."""
    tracking_uri = mlflow.get_tracking_uri()
    shared = (f"storage={optuna_storage}", "study=shared", "trials=8", "workers=1", *QUICK)
    logs = [tmp_path / "first.log", tmp_path / "second.log"]
    # One thread each, as on two machines: two OpenMP pools spinning on two cores would crawl.
    one_core = {"OMP_NUM_THREADS": "1"}
    processes = [start_tune(tracking_uri, real_data, log, *shared, env=one_core) for log in logs]
    for process, log in zip(processes, logs, strict=True):
        assert process.wait(timeout=CLI_TIMEOUT_SECONDS) == 0, log.read_text()[-3000:]

    study = load_study("shared", optuna_storage)
    trials = study.get_trials()
    numbers = [trial.number for trial in trials]
    assert sorted(numbers) == list(range(len(numbers))), "every trial number once"
    finished = [trial for trial in trials if trial.state in FINISHED]
    assert 8 <= len(finished) <= 9, "the budget, or one over when both ask in the same instant"
    runs = {run.info.run_id: run for run in trial_runs(client, "shared")}
    assert sorted(trial.user_attrs[RUN_ATTR] for trial in trials) == sorted(runs), "one run per trial"
    for trial in trials:
        run = runs[trial.user_attrs[RUN_ATTR]]
        assert int(run.data.tags[TRIAL_TAG]) == trial.number
        assert run.data.tags[TRIAL_STATE_TAG] == trial.state.name
        for name, value in trial.params.items():
            assert float(run.data.params[name]) == pytest.approx(value)
        if trial.state == optuna.trial.TrialState.COMPLETE:
            assert run.data.metrics["cv_rmse"] == pytest.approx(trial.value)
    tunes = runs_by_entry_point(client)["tune"]
    assert {run.info.status for run in tunes} == {"FINISHED"}
    assert {run.data.tags[PARENT_RUN_TAG] for run in runs.values()} == {run.info.run_id for run in tunes}
    assert all(log.read_text().count("Best trial") == 1 for log in logs)


def worker_pids(root: int) -> list[int]:
    """The tune workers below process `root`: Python processes started by multiprocessing's spawn."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
            session = os.getsid(int(entry.name))
        except (OSError, ProcessLookupError):
            continue
        if session == root and b"multiprocessing.spawn" in command and b"resource_tracker" not in command:
            found.append(int(entry.name))
    return found


def test_a_killed_worker_fails_its_trial_and_the_study_goes_on(
    client: MlflowClient, tracking_uri: str, real_data: Path, optuna_storage: str, tmp_path: Path
) -> None:
    log = tmp_path / "tune.log"
    parameters = (f"storage={optuna_storage}", "study=killed", "trials=6", "workers=2")
    process = start_tune(tracking_uri, real_data, log, *parameters, "n_estimators=200", "bagged_seeds=1")
    victim, trial_number = None, None
    deadline = time.monotonic() + 300
    while victim is None and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.5)
        try:
            study = load_study("killed", optuna_storage)
        except (KeyError, OperationalError):  # no study yet, or not even its database
            continue
        workers = {f"{os.uname().nodename}:{pid}": pid for pid in worker_pids(process.pid)}
        for trial in study.get_trials(states=(optuna.trial.TrialState.RUNNING,)):
            midway = trial.number >= 1 and RUN_ATTR in trial.user_attrs  # its run exists: it is fitting
            if midway and trial.user_attrs.get(WORKER_ATTR) in workers:
                victim, trial_number = workers[trial.user_attrs[WORKER_ATTR]], trial.number
                os.kill(victim, signal.SIGKILL)
                break
    assert victim is not None, log.read_text()[-3000:]
    assert process.wait(timeout=CLI_TIMEOUT_SECONDS) == 0, log.read_text()[-3000:]

    study = load_study("killed", optuna_storage)
    killed = study.trials[trial_number]
    assert killed.state == optuna.trial.TrialState.FAIL
    assert sum(trial.state in FINISHED for trial in study.trials) == 6, (
        "another worker ran a trial in its place"
    )
    run = client.get_run(killed.user_attrs[RUN_ATTR])
    assert (run.info.status, run.data.tags[TRIAL_STATE_TAG]) == ("FAILED", "FAIL")
    output = log.read_text()
    assert f"worker pid {victim} was killed by signal 9; its trial {trial_number} ended FAILED" in output
    (tune,) = runs_by_entry_point(client)["tune"]
    assert tune.info.status == "FINISHED" and tune.data.metrics["trials_failed"] == 1
