"""The team stack on this machine: `mlflow server` with basic-auth, PostgreSQL as its store (and its users'
store), and SeaweedFS as a real S3 object store for the artifacts, all on 127.0.0.1.

    python -m scripts.stack up        make stack: start what is not running, wait until it answers
    python -m scripts.stack down      make stack-down: stop what `up` started, by pid
    python -m scripts.stack status

Settings, from the environment:
    STACK_DIR       where state, logs, pid files and the env files live (default .stack)
    STACK_POSTGRES  the PostgreSQL server (default postgresql://postgres@127.0.0.1:5432/)
    STACK_DB        the database of the tracking store; its users go to <STACK_DB>_auth (default mlflow)
    STACK_WORKERS   tracking server processes (default 2, for 2 cores; one per core is a fair start)
    STACK_S3_ENDPOINT, STACK_S3_BUCKET, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY: an existing S3 store to use
                    instead of starting SeaweedFS
Ports, passwords and keys are chosen on the first `up` and kept in $STACK_DIR/state.json (mode 0600), so
data and logins survive a down/up cycle. Nothing here prints a password.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from pathlib import Path

from demand.errors import first_line, redacted
from scripts import stack_parts as parts
from scripts import stack_services as services

ADMIN, PIPELINE = "admin", "pipeline"


DEFAULTS = {
    "STACK_DIR": ".stack",
    "STACK_POSTGRES": "postgresql://postgres@127.0.0.1:5432/",
    "STACK_DB": "mlflow",
    "STACK_WORKERS": "2",
    "STACK_S3_ENDPOINT": "",
    "STACK_S3_BUCKET": "mlflow",
}
KEPT = ("STACK_POSTGRES", "STACK_DB", "STACK_S3_ENDPOINT", "STACK_S3_BUCKET")  # where the data is


def settings() -> dict[str, str]:
    return {name: os.environ.get(name, default) for name, default in DEFAULTS.items()}


def kept_settings(options: dict[str, str], state: dict) -> dict[str, str]:
    """Where a stack keeps its data is fixed on its first `up`; a later `up` that asks for another place is
    refused, instead of starting an empty stack on another database."""
    for name in KEPT:
        recorded = state["settings"][name]
        if name in os.environ and os.environ[name] != recorded:
            shown = redacted(recorded) if name == "STACK_POSTGRES" else recorded
            raise parts.StackError(
                f"the stack in {options['STACK_DIR']} keeps its data at {name}={shown}; unset {name}, "
                "or use another STACK_DIR for another stack"
            )
    return options | state["settings"]


def load_state(folder: Path, options: dict[str, str]) -> dict[str, object]:
    """Ports, passwords and keys: made on the first `up`, then read back."""
    path = folder / "state.json"
    if path.is_file():
        return json.loads(path.read_text())
    external = bool(options["STACK_S3_ENDPOINT"])
    if external and not (os.environ.get("AWS_ACCESS_KEY_ID") and os.environ.get("AWS_SECRET_ACCESS_KEY")):
        raise parts.StackError("STACK_S3_ENDPOINT needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY for it")
    state = {
        "settings": {name: options[name] for name in KEPT},
        "ports": parts.free_ports(["mlflow"] + ([] if external else list(parts.WEED_PORTS))),
        "admin_password": secrets.token_urlsafe(18),
        "pipeline_password": secrets.token_urlsafe(18),
        "flask_secret": secrets.token_hex(32),
        "s3_access_key": os.environ.get("AWS_ACCESS_KEY_ID")
        if external
        else "STACK" + secrets.token_hex(8).upper(),
        "s3_secret_key": os.environ.get("AWS_SECRET_ACCESS_KEY") if external else secrets.token_urlsafe(30),
    }
    parts.write_private(path, json.dumps(state, indent=2))
    return state


def up() -> None:
    options = settings()
    folder = Path(options["STACK_DIR"]).resolve()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)  # logins and keys live here
    state = load_state(folder, options)
    options = kept_settings(options, state)
    url = f"http://127.0.0.1:{state['ports']['mlflow']}"
    up_already = parts.running(folder, "mlflow") and (
        options["STACK_S3_ENDPOINT"] or parts.running(folder, "weed")
    )
    if up_already and (folder / "env").is_file() and (folder / "admin.env").is_file():
        print(f"The stack in {folder} is already up: {url} (nothing changed)")
        return
    tracking_db, auth_db = services.ensure_databases(options["STACK_POSTGRES"], options["STACK_DB"])
    endpoint = options["STACK_S3_ENDPOINT"] or services.start_seaweedfs(folder, state)
    services.ensure_bucket(endpoint, options["STACK_S3_BUCKET"], state)
    services.start_mlflow_server(folder, state, options, (tracking_db, auth_db), endpoint)
    services.wait_until_healthy(folder, url)
    services.create_user(url, (ADMIN, state["admin_password"]), PIPELINE, state["pipeline_password"])
    services.grant_edit_on_everything(url, (ADMIN, state["admin_password"]), PIPELINE)
    tracking = {"MLFLOW_TRACKING_URI": url}
    pipeline_login = {
        "MLFLOW_TRACKING_USERNAME": PIPELINE,
        "MLFLOW_TRACKING_PASSWORD": state["pipeline_password"],
    }
    admin_login = {
        "MLFLOW_TRACKING_USERNAME": ADMIN,
        "MLFLOW_TRACKING_PASSWORD": state["admin_password"],
        "MLFLOW_S3_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": state["s3_access_key"],
        "AWS_SECRET_ACCESS_KEY": state["s3_secret_key"],
        "STACK_S3_BUCKET": options["STACK_S3_BUCKET"],
    }
    parts.write_env(folder / "env", tracking | pipeline_login)
    parts.write_env(folder / "admin.env", tracking | admin_login)
    print(
        f"The stack is up: {url} (store {redacted(tracking_db)}, artifacts s3://{options['STACK_S3_BUCKET']})"
    )
    print("Point the pipeline at it (the pipeline user's login is in that file, mode 0600):")
    print(f"  set -a; . {folder / 'env'}; set +a")
    print("  scripts/rerun        # or: make run ENV_MANAGER=local")


def down() -> None:
    folder = Path(settings()["STACK_DIR"]).resolve()
    stopped = [name for name in ("mlflow", "weed") if parts.stop(folder, name)]
    print(
        f"Stopped {', '.join(stopped)} in {folder}" if stopped else f"Nothing of the stack in {folder} runs"
    )


def status() -> None:
    folder = Path(settings()["STACK_DIR"]).resolve()
    for name in ("mlflow", "weed"):
        print(f"{name}: {'running' if parts.running(folder, name) else 'stopped'}")


def main() -> None:
    commands = {"up": up, "down": down, "status": status}
    if len(sys.argv) != 2 or sys.argv[1] not in commands:
        sys.exit(f"usage: python -m scripts.stack {'|'.join(commands)}")
    try:
        commands[sys.argv[1]]()
    except parts.StackError as error:
        sys.exit(f"error: {error}")
    except Exception as error:  # psycopg2, boto3, requests: one line, never a traceback
        sys.exit(f"error: {type(error).__name__}: {redacted(first_line(error))}")


if __name__ == "__main__":
    main()
