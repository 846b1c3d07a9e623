"""Benchmark: how batch scoring grows with its input.

Writes SYNTHETIC hourly records at 1x, 10x and 100x the UCI size: copies of the UCI calendar, one per
imaginary station, each with its own weather noise (temperature, humidity, wind within the documented
ranges) and its own demand level, so that every record keeps the hour.csv contract. The files are named
`synthetic-<n>x.csv`; they are test load, not data. Then runs `python -m steps.predict` on each with the
champion of a fresh store (the default model), and reports rows/s and peak RSS (the process's own maximum
resident set, from wait4). Targets: time 100x / 1x <= 100, peak RSS 100x / 1x <= 2.

When pyspark is installed (`make install-spark`), the 100x file is scored again with `--engine spark
--spark_master local[2]`, right after the pandas engine: rows/s of each, Spark's time / pandas', and whether
the two wrote the same bytes.

Needs BIKE_SHARING_DATA.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench.pipeline import BIN, PROJECT_DIR, hour_csv_from_environment
from plumbing.files import file_sha256

SCALES = (1, 10, 100)
TIME_TARGET, MEMORY_TARGET = 100, 2
NOISY = {"temp": 0.03, "atemp": 0.03, "hum": 0.05, "windspeed": 0.03}
SPARK = ("--engine", "spark", "--spark_master", "local[2]")


def synthetic(hour: pd.DataFrame, stations: int, path: Path) -> int:
    """`stations` noisy copies of the UCI records, written in pieces so that 100x never sits in memory."""
    rng = np.random.default_rng(stations)
    with path.open("w") as handle:
        for station in range(stations):
            copy = hour.copy()
            for column, spread in NOISY.items():
                copy[column] = (copy[column] + rng.normal(0, spread, len(copy))).clip(0, 1).round(4)
            level = rng.uniform(0.5, 1.5)
            copy["casual"] = (copy["casual"] * level).round().astype(int)
            copy["registered"] = (copy["registered"] * level).round().astype(int)
            copy["cnt"] = copy["casual"] + copy["registered"]
            copy["instant"] = copy["instant"] + station * len(hour)
            copy.to_csv(handle, index=False, header=station == 0)
    return stations * len(hour)


def scored(source: Path, output: Path, environment: dict[str, str], *engine: str) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one `python -m steps.predict` (with `engine`'s arguments)."""
    command = [str(BIN / "python"), "-m", "steps.predict", "--input", str(source), "--output", str(output)]
    command += engine
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=PROJECT_DIR, env=environment, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"predict failed on {source}:\n{process.stderr.read().decode()[-2000:]}")
    return seconds, usage.ru_maxrss / 1024


def champion(hour_csv: Path, environment: dict[str, str]) -> None:
    command = [str(BIN / "python"), "-m", "steps.main", "--data", str(hour_csv)]
    subprocess.run(command, cwd=PROJECT_DIR, env=environment, capture_output=True, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.parse_args()
    hour_csv = hour_csv_from_environment()
    scratch = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    environment = os.environ | {"MLFLOW_TRACKING_URI": f"sqlite:///{scratch / 'mlflow.db'}"}
    champion(hour_csv, environment)
    hour = pd.read_csv(hour_csv)
    results = {}
    for scale in SCALES:
        source = scratch / f"synthetic-{scale}x.csv"
        rows = synthetic(hour, scale, source)
        seconds, peak = scored(source, scratch / f"predicted-{scale}x.csv", environment)
        results[scale] = (seconds, peak)
        speed = f"{rows / seconds:>9,.0f} rows/s"
        print(f"{scale:>4}x {rows:>10,} rows: {seconds:7.1f} s, {speed}, peak RSS {peak:6.0f} MiB")
        if scale == SCALES[-1]:
            spark(source, rows, seconds, scratch / f"predicted-{scale}x.csv", environment)
        source.unlink()
    (t1, m1), (t100, m100) = results[1], results[100]
    print(f"time 100x / 1x = {t100 / t1:.1f}  (target <= {TIME_TARGET})")
    print(f"peak RSS 100x / 1x = {m100 / m1:.2f}  (target <= {MEMORY_TARGET})")


def spark(
    source: Path, rows: int, pandas_seconds: float, pandas_output: Path, environment: dict[str, str]
) -> None:
    """The same file on Spark local[2], right after the pandas engine, when pyspark is installed."""
    if importlib.util.find_spec("pyspark") is None:
        print("spark: pyspark is not installed (make install-spark): not measured")
        return
    output = pandas_output.with_name(f"spark-{pandas_output.name}")
    seconds, _ = scored(source, output, environment, *SPARK)
    same = file_sha256(output) == file_sha256(pandas_output)
    print(f"spark local[2] {rows:>10,} rows: {seconds:7.1f} s, {rows / seconds:>9,.0f} rows/s")
    print(
        f"time spark / pandas = {seconds / pandas_seconds:.2f}; same output bytes: {'yes' if same else 'no'}"
    )


if __name__ == "__main__":
    main()
