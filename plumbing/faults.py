"""What went wrong outside the user's input, in one line (a tracking server that stopped answering, a full
disk), and URIs as output may show them (no password).

Every part of the project that words such a failure (the step CLIs, tracking, tuning, Spark, the scripts)
uses these, so a fault reads the same wherever it happens and no secret reaches a log.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import mlflow

from demand.errors import redacted, shown_path

FULL_BYTES = 1024 * 1024  # a disk with less free space than this is full
ARTIFACTS_ENDPOINT = "/mlflow-artifacts/"  # the tracking server's proxy to its artifact store
HEALTH_TIMEOUT_SECONDS = 5
AFTER_AN_OUTAGE = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
S3_ENDPOINT_ENV = "MLFLOW_S3_ENDPOINT_URL"
NO_ANSWER_SIGNS = (
    "Max retries exceeded",
    "Connection refused",
    "ConnectionError",
    "Could not connect to the endpoint",
)


def causes(error: BaseException) -> Iterator[BaseException]:
    """`error`, then what caused it, and so on (each once)."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def server_trouble(error: BaseException) -> str | None:
    """What went wrong, in one line, when `error` (or its cause) says the tracking server did not answer
    or could not reach its artifact store; None for any other error.

    A server whose artifact store is down answers an artifact request with HTTP 5xx, or, during an upload,
    may close the connection before reading the file: then the server itself is asked (its /health) whether
    it is up, so that a lost artifact store is not reported as a lost server. An address the error names
    that is not the tracking server's (the S3 endpoint of the artifact store, say) is named instead."""
    uri = mlflow.get_tracking_uri()
    for cause in causes(error):
        text = str(cause)
        artifacts = ARTIFACTS_ENDPOINT in text
        failing = re.search(r"(?:error code|too many) (5\d\d)\b", text)
        if failing:
            return _artifact_store_down(uri) if artifacts else _server_failing(uri, failing[1])
        if any(sign in text for sign in NO_ANSWER_SIGNS):
            called = called_address(text)
            if called is not None and called != address(uri):
                return f"{_whose(called)} did not answer"
            if artifacts and answers(uri):
                return _artifact_store_down(uri)
            return f"the tracking server {redacted(uri)} stopped answering"
    return None


def called_address(text: str) -> tuple[str, int] | None:
    """The host and port an error says it could not reach (urllib3's and botocore's wording), if it says."""
    pool = re.search(r"host='([^']+)', port=(\d+)", text)
    if pool:
        return pool[1], int(pool[2])
    url = re.search(r"endpoint URL: \"([^\"]+)\"", text)
    return address(url[1]) if url else None


def address(uri: str) -> tuple[str, int] | None:
    """The host and port an http(s) URI is served on; None for any other URI (a file, a database)."""
    parsed = urlsplit(uri)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        return None
    return parsed.hostname, parsed.port or (443 if parsed.scheme == "https" else 80)


def _whose(called: tuple[str, int]) -> str:
    endpoint = os.environ.get(S3_ENDPOINT_ENV, "")
    if endpoint and address(endpoint) == called:
        return f"the artifact store's S3 endpoint {redacted(endpoint)}"
    return f"{called[0]}:{called[1]}, which this run called,"


def _server_failing(uri: str, status: str) -> str:
    return (
        f"the tracking server {redacted(uri)} answers but fails (HTTP {status}): its database is down or "
        "failing; see its log"
    )


def bound_the_retries_after(error: BaseException) -> None:
    """Once a call has spent its retries on a tracking server that failed, every later call of this process
    (marking runs FAILED, releasing the lock, the heartbeat) tries once, briefly: an outage costs one retry
    budget in all, not one per call."""
    if server_trouble(error) is not None:
        os.environ.update(AFTER_AN_OUTAGE)


def _artifact_store_down(uri: str) -> str:
    return f"the tracking server {redacted(uri)} could not reach its artifact store (HTTP 5xx); see its log"


def answers(uri: str, timeout: float = HEALTH_TIMEOUT_SECONDS) -> bool:
    """The tracking server at `uri` answers its /health (any HTTP answer counts) within `timeout`."""
    return not_answering(uri, timeout) is None


def not_answering(uri: str, timeout: float) -> str | None:
    """Why the tracking server at `uri` does not answer its /health within `timeout`; None if it does."""
    health = f"{without_credentials(uri).rstrip('/')}/health"
    try:
        urllib.request.urlopen(health, timeout=timeout).close()
    except urllib.error.HTTPError:
        return None  # it answered
    except (urllib.error.URLError, TimeoutError, OSError, ValueError) as error:
        return str(getattr(error, "reason", error))
    return None


def full_disk(error: BaseException) -> str | None:
    """Where the disk is full, when `error` (or what caused it) says so: a path, or the store."""
    for cause in causes(error):
        if isinstance(cause, OSError) and cause.errno == errno.ENOSPC:
            return _existing_folder(cause.filename) if cause.filename else _full_folder()
        if "database or disk is full" in str(cause):
            return "the disk of the tracking store"
    return None


def _existing_folder(filename: str | bytes) -> str:
    """The folder a failed write was in, or the nearest one that still exists (a temporary folder that
    held the file is often gone by the time the error is shown): where to free space."""
    path = Path(os.fsdecode(filename)).absolute().parent
    while not path.is_dir() and path != path.parent:
        path = path.parent
    return shown_path(str(path))


def _full_folder() -> str:
    """A write error names no file: the folder this process writes to whose disk is full."""
    for folder in (tempfile.gettempdir(), os.getcwd()):
        if shutil.disk_usage(folder).free < FULL_BYTES:
            return folder
    return "the device"


def without_credentials(uri: str) -> str:
    """A URI with no user and password in it: what a request may be sent to."""
    parsed = urlsplit(uri)
    if "@" not in parsed.netloc:
        return uri
    return urlunsplit(parsed._replace(netloc=parsed.netloc.rpartition("@")[2]))
