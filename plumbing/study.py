"""Optuna studies for `tune`: one study in a relational database (SQLite locally, PostgreSQL shared), any
number of worker processes on any number of machines, each trial a nested MLflow run.

A worker runs trials until the study holds `budget` finished (complete or pruned) trials, counting the
ones still running so that workers do not overshoot. Optuna's heartbeat marks a trial FAILED once its
worker has been silent for `stale_after_seconds` (killed, or its machine lost), and the workers left run
trials in its place; the `tune` process that started a worker fails that worker's trial at once.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import time
import warnings
from dataclasses import dataclass
from functools import partial
from typing import Any

import mlflow
import optuna
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import Param
from sqlalchemy.exc import SQLAlchemyError

from demand.errors import PipelineError, quoted, shown
from demand.tuning import fold_scores, suggest, time_folds
from plumbing import settings
from plumbing.names import PARENT_RUN_TAG
from plumbing.store import redacted

STUDY_TAG, TRIAL_TAG, TRIAL_STATE_TAG = "tune.study", "tune.trial", "tune.state"
WORKER_ATTR, RUN_ATTR = "worker", "mlflow_run_id"
FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
# What the runs of a study must agree on: a worker joining with other settings is refused.
STUDY_FACTS = ("model", "split", "score", "target", "train_period")
STORAGE_SCHEMES = ("sqlite", "postgresql", "mysql")


@dataclass(frozen=True)
class Search:
    """Everything a worker needs, picklable: it crosses into spawned processes."""

    storage: str
    study: str
    budget: int
    facts: dict[str, str]  # model, split, score, target, train_period
    base: dict[str, Any]  # the model's hyperparameters under the split; the searched ones replace these
    space: dict[str, dict[str, Any]]
    train_path: str  # the training rows, as Parquet
    experiment_id: str
    parent_run_id: str
    tracking_uri: str


def check_storage(storage: str) -> str:
    """A database URL Optuna can share between processes, or one line."""
    scheme = storage.split(":", 1)[0].split("+", 1)[0]
    if "://" not in storage or scheme not in STORAGE_SCHEMES:
        raise PipelineError(
            f"parameter storage={quoted(redacted(storage))} is not a database URL; pass e.g. "
            "-P storage=postgresql://user@host:5432/optuna or sqlite:////absolute/path/optuna.db"
        )
    if redacted(storage) != storage:
        raise PipelineError(
            "parameter storage holds a password, and mlflow run logs parameters as they are; put it in "
            "PGPASSWORD or ~/.pgpass instead and pass the URL without it"
        )
    return storage


def open_study(search: Search, seed: int) -> optuna.Study:
    """Create the study or join it; a study made for another model, split or data is refused."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    options = settings.config()["tune"]
    connect = {"connect_args": {"timeout": 60}} if search.storage.startswith("sqlite") else {}
    # SQLAlchemy 2.1 reads postgresql:// as psycopg 3; the pinned driver is psycopg2.
    url = re.sub(r"^postgresql://", "postgresql+psycopg2://", search.storage)
    try:
        storage = optuna.storages.RDBStorage(
            url,
            engine_kwargs={"pool_pre_ping": True, **connect},
            heartbeat_interval=options["heartbeat_seconds"],
            grace_period=options["stale_after_seconds"],
        )
        study = optuna.create_study(
            storage=storage,
            study_name=search.study,
            direction="minimize",
            load_if_exists=True,
            sampler=optuna.samplers.TPESampler(seed=seed),
            pruner=optuna.pruners.MedianPruner(
                n_startup_trials=options["prune_after_trials"], n_warmup_steps=options["prune_from_fold"] - 1
            ),
        )
    except (ImportError, SQLAlchemyError, optuna.exceptions.StorageInternalError) as error:
        reason = shown(str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__)
        raise PipelineError(
            f"cannot open the study storage {redacted(search.storage)}: {reason}; check the URL, that the "
            "database exists and that this machine may reach it"
        ) from None
    for name, value in search.facts.items():
        held = study.user_attrs.get(name)
        if held is None:
            study.set_user_attr(name, value)
        elif held != value:
            raise PipelineError(
                f"study {quoted(search.study)} was made with {name}={quoted(held)}, not {quoted(value)}; "
                f"pass -P {name}={held} to join it, or name another study"
            )
    if not study.trials:  # the first trial is config.yaml's values: the search starts from them
        study.enqueue_trial({name: search.base[name] for name in search.space}, skip_if_exists=True)
    return study


