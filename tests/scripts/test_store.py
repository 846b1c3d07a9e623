"""The first run on a new store is safe: a SQLite store is created or upgraded under a file lock, a
half-migrated one is refused in one line and repaired with its rows, and a -P name is checked before
`mlflow run` starts. (tests/e2e/test_first_run.py does the same through real processes.)"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from mlflow import MlflowClient

from demand.errors import PipelineError, redacted
from plumbing.faults import without_credentials
from scripts.preflight import check_parameter_names, parameter_names
from scripts.store import REPAIR_COMMAND, leftover_tables, prepare_store, repair_store


def half_migrated(tmp_path: Path, table_left_in_place: bool) -> tuple[str, Path, str]:
    """A store as an interrupted migration of its tags table leaves it, holding one run with a tag."""
    path = tmp_path / "mlflow.db"
    uri = f"sqlite:///{path}"
    prepare_store(uri)
    client = MlflowClient(uri)
    run = client.create_run(client.create_experiment("kept"), tags={"kept": "yes"})
    with sqlite3.connect(path) as connection:
        if table_left_in_place:  # the copy was made; the swap never happened
            connection.execute("CREATE TABLE _alembic_tmp_tags AS SELECT * FROM tags")
        else:  # the old table was dropped; the copy holds the rows
            connection.execute("ALTER TABLE tags RENAME TO _alembic_tmp_tags")
    return uri, path, run.info.run_id


def test_a_new_store_is_created_then_found_up_to_date(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'deep' / 'mlflow.db'}"
    assert prepare_store(uri).startswith("created the tracking store")
    assert prepare_store(uri).endswith("is up to date")
    assert (
        prepare_store("http://mlflow.internal:5000") == "nothing to prepare for http://mlflow.internal:5000"
    )


@pytest.mark.parametrize("table_left_in_place", [True, False], ids=["copy beside the table", "copy instead"])
def test_a_half_migrated_store_is_one_line_and_the_repair_keeps_its_rows(
    tmp_path: Path, table_left_in_place: bool
) -> None:
    uri, path, run_id = half_migrated(tmp_path, table_left_in_place)
    with pytest.raises(PipelineError) as refused:
        prepare_store(uri)
    assert f"the tracking store {path} is half-migrated (table _alembic_tmp_tags" in str(refused.value)
    assert REPAIR_COMMAND in str(refused.value)
    repair_store(uri)
    assert leftover_tables(path) == []
    assert MlflowClient(uri).get_run(run_id).data.tags["kept"] == "yes"
    assert prepare_store(uri).endswith("is up to date")


@pytest.mark.parametrize("name", ["lr!", "max depth", "a;rm -rf /", "", "ümlaut", "x" * 10_000])
def test_a_parameter_name_mlflow_would_choke_on_is_refused(name: str) -> None:
    with pytest.raises(PipelineError, match="is not one this project takes") as refused:
        check_parameter_names(["-P", "model=rf", "-P", f"{name}=0.1"])
    assert len(str(refused.value)) < 300


def test_parameter_names_in_every_form_mlflow_run_takes() -> None:
    arguments = ["-P", "a=1", "-Pb=2", "--param-list", "c=3", "--param-list=d=4", "--env-manager", "local"]
    assert parameter_names(arguments) == ["a", "b", "c", "d"]
    check_parameter_names(arguments)


@pytest.mark.parametrize(
    ("uri", "shown", "sent"),
    [
        (
            "postgresql://mlflow:s3cret@db:5432/mlflow",
            "postgresql://mlflow:***@db:5432/mlflow",
            "postgresql://db:5432/mlflow",
        ),
        ("http://alice:s3cret@127.0.0.1:5000", "http://alice:***@127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("sqlite:////tmp/mlflow.db", "sqlite:////tmp/mlflow.db", "sqlite:////tmp/mlflow.db"),
    ],
)
def test_a_uri_is_never_shown_with_its_password(uri: str, shown: str, sent: str) -> None:
    assert (redacted(uri), without_credentials(uri)) == (shown, sent)


def test_a_store_that_cannot_be_written_is_one_line() -> None:
    """/proc takes no new files, whoever asks (root included): as a read-only disk would refuse them."""
    with pytest.raises(
        PipelineError, match=r"^cannot open the tracking store /proc/mlflow\.db \(.*\); check"
    ):
        prepare_store("sqlite:////proc/mlflow.db")


def test_a_store_locked_by_another_program_is_one_line_after_a_bounded_wait(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    prepare_store(uri)
    holder = sqlite3.connect(tmp_path / "mlflow.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(PipelineError, match=r"cannot open the tracking store .*database is locked"):
            prepare_store(uri)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert prepare_store(uri).endswith("is up to date")
