"""Benchmark: the champion served behind the project's front (`python -m serving`), by plain
`mlflow models serve`, and called in this process.

    (1) Latency of a 1-row POST /invocations (one kept-alive HTTP connection per server): p50 and p99.
    (2) Rows per second of a 1,000-row request, as ratios: front / plain server, served / in-process.

All three load the model the same way (pyfunc, skops, pickle disallowed) and run the same record checks.
The three calls alternate, so the machine's noise falls on all of them alike. Needs BIKE_SHARING_DATA.
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
from demand.csv_text import read_csv_text
from demand.schema import model_inputs, parse_hourly
from plumbing import settings
from plumbing.plan import make_plan
from plumbing.settings import PROJECT_DIR
from steps.main import run_pipeline

BATCH_ROWS = 1000
NO_PICKLE = {"MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


SERVERS = {
    "front": [str(BIN / "python"), "-m", "serving", "-m"],
    "plain": [str(BIN / "mlflow"), "models", "serve", "--env-manager", "local", "-m"],
}


def start_server(
    name: str, model_uri: str, environment: dict[str, str], scratch: Path
) -> tuple[subprocess.Popen, int]:
    port = free_port()
    log = (scratch / f"{name}.log").open("w")
    server = subprocess.Popen(
        [*SERVERS[name], model_uri, "--host", "127.0.0.1", "--port", str(port)],
        env=environment | {"PYTHONPATH": str(PROJECT_DIR)},
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
    sys.exit(f"the {name} server did not start:\n{(scratch / f'{name}.log').read_text()[-3000:]}")


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
    servers = {name: start_server(name, model_uri, environment, scratch) for name in SERVERS}
    try:
        model = mlflow.pyfunc.load_model(model_uri)
        connections = {
            name: http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            for name, (_, port) in servers.items()
        }
        calls = {name: (lambda rows, c=c: post(c, bodies[rows])) for name, c in connections.items()}
        calls["in-process"] = lambda rows: timed_call(model.predict, one if rows == 1 else batch)
        for _ in range(20):  # warm-up
            for call in calls.values():
                call(1)
        single: dict[str, list[float]] = {name: [] for name in calls}
        for _ in range(args.requests):
            for name, call in calls.items():
                single[name].append(call(1))
        batches = {name: [] for name in calls}
        for _ in range(args.batches):
            for name, call in calls.items():
                batches[name].append(call(BATCH_ROWS))
    finally:
        for server, _ in servers.values():
            server.terminate()
            server.wait(timeout=30)

    print(f"1-row request, {args.requests} alternating calls (ms):")
    for name, seconds in single.items():
        print(f"  {name:<10}: p50 {percentile(seconds, 50):7.2f}  p99 {percentile(seconds, 99):7.2f}")
    rates = {name: BATCH_ROWS / statistics.median(seconds) for name, seconds in batches.items()}
    print(f"{BATCH_ROWS}-row request, median of {args.batches} alternating calls:")
    for name, rate in rates.items():
        print(f"  {name:<10}: {rate:10.0f} rows/s")
    front_p50 = percentile(single["front"], 50) / percentile(single["plain"], 50)
    print(
        f"ratio front/plain: 1-row p50 {front_p50:.2f}, rows per second {rates['front'] / rates['plain']:.2f}"
    )
    print(f"ratio served (front)/in-process rows per second = {rates['front'] / rates['in-process']:.2f}")


if __name__ == "__main__":
    main()
