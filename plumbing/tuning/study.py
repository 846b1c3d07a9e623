"""Optuna studies for `tune`: one study in a relational database (SQLite locally, PostgreSQL shared) that
any number of worker processes on any number of machines join (plumbing/tuning/worker.py runs the trials).

A study records what its trials were made with (its facts: model, split, score, target, training data,
search space and fixed values); a worker that would search something else is refused.
"""

from __future__ import annotations

import hashlib
import logging
import re
import warnings
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import optuna
import yaml
from sqlalchemy import URL, create_engine, make_url, text
from sqlalchemy.exc import OperationalError, ProgrammingError, SQLAlchemyError

from demand.errors import PipelineError, first_line, quoted, redacted, shown
from plumbing import settings
from plumbing.params import parse_safe_name

log = logging.getLogger(__name__)
STORAGE_SCHEMES = ("sqlite", "postgresql", "mysql")
# Facts a joining worker can match by passing the same -P; the others name data or a search space.
PARAMETER_FACTS = ("model", "split")
MAINTENANCE_DATABASE = "postgres"  # where a PostgreSQL server lets a login create databases
ERROR_CHARS = 400  # of a storage error: its cause comes after the driver's name and address


@dataclass(frozen=True)
class Search:
    """Everything a worker needs, picklable: it crosses into spawned processes."""

    storage: str
    study: str
    budget: int
    facts: dict[str, str]  # model, split, score, target, features (digest), search (digest)
    base: dict[str, Any]  # the model's hyperparameters under the split; the searched ones replace these
    space: dict[str, dict[str, Any]]
    train_path: str  # the training rows, as Parquet
    experiment_id: str
    parent_run_id: str
    tracking_uri: str


def search_digest(space: dict[str, Any], base: dict[str, Any]) -> str:
    """What a trial searches and what it holds fixed, as one short digest (a study fact)."""
    fixed = {name: value for name, value in base.items() if name not in space}
    text = yaml.safe_dump({"space": space, "fixed": fixed}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def parse_storage(storage: str) -> str:
    """A database URL that Optuna can share between processes, or one line."""
    scheme = storage.split(":", 1)[0].split("+", 1)[0]
    try:
        parts, shown_url = urlsplit(storage), redacted(storage)
        parts.port  # noqa: B018 - parsing the port is the check: 'host:abc' raises here
    except ValueError:
        raise PipelineError(
            "parameter storage is not a valid URL; pass e.g. -P storage=postgresql://user@host:5432/optuna"
        ) from None
    if "://" not in storage or scheme not in STORAGE_SCHEMES:
        raise PipelineError(
            f"parameter storage={quoted(shown_url)} is not a database URL; pass e.g. "
            "-P storage=postgresql://user@host:5432/optuna or sqlite:////absolute/path/optuna.db"
        )
    if scheme == "sqlite" and parts.path.strip("/") in ("", ":memory:"):
        raise PipelineError(
            f"parameter storage={quoted(shown_url)} is a database in memory, which each worker would have "
            "to itself; pass a file, e.g. sqlite:////absolute/path/optuna.db"
        )
    if shown_url != storage or "password=" in parts.query.lower():
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
        create_database(url)
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
    except (ImportError, ValueError, SQLAlchemyError, optuna.exceptions.StorageInternalError) as error:
        reason = shown(first_line(error), ERROR_CHARS)
        raise PipelineError(
            f"cannot open the study storage {redacted(search.storage)}: {reason}; check the URL, that the "
            "database exists and that this machine may reach it"
        ) from None
    _agree_on_facts(study, search)
    if not study.trials:  # the first trial is config.yaml's values: the search starts from them
        study.enqueue_trial({name: search.base[name] for name in search.space}, skip_if_exists=True)
    return study


def create_database(url: str) -> None:
    """Create the PostgreSQL database `url` names, when it is missing (of workers starting together, one
    creates it); any other storage is created by Optuna, or left to its own error."""
    if not url.startswith("postgresql"):
        return
    address = make_url(url)
    if not _missing_database(address):
        return
    server = create_engine(address.set(database=MAINTENANCE_DATABASE), isolation_level="AUTOCOMMIT")
    name = address.database.replace('"', '""')
    try:
        with server.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        log.info("created the study database %s", redacted(url))
    except ProgrammingError as error:
        if "already exists" not in str(error):  # another worker created it first: fine
            raise
    finally:
        server.dispose()


def _missing_database(address: URL) -> bool:
    engine = create_engine(address)
    try:
        engine.connect().close()
    except OperationalError as error:
        return f'database "{address.database}" does not exist' in str(error)
    finally:
        engine.dispose()
    return False


def _agree_on_facts(study: optuna.Study, search: Search) -> None:
    """Record the facts on a new study, or check them on one being joined. They are read back after
    writing, so of two workers creating one study at the same moment with different facts, one is refused."""
    if not study.user_attrs and study.trials:
        raise PipelineError(
            f"study {quoted(search.study)} holds trials but no record of what they searched (not made by "
            "this project's tune?); name another study"
        )
    for name, value in search.facts.items():
        if name not in study.user_attrs:
            study.set_user_attr(name, value)
    held = study.user_attrs  # read back
    for name, value in search.facts.items():
        if held.get(name) == value:
            continue
        if name in PARAMETER_FACTS:
            how = f"pass -P {name}={held.get(name)} to join it"
        else:
            what = "training data" if name == "features" else f"{name} (search space or fixed values)"
            how = f"its trials used other {what}; run with the same data, config.yaml and -P values"
        raise PipelineError(
            f"study {quoted(search.study)} was made with {name}={quoted(held.get(name))}, not "
            f"{quoted(value)}: {how}, or name another study"
        )


def parse_study_name(name: str) -> str:
    """A study name that is safe to print and to type again on another machine."""
    return parse_safe_name("study", name, "study name", ".", "_", ":", "-")
