"""Serve a model as MLflow's REST API, behind the front of serving/front.py:

    python -m serving -m models:/bike-sharing-demand@champion -p 5001

The same endpoints and request formats as `mlflow models serve --env-manager local` (/invocations, /ping,
/health, /version), in the current environment; but a bad, oversized or malformed request gets a short
4xx that names the problem, never an echo of the request or a stack trace.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import tempfile

import mlflow
import uvicorn

from demand.errors import first_line, shown, shown_path
from serving.front import (
    BODY_TIMEOUT_ENV,
    BODY_TIMEOUT_SECONDS,
    MAX_REQUEST_BYTES,
    MAX_REQUEST_BYTES_ENV,
    MODEL_PATH_ENV,
)

log = logging.getLogger("serving")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-m", "--model-uri", required=True, help="e.g. models:/bike-sharing-demand@champion")
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    parser.add_argument("-w", "--workers", type=int, default=1, help="processes; one per core at most")
    parser.add_argument("--max-request-bytes", type=int, default=MAX_REQUEST_BYTES)
    parser.add_argument("--body-timeout", type=float, default=BODY_TIMEOUT_SECONDS, help="seconds")
    args = parser.parse_args()
    limits = (("--port", args.port, 1, 65535), ("--workers", args.workers, 1, 64))
    for flag, value, lowest, highest in (*limits, ("--body-timeout", args.body_timeout, 0.1, 3600)):
        if not lowest <= value <= highest:
            raise SystemExit(f"error: {flag} {value} is outside {lowest}..{highest}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # uvicorn stops on SIGTERM, then raises it again: exit through Python, so the download is removed.
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))
    with tempfile.TemporaryDirectory(prefix="serving-") as download:  # removed when the server stops
        local = downloaded_model(args.model_uri, download)
        log.info("serving %s from %s on http://%s:%d", args.model_uri, local, args.host, args.port)
        os.environ[MODEL_PATH_ENV] = local
        os.environ[MAX_REQUEST_BYTES_ENV] = str(args.max_request_bytes)
        os.environ[BODY_TIMEOUT_ENV] = str(args.body_timeout)
        uvicorn.run(
            "serving.front:create_app", factory=True, host=args.host, port=args.port, workers=args.workers
        )


def downloaded_model(model_uri: str, folder: str) -> str:
    """The model's files, downloaded into `folder`; a one-line exit when they cannot be."""
    try:
        return mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=folder)
    except Exception as error:  # MLflow raises several types for a bad URI, alias or store
        reason = shown(first_line(error), 300)
        raise SystemExit(f"error: cannot load the model {shown_path(model_uri)} ({reason})") from None


if __name__ == "__main__":
    main()
