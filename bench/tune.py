"""Benchmark: how `tune` scales with workers on this machine.

Runs `mlflow run . -e tune -P trials=<n>` with workers=1 and workers=2, alternating, each in a fresh
tracking store, and reads the trials per minute that each tune run logged (finished trials over the
search's wall time, not counting ingest or the final train). Prints the ratio 2 workers / 1 worker.
Trials differ in cost (each run samples its own hyperparameters, and pruning stops some early), so use
enough trials for the mix to even out. Needs BIKE_SHARING_DATA.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

from mlflow import MlflowClient

from bench.pipeline import BIN, PROJECT_DIR, hour_csv_from_environment, timed

WORKERS = (1, 2)


def trials_per_minute(hour_csv: Path, trials: int, workers: int) -> tuple[float, float]:
    """(trials per minute of the search, wall seconds of the whole command) for one tune run."""
    scratch = Path(tempfile.mkdtemp(prefix="bench-tune-"))
    uri = f"sqlite:///{scratch / 'mlflow.db'}"
    environment = os.environ | {"PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "MLFLOW_TRACKING_URI": uri}
    command = [str(BIN / "mlflow"), "run", str(PROJECT_DIR), "-e", "tune", "--env-manager", "local"]
    command += ["-P", f"data={hour_csv}", "-P", f"trials={trials}", "-P", f"workers={workers}"]
    seconds, _ = timed(command, environment, scratch)
    client = MlflowClient(uri)
    (run,) = client.search_runs(
        [e.experiment_id for e in client.search_experiments()], "tags.`mlflow.project.entryPoint` = 'tune'"
    )
    return run.data.metrics["trials_per_minute"], seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    hour_csv = hour_csv_from_environment()
    rates: dict[int, list[float]] = {workers: [] for workers in WORKERS}
    for _ in range(args.rounds):
        for workers in WORKERS:
            rate, seconds = trials_per_minute(hour_csv, args.trials, workers)
            rates[workers].append(rate)
            print(
                f"workers={workers}: {rate:.2f} trials per minute "
                f"({args.trials} trials, {seconds:.0f} s with ingest and the final train)"
            )
    ratio = statistics.median(two / one for one, two in zip(rates[1], rates[2], strict=True))
    print(f"trials per minute, 2 workers / 1 worker = {ratio:.2f}  (on {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
