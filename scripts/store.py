"""Creating and upgrading a local tracking store before the first run, one process at a time.

`mlflow run` creates a new SQLite store itself, before any project code runs, and MLflow 3.17 runs its
schema migration there without a lock: two `mlflow run` started at the same moment on a new file can both
migrate it and leave it half-migrated (`table _alembic_tmp_tags already exists` on every later run). So
the scheduled path and `make run` call `prepare_store` first (scripts/preflight.py): it creates or upgrades
the store while holding an exclusive lock on a file next to it, and refuses a half-migrated store with one
line that names the repair. A tracking server (http://...) migrates its own store; nothing to do here.
"""

from __future__ import annotations

import fcntl
import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from sqlalchemy.exc import OperationalError as DatabaseError

from demand.errors import PipelineError, redacted, shown

log = logging.getLogger(__name__)
LEFTOVER_PREFIX = "_alembic_tmp_"  # what an interrupted SQLite migration leaves: a copy of one table
REPAIR_COMMAND = "python -m scripts.preflight --repair"


def sqlite_path(uri: str) -> Path | None:
    """The file of a `sqlite:///...` store URI; None for any other store."""
    if not uri.startswith("sqlite:"):
        return None
    from sqlalchemy.engine import make_url  # noqa: PLC0415 - every CLI imports this module; few need it

    database = make_url(uri).database
    return Path(database).resolve() if database and database != ":memory:" else None


@contextmanager
def store_lock(path: Path) -> Iterator[None]:
    """An exclusive lock on `<store>.lock`, held by one process at a time on this host."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.with_name(f"{path.name}.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def leftover_tables(path: Path) -> list[str]:
    """Tables an interrupted migration left in the SQLite file at `path`."""
    if not path.is_file():
        return []
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
        rows = connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE ? ESCAPE '\\'",
            (LEFTOVER_PREFIX.replace("_", "\\_") + "%",),
        ).fetchall()
    return sorted(name for (name,) in rows)


def prepare_store(uri: str) -> str:
    """Create or upgrade the SQLite store at `uri` under the lock; say what was done."""
    path = sqlite_path(uri)
    if path is None:
        return f"nothing to prepare for {redacted(uri)}"
    try:
        return _prepare(uri, path)
    except (OSError, sqlite3.OperationalError, DatabaseError) as error:  # read-only, locked too long...
        raise PipelineError(
            f"cannot open the tracking store {path} ({shown(error)}); check that this user may write to it "
            "and that no other program holds it locked, then run again"
        ) from None


def _prepare(uri: str, path: Path) -> str:
    with store_lock(path):
        leftovers = leftover_tables(path)
        if leftovers:
            raise PipelineError(
                f"the tracking store {path} is half-migrated (table {leftovers[0]} was left by an "
                f"interrupted schema migration); back it up (cp {path} {path}.bak), then: {REPAIR_COMMAND}"
            )
        existed = path.is_file()
        if not existed:  # the store holds the logins' parameters and tags: this user's alone
            path.touch(mode=0o600)
        try:
            MlflowClient(uri).search_experiments(max_results=1)  # creates a new store, checks an old one
        except MlflowException as error:
            if "out-of-date database schema" not in str(error):
                raise
            from mlflow.store.db.utils import _upgrade_db, create_sqlalchemy_engine_with_retry  # noqa: PLC0415

            _upgrade_db(create_sqlalchemy_engine_with_retry(uri))
            return f"upgraded the tracking store {path}"
    return f"the tracking store {path} is up to date" if existed else f"created the tracking store {path}"


def repair_store(uri: str) -> str:
    """Undo what an interrupted migration left (each `_alembic_tmp_<table>`), then migrate to the end.

    A leftover copy whose table still exists was never swapped in: it is dropped. A copy whose table is
    gone holds that table's rows: it takes the table's name back.
    """
    path = sqlite_path(uri)
    if path is None or not path.is_file():
        raise PipelineError(f"{REPAIR_COMMAND} repairs a local SQLite store; {redacted(uri)} is not one")
    with store_lock(path), sqlite3.connect(path) as connection:
        tables = {name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        for leftover in leftover_tables(path):
            table = leftover.removeprefix(LEFTOVER_PREFIX)
            if table in tables:
                connection.execute(f'DROP TABLE "{leftover}"')
            else:
                connection.execute(f'ALTER TABLE "{leftover}" RENAME TO "{table}"')
            log.info("repaired %s in %s", leftover, path)
    return prepare_store(uri)
