"""The trials of a `tune` worker, each a nested MLflow run, and what happens to those of a dead worker.

A worker runs trials until the study holds `budget` finished (complete or pruned) trials, counting the
ones still running so that workers do not overshoot. A trial that raises is FAILED and the worker goes on;
after `MAX_FAILURES_IN_A_ROW` it gives up. Optuna's heartbeat marks a trial FAILED once its worker has
been silent for `stale_after_seconds` (killed, or its machine lost), and the workers left run trials in
its place; the `tune` process that started a worker fails that worker's trial at once.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from functools import partial

import mlflow
import optuna
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import Param

from demand.errors import PipelineError
from demand.tuning import Folds, fold_scores, suggest, time_folds
from plumbing import settings
from plumbing.names import PARENT_RUN_TAG
from plumbing.tuning.study import Search, open_study

STUDY_TAG, TRIAL_TAG, TRIAL_STATE_TAG = "tune.study", "tune.trial", "tune.state"
WORKER_ATTR, RUN_ATTR = "worker", "mlflow_run_id"
FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
MAX_FAILURES_IN_A_ROW = 3
ORPHAN_CHECK_SECONDS = 1.0


def counts(study: optuna.Study) -> tuple[int, int]:
    """Finished (complete or pruned) and running trials."""
    trials = study.get_trials(deepcopy=False)
    finished = sum(trial.state in FINISHED for trial in trials)
    return finished, sum(trial.state == optuna.trial.TrialState.RUNNING for trial in trials)


def work(search: Search, sampler_seed: int) -> None:
    """A worker: run trials until the study holds `budget` finished ones. It exits at once when the
    process that started it is gone, and leaves Ctrl-C to that process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    mlflow.set_tracking_uri(search.tracking_uri)
    client = MlflowClient()
    train = pd.read_parquet(search.train_path)
    options = settings.config()["tune"]
    folds = time_folds(train, options["folds"], options["fold_days"])
    study = open_study(search, sampler_seed)
    objective = partial(_trial, search=search, train=train, folds=folds, client=client)
    failures, ended = 0, []  # the states of this worker's own trials, as Optuna ends them
    while True:
        optuna.storages.fail_stale_trials(study)
        finished, running = counts(study)
        if finished >= search.budget:
            return
        if finished + running >= search.budget:  # the last trials are running elsewhere: they may fail
            time.sleep(options["heartbeat_seconds"])
            continue
        study.optimize(
            objective, n_trials=1, catch=(Exception,), callbacks=[lambda _, t: ended.append(t.state)]
        )
        failures = failures + 1 if ended[-1] == optuna.trial.TrialState.FAIL else 0
        if failures >= MAX_FAILURES_IN_A_ROW:
            raise PipelineError(
                f"{failures} trials in a row failed in this worker; the trial runs of study "
                f"{search.study} say why (tag {TRIAL_STATE_TAG}=FAIL)"
            )


def _exit_with_parent(parent: int) -> None:
    """A worker whose tune process died (SIGKILL, a lost terminal) stops too, at once."""
    while os.getppid() == parent:
        time.sleep(ORPHAN_CHECK_SECONDS)
    os._exit(1)


def _trial(
    trial: optuna.Trial, search: Search, train: pd.DataFrame, *, folds: Folds, client: MlflowClient
) -> float:
    """One trial as a nested run: its hyperparameters as params, `cv_<score>` as its metric."""
    trial.set_user_attr(WORKER_ATTR, worker_name(os.getpid()))  # first: a dead worker's trial is findable
    score, seed = search.facts["score"], settings.config()["seed"]  # the seed the final model trains with
    hyperparameters = search.base | suggest(trial, search.space)
    run = client.create_run(
        search.experiment_id,
        run_name=f"trial-{trial.number}",
        # No liveness tags: a trial run is judged by its tune run, which beats (plumbing/liveness.py).
        tags={PARENT_RUN_TAG: search.parent_run_id, STUDY_TAG: search.study, TRIAL_TAG: str(trial.number)},
    )
    run_id = run.info.run_id
    trial.set_user_attr(RUN_ATTR, run_id)
    client.log_batch(run_id, params=[Param(name, str(value)) for name, value in hyperparameters.items()])
    state, status = "FAIL", "FAILED"
    try:
        scores = fold_scores(
            train,
            folds,
            model=search.facts["model"],
            hyperparameters=hyperparameters,
            seed=seed,
            target=search.facts["target"],
            score=score,
        )
        running = float("nan")
        for fold, running in enumerate(scores):
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
