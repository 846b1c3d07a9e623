"""Benchmark: the champion served by `mlflow models serve` against the same model called in this process.

    (1) Latency of a 1-row POST /invocations (one kept-alive HTTP connection): p50 and p99, next to the
        in-process `predict` of the same row.
    (2) Rows per second of a 1,000-row request, as a ratio of the in-process `predict` of the same rows.

Both sides load the model the same way (pyfunc, skops, pickle disallowed) and run the same record checks.
Requests and in-process calls alternate, so the machine's noise falls on both sides alike.
Needs BIKE_SHARING_DATA.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from bench.pipeline import BIN, hour_csv_from_environment
from demand.schema import model_inputs, parse_hourly, read_csv_text
from plumbing import settings
from plumbing.params import make_plan
from steps.main import run_pipeline

BATCH_ROWS = 1000
NO_PICKLE = {"MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(model_uri: str, environment: dict[str, str], scratch: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    command = [str(BIN / "mlflow"), "models", "serve", "-m", model_uri, "--env-manager", "local"]
    log = (scratch / "serve.log").open("w")
    server = subprocess.Popen(
        [*command, "--host", "127.0.0.1", "--port", str(port)],
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=scratch,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and server.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server, port
        except OSError:
            time.sleep(0.5)
    server.kill()
    sys.exit(f"mlflow models serve did not start:\n{(scratch / 'serve.log').read_text()[-3000:]}")


def post(connection: http.client.HTTPConnection, body: bytes) -> float:
    started = time.perf_counter()
    connection.request("POST", "/invocations", body, {"Content-Type": "application/json"})
    response = connection.getresponse()
    answer = response.read()
    seconds = time.perf_counter() - started
    if response.status != 200:
        sys.exit(f"the server answered {response.status}: {answer[:500]!r}")
    return seconds


def timed_call(predict, frame: pd.DataFrame) -> float:  # noqa: ANN001 -- any callable model
    started = time.perf_counter()
    predict(frame)
    return time.perf_counter() - started


def percentile(values: list[float], share: float) -> float:
    return float(np.percentile(values, share)) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=500, help="1-row requests (default 500)")
    parser.add_argument("--batches", type=int, default=30, help="1,000-row requests (default 30)")
    args = parser.parse_args()
    hour_csv = hour_csv_from_environment()

    scratch = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    uri = f"sqlite:///{scratch / 'mlflow.db'}"
    os.chdir(scratch)
    os.environ |= {"MLFLOW_TRACKING_URI": uri} | NO_PICKLE
    mlflow.set_tracking_uri(uri)
    print(run_pipeline(make_plan(str(hour_csv), "time", "92", "xgb", {})).registry)
    model_uri = f"models:/{settings.parameter_defaults('main')['model_name']}@champion"

    records = model_inputs(parse_hourly(read_csv_text(hour_csv.read_bytes(), str(hour_csv)), str(hour_csv)))
    batch = records.tail(BATCH_ROWS).reset_index(drop=True)
    one = batch.head(1)
    bodies = {
        rows: json.dumps({"dataframe_split": frame.to_dict(orient="split", index=False)}).encode()
        for rows, frame in ((1, one), (BATCH_ROWS, batch))
    }
    environment = os.environ | {"PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    server, port = start_server(model_uri, environment, scratch)
    try:
        model = mlflow.pyfunc.load_model(model_uri)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for _ in range(20):  # warm-up both sides
            post(connection, bodies[1])
            timed_call(model.predict, one)
        served, local = [], []
        for _ in range(args.requests):
            served.append(post(connection, bodies[1]))
            local.append(timed_call(model.predict, one))
        served_batch, local_batch = [], []
        for _ in range(args.batches):
            served_batch.append(post(connection, bodies[BATCH_ROWS]))
            local_batch.append(timed_call(model.predict, batch))
    finally:
        server.terminate()
        server.wait(timeout=30)

    print(f"1-row request, {args.requests} alternating calls (ms):")
    print(f"  served    : p50 {percentile(served, 50):7.2f}  p99 {percentile(served, 99):7.2f}")
    print(f"  in-process: p50 {percentile(local, 50):7.2f}  p99 {percentile(local, 99):7.2f}")
    served_rate = BATCH_ROWS / statistics.median(served_batch)
    local_rate = BATCH_ROWS / statistics.median(local_batch)
    print(f"{BATCH_ROWS}-row request, median of {args.batches} alternating calls:")
    print(f"  served    : {served_rate:10.0f} rows/s")
    print(f"  in-process: {local_rate:10.0f} rows/s")
    print(f"ratio served/in-process rows per second = {served_rate / local_rate:.2f}")


if __name__ == "__main__":
    main()
