"""Benchmark: the whole pipeline through `mlflow run` against its floor, measured side by side.

    (a) mlflow run . --env-manager local -P force=true   (full UCI data, default model, every step run,
        a warm local tracking store)
    (b) python -m bench.minimal            (load, features, fit, score: nothing else)
    (d) mlflow run of an entry point that does nothing: the fixed cost of the `mlflow run` CLI itself
    (c) with --per-step: one `mlflow run -e <step>` per step, chained by URI, the process-per-step pattern
        this project avoids (it still leaves out the parent process that pattern also needs)

The floor a user cannot avoid is the bare work plus `mlflow run`'s own start-up: (b) + (d). Runs the sides
alternately and reports the medians. Headline: a / (b + d), target <= 1.3.
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

from plumbing.data_source import offline_copy

PROJECT_DIR = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TARGET_RATIO = 1.3


def mlflow_run_command(project: Path) -> list[str]:
    return [str(BIN / "mlflow"), "run", str(project), "--env-manager", "local", "--experiment-name", "bench"]


def timed(command: list[str], environment: dict[str, str], cwd: Path) -> tuple[float, str]:
    started = time.perf_counter()
    result = subprocess.run(command, env=environment, cwd=cwd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"benchmark command failed: {' '.join(command)}\n{result.stderr[-2000:]}")
    return seconds, result.stdout + result.stderr


def per_step(command: list[str], data: Path, environment: dict[str, str], cwd: Path) -> tuple[float, str]:
    """(c): each step in its own `mlflow run`, the next one given the URI the last one logged."""
    started = time.perf_counter()
    _, log = timed([*command, "-e", "ingest", "-P", f"data={data}"], environment, cwd)
    table = f"runs:/{_run_id(log)}/data/hour.parquet"
    _, log = timed([*command, "-e", "featurize", "-P", f"table={table}"], environment, cwd)
    features = f"runs:/{_run_id(log)}/features"
    _, log = timed([*command, "-e", "train", "-P", f"features={features}"], environment, cwd)
    model_uri = re.search(r"Trained \w+ on \d+ rows: (\S+)", log).group(1)
    _, log = timed(
        [*command, "-e", "evaluate", "-P", f"features={features}", "-P", f"model_uri={model_uri}"],
        environment,
        cwd,
    )
    return time.perf_counter() - started, log


def _run_id(log: str) -> str:
    return re.search(r"Run \(ID '(\w+)'\) succeeded", log).group(1)


def hour_csv_from_environment() -> Path:
    """The hour.csv of the offline copy that BIKE_SHARING_DATA names (the file, or a folder holding it);
    exit if none."""
    data = offline_copy() or Path("")
    hour_csv = data / "hour.csv" if data.is_dir() else data
    if not hour_csv.is_file():
        sys.exit("set BIKE_SHARING_DATA to the UCI data (a folder holding hour.csv, or hour.csv)")
    return hour_csv.resolve()  # the benchmarks run in folders of their own


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each side (default 3)")
    parser.add_argument("--per-step", action="store_true", help="also time (c), a process per step")
    args = parser.parse_args()
    hour_csv = hour_csv_from_environment()
    scratch = Path(tempfile.mkdtemp(prefix="bench-"))
    environment = os.environ | {
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "MLFLOW_TRACKING_URI": f"sqlite:///{scratch / 'mlflow.db'}",
        "BIKE_SHARING_DATA": str(hour_csv),
    }
    pipeline = mlflow_run_command(PROJECT_DIR)
    every_step = [*pipeline, "-P", "force=true"]  # timed runs do all the work: nothing is reused
    minimal = [sys.executable, "-m", "bench.minimal", str(hour_csv)]
    nothing = mlflow_run_command(_noop_project(scratch))

    timed(pipeline, environment, scratch)  # warm-up: creates the tracking store, fills the OS file cache
    times: dict[str, list[float]] = {"a": [], "b": [], "d": []} | ({"c": []} if args.per_step else {})
    for _ in range(args.repeat):
        seconds, pipeline_output = timed(every_step, environment, scratch)
        times["a"].append(seconds)
        seconds, minimal_output = timed(minimal, environment, PROJECT_DIR)
        times["b"].append(seconds)
        times["d"].append(timed(nothing, environment, scratch)[0])
        if args.per_step:
            times["c"].append(per_step(pipeline, hour_csv, environment, scratch)[0])

    pipeline_rmse = re.search(r"Holdout: RMSE ([\d.]+)", pipeline_output).group(1)
    minimal_rmse = float(re.search(r"rmse=([\d.]+)", minimal_output).group(1))
    labels = {
        "a": "mlflow run . --env-manager local",
        "b": "minimal script, no MLflow",
        "d": "mlflow run of a no-op entry point",
        "c": "one mlflow run per step",
    }
    median = {key: statistics.median(values) for key, values in times.items()}
    for key, values in times.items():
        print(f"({key}) {labels[key]:<34}: median {median[key]:6.2f} s  runs {_seconds(values)}")
    print(f"holdout RMSE: pipeline {pipeline_rmse}, minimal {minimal_rmse:.1f}")
    floor = median["b"] + median["d"]
    print(f"ratio a/(b+d) = {median['a'] / floor:.2f}  (over its floor; target <= {TARGET_RATIO})")
    print(f"ratio a/b = {median['a'] / median['b']:.2f}  (over the bare work alone)")
    if args.per_step:
        print(f"ratio c/a = {median['c'] / median['a']:.2f}  (the process-per-step pattern over this one)")


def _noop_project(scratch: Path) -> Path:
    project = scratch / "noop"
    project.mkdir()
    (project / "MLproject").write_text('name: noop\nentry_points:\n  main:\n    command: "true"\n')
    return project


def _seconds(values: list[float]) -> str:
    return ", ".join(f"{value:.2f}" for value in values)


if __name__ == "__main__":
    main()
