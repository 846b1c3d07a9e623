"""Benchmark: the whole pipeline through `mlflow run` against a script that does the same work without MLflow.

    (a) mlflow run . --env-manager local   (full UCI data, default model, a warm local tracking store)
    (b) python -m bench.minimal            (load, features, fit, score: nothing else)

Runs them alternately, reports the medians and the ratio a/b. Target: a/b <= 1.5.
Needs BIKE_SHARING_DATA (a folder with hour.csv, or hour.csv itself).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TARGET_RATIO = 1.5


def timed(command: list[str], environment: dict[str, str], cwd: Path) -> tuple[float, str]:
    started = time.perf_counter()
    result = subprocess.run(command, env=environment, cwd=cwd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"benchmark command failed: {' '.join(command)}\n{result.stderr[-2000:]}")
    return seconds, result.stdout


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each side (default 3)")
    args = parser.parse_args()
    data = Path(os.environ.get("BIKE_SHARING_DATA", ""))
    hour_csv = data / "hour.csv" if data.is_dir() else data
    if not hour_csv.is_file():
        sys.exit("set BIKE_SHARING_DATA to the UCI data (a folder holding hour.csv, or hour.csv)")
    scratch = Path(tempfile.mkdtemp(prefix="bench-"))
    environment = os.environ | {
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "MLFLOW_TRACKING_URI": f"sqlite:///{scratch / 'mlflow.db'}",
        "BIKE_SHARING_DATA": str(hour_csv),
    }
    pipeline = [
        str(BIN / "mlflow"),
        "run",
        str(PROJECT_DIR),
        "--env-manager",
        "local",
        "--experiment-name",
        "bench",
    ]
    minimal = [sys.executable, "-m", "bench.minimal", str(hour_csv)]

    timed(pipeline, environment, scratch)  # warm-up: creates the tracking store, fills the OS file cache
    pipeline_seconds, minimal_seconds = [], []
    for _ in range(args.repeat):
        seconds, pipeline_output = timed(pipeline, environment, scratch)
        pipeline_seconds.append(seconds)
        seconds, minimal_output = timed(minimal, environment, PROJECT_DIR)
        minimal_seconds.append(seconds)

    pipeline_rmse = re.search(r"Holdout: RMSE ([\d.]+)", pipeline_output).group(1)
    minimal_rmse = float(re.search(r"rmse=([\d.]+)", minimal_output).group(1))
    a, b = statistics.median(pipeline_seconds), statistics.median(minimal_seconds)
    print(f"(a) mlflow run . --env-manager local : median {a:6.2f} s  runs {_seconds(pipeline_seconds)}")
    print(f"(b) minimal script, no MLflow        : median {b:6.2f} s  runs {_seconds(minimal_seconds)}")
    print(f"holdout RMSE: pipeline {pipeline_rmse}, minimal {minimal_rmse:.1f}")
    print(f"ratio a/b = {a / b:.2f}  (target <= {TARGET_RATIO})")


def _seconds(values: list[float]) -> str:
    return ", ".join(f"{value:.2f}" for value in values)


if __name__ == "__main__":
    main()
