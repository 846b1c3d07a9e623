"""No credential is ever printed or stored: each entry point that can meet a URL with a password (the
tracking URI, `data`, any -P value, the served model's store) runs with one, and neither its output nor the
tracking store holds the password."""

from __future__ import annotations

import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from scripts.store import prepare_store
from tests.helpers import PROJECT_DIR, cli_environment, free_port

SECRET = "S3cretPassw0rd"


def run(command: list[str], tracking_uri: str) -> subprocess.CompletedProcess:
    environment = cli_environment(tracking_uri) | {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}
    return subprocess.run(
        command, cwd=PROJECT_DIR, env=environment, capture_output=True, text=True, timeout=300, check=False
    )


def assert_refused_without_the_secret(result: subprocess.CompletedProcess) -> None:
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-2000:]
    assert SECRET not in output, output[-2000:]
    assert "***" in output or "password" in output, output[-2000:]


@pytest.mark.parametrize(
    "command",
    [
        ["steps.main", "--test_days", "7"],
        ["serving", "-m", "models:/bike-sharing-demand@champion"],
        ["steps.predict", "--input", "hour.csv", "--output", "/tmp/never.csv"],
    ],
    ids=["main", "serving", "predict"],
)
def test_a_tracking_uri_with_a_password_is_never_printed(command: list[str], small_csv: Path) -> None:
    server = f"http://alice:{SECRET}@127.0.0.1:{free_port()}"  # nobody listens there
    arguments = [a.replace("hour.csv", str(small_csv)) for a in command]
    if command[0] == "steps.main":
        arguments += ["--data", str(small_csv)]
    assert_refused_without_the_secret(run([sys.executable, "-m", *arguments], server))


def test_data_with_a_password_is_refused_before_any_run_and_never_stored(tracking_uri: str, client) -> None:
    data = f"https://bob:{SECRET}@data.example.org/hour.csv"
    main = [sys.executable, "-m", "steps.main", "--data", data]
    assert_refused_without_the_secret(run(main, tracking_uri))
    assert_refused_without_the_secret(run([*main[:-1], data.replace("https://", "https:/")], tracking_uri))
    assert_refused_without_the_secret(
        run([sys.executable, "-m", "scripts.preflight", "-P", f"data={data}"], tracking_uri)
    )
    store = Path(tracking_uri.removeprefix("sqlite:///"))
    with sqlite3.connect(store) as connection:
        rows = connection.execute("SELECT value FROM params UNION ALL SELECT value FROM tags").fetchall()
    assert not [value for (value,) in rows if SECRET in str(value)]


def test_a_new_local_store_is_its_owners_alone(tmp_path: Path) -> None:
    path = tmp_path / "mlflow.db"
    prepare_store(f"sqlite:///{path}")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
