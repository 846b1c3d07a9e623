"""The services of the team stack (scripts/stack.py): PostgreSQL databases, SeaweedFS and its bucket, the
tracking server, and its users. Every failure is a StackError: one line, no password in it."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from demand.errors import first_line, redacted
from scripts.stack_parts import (
    BIN,
    WEED_PORTS,
    StackError,
    running,
    start,
    waiting,
    write_private,
)
from scripts.stack_security import write_weed_security

# A bucket grows 7 volumes at once: weed's default of 8 slots fits one bucket. Slots cost no disk until
# written; telemetry would report the cluster to seaweedfs.com.
WEED_CAPACITY = ("-volume.max=100", "-master.telemetry=false")
WRITE_CHECK_KEY = ".stack/write-check"
AUTH_CACHE_SECONDS = 60  # without it every request spends ~0.4 s hashing the password again


def ensure_databases(server: str, name: str) -> tuple[str, str]:
    """The store URIs of databases `name` and `name`_auth on `server`, created when missing."""
    import psycopg2  # noqa: PLC0415 - only `up` needs the driver

    base = urlsplit(server.replace("postgresql://", "postgresql+psycopg2://", 1))
    uris = tuple(base._replace(path=f"/{database}").geturl() for database in (name, f"{name}_auth"))
    try:
        connection = psycopg2.connect(base._replace(scheme="postgresql", path="/postgres").geturl())
    except psycopg2.Error as error:
        raise StackError(f"cannot reach PostgreSQL at {redacted(server)} ({first_line(error)})") from None
    connection.autocommit = True  # CREATE DATABASE runs outside a transaction
    try:
        with connection.cursor() as cursor:
            for database in (name, f"{name}_auth"):
                cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
                if cursor.fetchone() is None:
                    cursor.execute(f'CREATE DATABASE "{database}"')
    finally:
        connection.close()
    return uris


def start_seaweedfs(folder: Path, state: dict) -> str:
    """A SeaweedFS server (master, volume, filer, S3) with one identity; its S3 endpoint. Only the S3 port
    answers without the stack's certificate (and it wants the keys); see scripts/stack_security.py."""
    ports = state["ports"]
    if not running(folder, "weed"):  # a running weed keeps the certificates and keys it started with
        write_weed_security(folder)
    identity = {
        "name": "stack",
        "credentials": [{"accessKey": state["s3_access_key"], "secretKey": state["s3_secret_key"]}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }
    write_private(folder / "s3.json", json.dumps({"identities": [identity]}, indent=2))
    (folder / "weed").mkdir(exist_ok=True)
    flags = [
        f"-{name.replace('_grpc', '.port.grpc')}" if "grpc" in name else f"-{name}.port"
        for name in WEED_PORTS
    ]
    command = [str(BIN / "weed"), "server", f"-dir={folder / 'weed'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1"]
    command += [f"{flag}={ports[name]}" for flag, name in zip(flags, WEED_PORTS, strict=True)]
    command += ["-filer", "-s3", f"-s3.config={folder / 's3.json'}", "-s3.port.iceberg=0", "-s3.port.lance=0"]
    command += ["-metricsPort=0", *_weed_lockdown_flags()]
    start(folder, "weed", command)
    return f"http://127.0.0.1:{ports['s3']}"


def _weed_lockdown_flags() -> list[str]:
    """The S3 gateway needs neither the filer's HTTP API nor the master's (assign, lookup, collection delete):
    both off. The filer's and S3's Unix sockets go to the 0700 stack folder, weed's working directory,
    instead of /tmp (relative paths: a long STACK_DIR would not fit a socket's 108 bytes)."""
    return ["-disableHttp", "-filer.localSocket=filer.sock", "-s3.localSocket=s3.sock", *WEED_CAPACITY]


def ensure_bucket(endpoint: str, bucket: str, state: dict) -> None:
    """Create the bucket (waiting for the S3 server to answer); fine if it exists."""
    import boto3  # noqa: PLC0415 - only `up` needs it
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=state["s3_access_key"],
        aws_secret_access_key=state["s3_secret_key"],
    )
    reason = "no answer"
    for _ in waiting("the S3 store", endpoint):
        try:
            client.head_bucket(Bucket=bucket)
            break
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchBucket"):
                client.create_bucket(Bucket=bucket)
                break
            reason = first_line(error)
        except BotoCoreError as error:
            reason = first_line(error)
    else:
        raise StackError(
            f"the S3 store at {endpoint} did not come up ({reason}); see its log in the stack folder"
        )
    _check_writes(client, bucket, endpoint)


