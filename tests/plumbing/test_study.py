"""A study's facts and a worker's failing trials, on real SQLite stores (Optuna's and MLflow's)."""

from __future__ import annotations

import signal
from pathlib import Path

import optuna
import pytest
from mlflow import MlflowClient

from demand.csv_text import read_csv_text
from demand.errors import PipelineError
from demand.schema import parse_hourly
from demand.split import split_table
from plumbing.tuning.study import Search, open_study, search_digest
from plumbing.tuning.worker import RUN_ATTR, STUDY_TAG, TRIAL_STATE_TAG, work

SPACE = {"learning_rate": {"low": 0.05, "high": 0.3}}
BASE = {"max_iter": 20, "loss": "squared_error", "learning_rate": 0.1}


def search(tmp_path: Path, **changes: object) -> Search:
    facts = {"model": "hgb", "split": "time", "score": "rmse", "target": "riders", "features": "f1"}
    fields = {
        "storage": f"sqlite:///{tmp_path / 'optuna.db'}",
        "study": "s",
        "budget": 4,
        "facts": facts | {"search": search_digest(SPACE, BASE)},
        "base": BASE,
        "space": SPACE,
        "train_path": str(tmp_path / "train.parquet"),
        "experiment_id": "0",
        "parent_run_id": "parent",
        "tracking_uri": "",
    }
    return Search(**(fields | changes))


def test_a_new_study_starts_from_the_config_values_and_records_its_facts(tmp_path: Path) -> None:
    study = open_study(search(tmp_path), seed=1)
    assert study.user_attrs["model"] == "hgb"
    assert study.get_trials()[0].state == optuna.trial.TrialState.WAITING
    assert study.get_trials()[0].system_attrs["fixed_params"] == {"learning_rate": 0.1}
    assert len(open_study(search(tmp_path), seed=2).get_trials()) == 1, "joining enqueues nothing"


@pytest.mark.parametrize(
    ("facts", "message"),
    [
        ({"model": "xgb"}, r"was made with model='hgb', not 'xgb': pass -P model=hgb to join it"),
        ({"features": "f2"}, r"its trials used other training data"),
        ({"search": search_digest(SPACE, BASE | {"max_iter": 30})}, r"other search \(search space or fixed"),
    ],
)
def test_a_worker_with_other_facts_is_refused(tmp_path: Path, facts: dict, message: str) -> None:
    open_study(search(tmp_path), seed=1)
    other = search(tmp_path)
    with pytest.raises(PipelineError, match=message):
        open_study(search(tmp_path, facts=other.facts | facts), seed=1)


def test_a_foreign_study_with_trials_is_refused(tmp_path: Path) -> None:
    foreign = optuna.create_study(storage=f"sqlite:///{tmp_path / 'optuna.db'}", study_name="s")
    foreign.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=1)
    with pytest.raises(PipelineError, match=r"holds trials but no record of what they searched"):
        open_study(search(tmp_path), seed=1)


def test_a_bad_storage_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match=r"cannot open the study storage sqlite:////nonexistent/dir/o.db"):
        open_study(search(tmp_path, storage="sqlite:////nonexistent/dir/o.db"), seed=1)


def test_a_storage_that_refuses_says_why_in_full(tmp_path: Path) -> None:
    """PostgreSQL's reason comes after the driver's name and the server's address: it is not cut off."""
    storage = "postgresql://no_such_login_anywhere@127.0.0.1:5432/optuna"
    with pytest.raises(PipelineError, match=r'role "no_such_login_anywhere" does not exist; check the URL'):
        open_study(search(tmp_path, storage=storage), seed=1)


def test_a_worker_whose_trials_keep_failing_stops_and_fails_each_run(
    tmp_path: Path, tracking_uri: str, experiment_id: str, real_data: Path
) -> None:
    """A gamma loss cannot fit riders that are zero: each trial raises. Each is FAILED, in the study and in
    MLflow, and the worker stops after three in a row instead of trying forever."""
    path = real_data / "hour.csv" if real_data.is_dir() else real_data
    table = parse_hourly(read_csv_text(path.read_bytes(), str(path)), str(path))
    split_table(table, "time", 92)[0].to_parquet(tmp_path / "train.parquet")
    parent = MlflowClient().create_run(experiment_id).info.run_id
    failing = search(
        tmp_path,
        base=BASE | {"loss": "gamma"},
        experiment_id=experiment_id,
        parent_run_id=parent,
        tracking_uri=tracking_uri,
    )
    try:
        with pytest.raises(PipelineError, match=r"3 trials in a row failed in this worker"):
            work(failing, sampler_seed=1)
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)  # work() leaves Ctrl-C to its parent
    trials = open_study(failing, seed=1).get_trials()
    assert [trial.state for trial in trials] == [optuna.trial.TrialState.FAIL] * 3
    runs = MlflowClient().search_runs([experiment_id], f"tags.`{STUDY_TAG}` = 's'")
    assert sorted(run.info.run_id for run in runs) == sorted(trial.user_attrs[RUN_ATTR] for trial in trials)
    assert {(run.info.status, run.data.tags[TRIAL_STATE_TAG]) for run in runs} == {("FAILED", "FAIL")}
