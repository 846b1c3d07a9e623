"""A served champion for the e2e tests: `python -m serving` as a user starts it, and requests as a client
sends them."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

from demand.csv_text import read_csv_text
from demand.schema import model_inputs, parse_hourly
from plumbing import settings
from tests.helpers import PROJECT_DIR, cli_environment, free_port, wait_until_healthy

CHAMPION_URI = f"models:/{settings.parameter_defaults('main')['model_name']}@champion"
NO_PICKLE = {"MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false"}


def last_two_hours(real_data: Path) -> list[dict]:
    """The last two records of hour.csv as a client sends them: without the counts."""
    raw = read_csv_text((real_data / "hour.csv").read_bytes(), "hour.csv").tail(2)
    records = model_inputs(parse_hourly(raw, "hour.csv"))
    return json.loads(records.to_json(orient="records"))


@contextmanager
def serving(uri: str, log_path: Path, *flags: str, **environment: str) -> Iterator[str]:
    """`python -m serving` on the champion of the store at `uri`, on a free port, until the block ends."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "serving",
        "-m",
        CHAMPION_URI,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    command += flags
    with log_path.open("w") as log:
        server = subprocess.Popen(
            command,
            env=cli_environment(uri) | NO_PICKLE | environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=PROJECT_DIR,
        )
        try:
            wait_until_healthy(f"http://127.0.0.1:{port}/ping", server, log_path)
            yield f"http://127.0.0.1:{port}"
        finally:
            server.terminate()
            server.wait(timeout=30)


def post(
    url: str,
    body: bytes | Iterable[bytes],
    content_type: str = "application/json",
    path: str = "/invocations",
) -> tuple[int, str]:
    """POST `body` (bytes, or chunks sent with chunked encoding); the status and the answer."""
    connection = http.client.HTTPConnection(urlparse(url).netloc, timeout=120)
    try:
        chunked = not isinstance(body, bytes)
        connection.request(
            "POST", path, body=body, headers={"Content-Type": content_type}, encode_chunked=chunked
        )
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()
