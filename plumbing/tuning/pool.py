"""Worker processes for `tune`, the progress line (one line per finished trial with the best so far), and
what the search found.

Workers are spawned, not forked, so each starts clean (no MLflow or database connections copied from this
process). A worker that dies has its running trial failed at once; the workers left run one in its place.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import optuna
from mlflow import MlflowClient
from tqdm import tqdm

from demand.errors import PipelineError
from plumbing.tuning.study import Search, open_study
from plumbing.tuning.worker import FINISHED, fail_finished_trial_runs, fail_trials_of, work

POLL_SECONDS = 1.0


def _worker(search: Search, seed: int) -> None:
    """A worker process: a PipelineError is one line on stderr and exit status 2, as in the steps."""
    try:
        work(search, seed)
    except PipelineError as error:
        print(f"tune worker: {error}", file=sys.stderr, flush=True)
        sys.exit(2)


@contextmanager
def threads_per_worker(workers: int) -> Iterator[None]:
    """Workers started inside share this machine's cores instead of each taking all of them (XGBoost and
    scikit-learn size their thread pools by OMP_NUM_THREADS); an explicit setting is kept."""
    if "OMP_NUM_THREADS" in os.environ:
        yield
        return
    os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // workers))
    try:
        yield
    finally:
        del os.environ["OMP_NUM_THREADS"]


def run_workers(search: Search, workers: int, seed: int) -> tuple[optuna.Study, list[str]]:
    """Start `workers` processes on the study and wait for them, printing each finished trial. Returns
    the study and a note on each worker that died or failed."""
    study, client, notes = open_study(search, seed), MlflowClient(), []
    context = multiprocessing.get_context("spawn")
    # Each worker of each tune run samples its own way; the same seeds would propose the same trials.
    first = seed + zlib.crc32(search.parent_run_id.encode())
    processes = [context.Process(target=_worker, args=(search, first + i)) for i in range(workers)]
    with threads_per_worker(workers):
        for process in processes:
            process.start()
    progress = Progress(study, search)
    settled: set[int] = set()
    try:
        while True:
            for process in processes:
                if process.exitcode is not None and process.pid not in settled:
                    settled.add(process.pid)
                    _settle(process, study, client, notes)
            progress.show()
            if all(process.exitcode is not None for process in processes):
                break
            time.sleep(POLL_SECONDS)
    finally:  # every worker is stopped before any is waited for: a second signal cannot strand one
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            process.join()
            if process.pid not in settled:
                _settle(process, study, client, notes)
        fail_finished_trial_runs(study, client)
        progress.show()
        progress.close()
    return study, notes


def _settle(
    process: multiprocessing.process.BaseProcess, study: optuna.Study, client: MlflowClient, notes: list[str]
) -> None:
    if process.exitcode == 0:
        return
    failed = fail_trials_of(study, process.pid, client)
    how = f"was killed by signal {-process.exitcode}" if process.exitcode < 0 else "failed"
    lost = f"; its trial {', '.join(map(str, failed))} ended FAILED" if failed else ""
    notes.append(f"worker pid {process.pid} {how}{lost}")
    tqdm.write(f"tune: {notes[-1]}", file=sys.stderr)


class Progress:
    """A bar over the study's finished trials, and a line per trial as it ends, with the best so far."""

    def __init__(self, study: optuna.Study, search: Search) -> None:
        self.study, self.score, self.shown = study, search.facts["score"], set()
        self.bar = tqdm(total=search.budget, unit="trial", desc=f"tune {search.study}", file=sys.stderr)

    def show(self) -> None:
        ended = [t for t in self.study.get_trials(deepcopy=False) if t.state.is_finished()]
        complete = [t for t in ended if t.state == optuna.trial.TrialState.COMPLETE]
        best = min(complete, key=lambda t: t.value, default=None)
        for trial in sorted(ended, key=lambda t: t.number):
            if trial.number in self.shown:
                continue
            self.shown.add(trial.number)
            value = f"cv_{self.score} {trial.value:.4f}" if trial.value is not None else ""
            top = f"best cv_{self.score} {best.value:.4f} (trial {best.number})" if best else "no best yet"
            tqdm.write(f"trial {trial.number:>3} {trial.state.name:<8} {value:<22} {top}", file=sys.stderr)
            if trial.state != optuna.trial.TrialState.FAIL:
                self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


@dataclass(frozen=True)
class Found:
    """What a search found: the best trial and the study's counts."""

    best: optuna.trial.FrozenTrial
    metrics: dict[str, float]
    notes: list[str]

    def best_params_file(self, search: Search) -> dict[str, Any]:
        """best_params.yaml: what `-P hyperparameters=runs:/<tune run>/best_params.yaml` reads back."""
        score = search.facts["score"]
        return {
            "model": search.facts["model"],
            "split": search.facts["split"],
            "study": search.study,
            "trial": self.best.number,
            f"cv_{score}": self.best.value,
            "hyperparameters": search.base | self.best.params,
        }

    def lines(self, search: Search) -> list[str]:
        m, score = self.metrics, search.facts["score"]
        return [
            f"Study {search.study}: {m['trials_complete']:.0f} complete, {m['trials_pruned']:.0f} pruned, "
            f"{m['trials_failed']:.0f} failed; {m['trials_per_minute']:.2f} trials per minute",
            *[f"  {note}" for note in self.notes],
            f"Best trial {self.best.number}: cv_{score} {self.best.value:.4f}  {self.best.params}",
        ]


def study_summary(study: optuna.Study, notes: list[str], *, search: Search, started: datetime) -> Found:
    """The best complete trial and the study's counts; one line when the workers stopped short of the
    budget. The rate counts the trials finished since `started`, by any worker of the study."""
    trials = study.get_trials(deepcopy=False)
    count = {state: sum(t.state == state for t in trials) for state in optuna.trial.TrialState}
    finished = count[optuna.trial.TrialState.COMPLETE] + count[optuna.trial.TrialState.PRUNED]
    if finished < search.budget or not count[optuna.trial.TrialState.COMPLETE]:
        raise PipelineError(
            f"study {study.study_name} holds {finished} finished trials of {search.budget} and "
            f"{count[optuna.trial.TrialState.COMPLETE]} complete: its workers stopped (see above); "
            "nothing was trained"
        )
    recent = [t for t in trials if t.state in FINISHED and t.datetime_complete >= started]
    seconds = (datetime.now() - started).total_seconds()  # Optuna's times are local, naive ones
    metrics = {
        f"best_cv_{study.user_attrs['score']}": study.best_value,
        "trials_complete": count[optuna.trial.TrialState.COMPLETE],
        "trials_pruned": count[optuna.trial.TrialState.PRUNED],
        "trials_failed": count[optuna.trial.TrialState.FAIL],
        "trials_per_minute": len(recent) / max(seconds, 1e-9) * 60,
    }
    return Found(study.best_trial, metrics, notes)
