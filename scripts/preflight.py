"""What the scheduled rerun and `make run` check before `mlflow run` starts, each failure one line:

    python -m scripts.preflight [mlflow run arguments]     e.g. python -m scripts.preflight -P model=rf
    python -m scripts.preflight --repair                    repair a half-migrated local store

1. Every `-P name=value` has a name this project can take (letters, digits, _; at most 250). MLflow
   creates its run before it checks a name, then crashes on one it rejects and leaves that run RUNNING.
2. A tracking server (http...) answers <uri>/health within the timeout; any HTTP answer counts as up.
3. A local SQLite store exists and is current: created or upgraded under a file lock (scripts/store.py),
   so that two first runs never migrate a new store at once.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator

import mlflow

from demand.errors import PipelineError, quoted, redacted
from plumbing.faults import not_answering
from scripts.store import prepare_store, repair_store

TIMEOUT_SECONDS = 10
PARAMETER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,249}")  # MLflow takes up to 250 characters
PARAMETER_FLAGS = ("-P", "--param-list")


def parameter_names(arguments: list[str]) -> list[str]:
    """The names of the `-P name=value` (or `--param-list name=value`) arguments of `mlflow run`."""
    tokens = iter(arguments)
    return [pair[0] for token in tokens if (pair := parameter_value(token, tokens)) is not None]


def parameter_value(token: str, rest: Iterator[str]) -> tuple[str, str] | None:
    """(name, value) when `token` starts a `-P name=value` (taking the value from `rest` when it is a
    separate argument); None for any other argument."""
    if token in PARAMETER_FLAGS:
        value = next(rest, "")
    elif token.startswith("--param-list="):
        value = token.removeprefix("--param-list=")
    elif token.startswith("-P") and len(token) > 2:
        value = token[2:]
    else:
        return None
    name, _, given = value.partition("=")
    return name, given


def check_parameter_names(arguments: list[str]) -> None:
    for name in parameter_names(arguments):
        if not PARAMETER_NAME.fullmatch(name):
            raise PipelineError(
                f"-P name {quoted(name)} is not one this project takes: use letters, digits and _ "
                "(e.g. -P learning_rate=0.1); nothing was run"
            )


def check_parameter_values(arguments: list[str]) -> None:
    """No -P value holds a password: `mlflow run` would log it as a parameter, for good."""
    tokens = iter(arguments)
    for token in tokens:
        pair = parameter_value(token, tokens)
        if pair is not None and redacted(pair[1]) != pair[1]:
            raise PipelineError(
                f"-P {pair[0]} holds a password, and mlflow run would log it as a parameter for good; "
                "nothing was run. Pass it without (a database: PGPASSWORD or ~/.pgpass; data: a local copy)"
            )


def check_tracking_server(uri: str) -> None:
    reason = not_answering(uri, TIMEOUT_SECONDS)
    if reason is not None:
        raise PipelineError(
            f"the tracking server {redacted(uri)} does not answer ({reason}); nothing was run. "
            "Check that it is up, or point MLFLOW_TRACKING_URI elsewhere."
        )


def check(arguments: list[str], uri: str | None = None) -> None:
    """Every check above, for `mlflow run` arguments and a tracking URI (default: this process's)."""
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI") or mlflow.get_tracking_uri()
    check_parameter_names(arguments)
    check_parameter_values(arguments)
    if uri.startswith(("http://", "https://")):
        check_tracking_server(uri)
    else:
        prepare_store(uri)


def main() -> None:
    arguments = sys.argv[1:]
    try:
        if arguments == ["--repair"]:
            uri = os.environ.get("MLFLOW_TRACKING_URI") or mlflow.get_tracking_uri()
            print(repair_store(uri))
            return
        check(arguments)
    except PipelineError as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    main()