def counts(study: optuna.Study) -> tuple[int, int]:
    """Finished (complete or pruned) and running trials."""
    trials = study.get_trials(deepcopy=False)
    finished = sum(trial.state in FINISHED for trial in trials)
    return finished, sum(trial.state == optuna.trial.TrialState.RUNNING for trial in trials)


def work(search: Search, seed: int) -> None:
    """A worker: run trials until the study holds `budget` finished ones, or the process that started this
    one is gone."""
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    mlflow.set_tracking_uri(search.tracking_uri)
    client, parent_pid = MlflowClient(), os.getppid()
    train = pd.read_parquet(search.train_path)
    options = settings.config()["tune"]
    folds = time_folds(train, options["folds"], options["fold_days"])
    study = open_study(search, seed)
    while os.getppid() == parent_pid:
        optuna.storages.fail_stale_trials(study)
        finished, running = counts(study)
        if finished >= search.budget:
            return
        if finished + running >= search.budget:  # the last trials are running elsewhere: they may fail
            time.sleep(options["heartbeat_seconds"])
            continue
        objective = partial(_trial, search=search, train=train, folds=folds, client=client, seed=seed)
        study.optimize(objective, n_trials=1)


def _trial(
    trial: optuna.Trial, search: Search, train: pd.DataFrame, *, folds: Any, client: MlflowClient, seed: int
) -> float:
    """One trial as a nested run: its hyperparameters as params, `cv_<score>` as its metric."""
    score = search.facts["score"]
    hyperparameters = search.base | suggest(trial, search.space)
    run = client.create_run(
        search.experiment_id,
        run_name=f"trial-{trial.number}",
        # No liveness tags: a trial run is judged by its tune run, which beats (plumbing/liveness.py).
        tags={PARENT_RUN_TAG: search.parent_run_id, STUDY_TAG: search.study, TRIAL_TAG: str(trial.number)},
    )
    run_id = run.info.run_id
    trial.set_user_attr(RUN_ATTR, run_id)
    trial.set_user_attr(WORKER_ATTR, worker_name(os.getpid()))
    client.log_batch(run_id, params=[Param(name, str(value)) for name, value in hyperparameters.items()])
    state, status = "FAIL", "FAILED"
    try:
        model, target = search.facts["model"], search.facts["target"]
        running = float("nan")
        for fold, running in enumerate(
            fold_scores(
                train,
                folds,
                model=model,
                hyperparameters=hyperparameters,
                seed=seed,
                target=target,
                score=score,
            )
        ):
            client.log_metric(run_id, f"cv_{score}_running", running, step=fold)
            trial.report(running, fold)
            if trial.should_prune():
                state, status = "PRUNED", "FINISHED"
                raise optuna.TrialPruned()
        client.log_metric(run_id, f"cv_{score}", running)
        state, status = "COMPLETE", "FINISHED"
        return running
    finally:
        client.set_tag(run_id, TRIAL_STATE_TAG, state)
        client.set_terminated(run_id, status)


def worker_name(pid: int) -> str:
    return f"{socket.gethostname()}:{pid}"


def fail_trials_of(study: optuna.Study, pid: int, client: MlflowClient) -> list[int]:
    """Mark FAILED, in the study and in MLflow, the running trials of a worker known to be dead."""
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        if trial.user_attrs.get(WORKER_ATTR) != worker_name(pid):
            continue
        study.tell(trial.number, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)
        failed.append(trial.number)
    fail_finished_trial_runs(study, client)
    return failed


def fail_finished_trial_runs(study: optuna.Study, client: MlflowClient) -> None:
    """An MLflow run left RUNNING by a trial that Optuna has failed (its worker died) is FAILED too."""
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.FAIL,)):
        run_id = trial.user_attrs.get(RUN_ATTR)
        if run_id and client.get_run(run_id).info.status == "RUNNING":
            client.set_tag(run_id, TRIAL_STATE_TAG, "FAIL")
            client.set_terminated(run_id, "FAILED")


def check_study_name(name: str) -> str:
    """A study name that is safe to print and to type again on another machine."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}", name):
        raise PipelineError(
            f"parameter study={quoted(name)} is not a usable study name; use up to 100 letters, digits, "
            "'.', '_', ':' or '-', starting with a letter or digit"
        )
    return name