def _check_writes(client: Any, bucket: str, endpoint: str) -> None:
    """Write and delete one small object: a store that answers but takes no writes (no writable volume,
    a full disk) fails `up`, not the first pipeline."""
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

    try:
        client.put_object(Bucket=bucket, Key=WRITE_CHECK_KEY, Body=b"ok")
        client.delete_object(Bucket=bucket, Key=WRITE_CHECK_KEY)
    except (BotoCoreError, ClientError) as error:
        raise StackError(
            f"the S3 store at {endpoint} takes no writes to bucket {bucket} ({first_line(error)}); "
            "see its log in the stack folder"
        ) from None


def start_mlflow_server(
    folder: Path, state: dict, options: dict[str, str], databases: tuple[str, str], endpoint: str
) -> None:
    """`mlflow server` with basic-auth: the store in databases[0], its users in databases[1]."""
    tracking_db, auth_db = databases
    auth_config = folder / "basic_auth.ini"
    settings = [
        "[mlflow]",
        "default_permission = READ",
        f"database_uri = {auth_db}",
        "admin_username = admin",
        f"admin_password = {state['admin_password']}",
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth",
        f"auth_cache_ttl_seconds = {AUTH_CACHE_SECONDS}",
    ]
    write_private(auth_config, "\n".join(settings) + "\n")
    # A shell that sourced .stack/env holds a login: the server needs none, and keeps none in its environment.
    inherited = {name: value for name, value in os.environ.items() if not name.startswith("MLFLOW_TRACKING_")}
    environment = inherited | {
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "MLFLOW_AUTH_CONFIG_PATH": str(auth_config),
        "MLFLOW_FLASK_SERVER_SECRET_KEY": state["flask_secret"],
        "MLFLOW_BACKEND_STORE_URI": tracking_db,  # not on the command line, where `ps` shows a password
        # The server's job runner (7 huey consumers, ~1.6 GiB) runs GenAI scorers; this pipeline has none.
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "MLFLOW_S3_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": state["s3_access_key"],
        "AWS_SECRET_ACCESS_KEY": state["s3_secret_key"],
    }
    address = ["--host", "127.0.0.1", "--port", str(state["ports"]["mlflow"])]
    artifacts = ["--artifacts-destination", f"s3://{options['STACK_S3_BUCKET']}"]
    serving = ["--app-name", "basic-auth", "--workers", options["STACK_WORKERS"]]
    command = [str(BIN / "mlflow"), "server", *address, *artifacts, *serving]
    start(folder, "mlflow", command, environment)


def wait_until_healthy(folder: Path, url: str) -> None:
    for _ in waiting("the tracking server", url):
        if not running(folder, "mlflow"):
            break
        try:
            if requests.get(f"{url}/health", timeout=5).ok:
                return
        except requests.RequestException:
            continue
    log = (folder / "mlflow.log").read_text(errors="replace").strip().splitlines() or ["(empty log)"]
    raise StackError(
        f"the tracking server did not come up; last line of {folder / 'mlflow.log'}: {log[-1][:300]}"
    )


def create_user(url: str, admin: tuple[str, str], username: str, password: str) -> None:
    answer = requests.post(
        f"{url}/api/2.0/mlflow/users/create",
        json={"username": username, "password": password},
        auth=admin,
        timeout=30,
    )
    if answer.status_code == 401:
        raise StackError(
            f"the server refused the admin login while creating the user {username} (HTTP 401): its users' "
            "database belongs to another stack, or this one lost its state.json; use another STACK_DB"
        )
    if not answer.ok and "already exists" not in answer.text:
        raise StackError(f"cannot create the user {username} (HTTP {answer.status_code})")


def grant_edit_on_everything(url: str, admin: tuple[str, str], username: str) -> None:
    """EDIT for `username` on every experiment and registered model, also those made before auth was on."""
    experiments = _listed(url, admin, "experiments/search", {"max_results": 1000}, "experiments")
    models = _listed(url, admin, "registered-models/search", {"max_results": 1000}, "registered_models")
    grants = [("experiment", item["experiment_id"]) for item in experiments]
    grants += [("registered_model", item["name"]) for item in models]
    for resource_type, resource_id in grants:
        answer = requests.post(
            f"{url}/api/3.0/mlflow/users/permissions/grant",
            json={
                "username": username,
                "resource_type": resource_type,
                "resource_id": resource_id,
                "permission": "EDIT",
            },
            auth=admin,
            timeout=30,
        )
        if not answer.ok and "already exists" not in answer.text:
            raise StackError(
                f"cannot grant EDIT on {resource_type} {resource_id} (HTTP {answer.status_code})"
            )


def _listed(url: str, admin: tuple[str, str], path: str, params: dict, key: str) -> list[dict]:
    answer = requests.get(f"{url}/api/2.0/mlflow/{path}", params=params, auth=admin, timeout=30)
    if not answer.ok:
        raise StackError(f"cannot list {key} as admin (HTTP {answer.status_code})")
    return answer.json().get(key, [])
