"""Benchmark: what a scheduled rerun costs.

    (1) scripts/rerun, the scheduled rerun, on the full data: the first (cold) run in a fresh tracking
        store, then the same command again with nothing changed (every step reused). Ratio reused/cold,
        target <= 0.35. Repeated in fresh stores; the median ratio is reported. For comparison, the same
        pair through `mlflow run . --env-manager local`, which starts MLflow in two processes.
    (2) The cache lookup `main` does per step (a server-side search on the key tag, then a check that
        the outputs exist) in an experiment holding 50 runs and one holding 5,000. Ratio 5,000/50,
        target <= 1.5.

Needs BIKE_SHARING_DATA for (1).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from mlflow import MlflowClient

from bench.pipeline import BIN, PROJECT_DIR, hour_csv_from_environment, mlflow_run_command, timed
from plumbing.names import CACHE_KEY_TAG, ENTRY_POINT_TAG, OUTPUT_DIGEST_TAG, OUTPUTS_TAG, STEPS
from plumbing.pipeline.cache import find_reusable
from plumbing.pipeline.keys import key_tags

RERUN_TARGET = 0.35
LOOKUP_TARGET = 1.5
SIZES = (50, 5000)


def rerun_ratio(hour_csv: Path, rounds: int) -> None:
    commands = {
        "scripts/rerun": [str(PROJECT_DIR / "scripts" / "rerun")],
        "mlflow run": mlflow_run_command(PROJECT_DIR),
    }
    seconds: dict[str, dict[str, list[float]]] = {name: {"cold": [], "reused": []} for name in commands}
    for _ in range(rounds):
        for name, command in commands.items():
            scratch = Path(tempfile.mkdtemp(prefix="bench-rerun-"))
            environment = os.environ | {
                "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
                "MLFLOW_TRACKING_URI": f"sqlite:///{scratch / 'mlflow.db'}",
                "BIKE_SHARING_DATA": str(hour_csv),
            }
            cold, _ = timed(command, environment, scratch)
            reused, output = timed(command, environment, scratch)
            if output.count(" reused ") != len(STEPS):
                sys.exit(f"the rerun did not reuse every step:\n{output[-2000:]}")
            seconds[name]["cold"].append(cold)
            seconds[name]["reused"].append(reused)
    for name, times in seconds.items():
        ratio = statistics.median(r / c for r, c in zip(times["reused"], times["cold"], strict=True))
        target = f"; target <= {RERUN_TARGET}" if name == "scripts/rerun" else ""
        print(f"{name:<13} cold {_listed(times['cold'])} s, fully reused {_listed(times['reused'])} s")
        print(f"{'':<13} ratio reused/cold = {ratio:.2f}  (median of {rounds}{target})")


def _listed(values: list[float]) -> str:
    return ", ".join(f"{value:.2f}" for value in values)


def lookup_store(runs: int) -> tuple[MlflowClient, str, str]:
    """A fresh store whose experiment holds `runs` finished step runs; returns it and a key that hits."""
    scratch = Path(tempfile.mkdtemp(prefix="bench-lookup-"))
    client = MlflowClient(f"sqlite:///{scratch / 'mlflow.db'}")
    experiment_id = client.create_experiment("lookup", artifact_location=(scratch / "artifacts").as_uri())
    target_key = ""
    for index in range(runs):
        key = uuid.uuid4().hex
        run = client.create_run(
            experiment_id, tags={**key_tags("featurize", key, {}), ENTRY_POINT_TAG: "featurize"}
        )
        client.set_tag(
            run.info.run_id, OUTPUTS_TAG, json.dumps({"features": f"runs:/{run.info.run_id}/features"})
        )
        client.set_tag(run.info.run_id, OUTPUT_DIGEST_TAG, key)
        if index == runs // 2:  # a hit in the middle of the history, with real artifacts to check
            target_key = key
            features = scratch / "features"
            features.mkdir()
            (features / "train.parquet").write_bytes(b"x")
            client.log_artifacts(run.info.run_id, str(features), "features")
        client.set_terminated(run.info.run_id, "FINISHED")
    return client, experiment_id, target_key


def lookup_ratios(repeats: int) -> None:
    """Hit and miss lookups, alternating between the small and the large experiment."""
    stores = {size: lookup_store(size) for size in SIZES}
    kinds = ("hit", "miss", "value")
    seconds: dict[tuple[int, str], list[float]] = {(size, kind): [] for size in SIZES for kind in kinds}
    for _ in range(repeats):
        for size, (client, experiment_id, hit_key) in stores.items():
            for kind, key in (("hit", hit_key), ("miss", uuid.uuid4().hex)):
                started = time.perf_counter()
                found = find_reusable(client, experiment_id, "featurize", key)
                seconds[size, kind].append(time.perf_counter() - started)
                assert (found is not None) == (kind == "hit")
            started = time.perf_counter()  # for comparison: a miss searched by the key tag's value
            client.search_runs(
                [experiment_id], f"tags.`{CACHE_KEY_TAG}` = '{uuid.uuid4().hex}'", max_results=10
            )
            seconds[size, "value"].append(time.perf_counter() - started)
    median = {entry: statistics.median(values) for entry, values in seconds.items()}
    small, large = SIZES
    for size in SIZES:
        times = ", ".join(f"{kind} {median[size, kind] * 1000:5.1f} ms" for kind in kinds)
        print(f"lookup with {size:>5} runs: {times}")
    ratio = {kind: median[large, kind] / median[small, kind] for kind in kinds}
    target = f"(target <= {LOOKUP_TARGET})"
    print(f"ratio {large}/{small}: hit {ratio['hit']:.2f}, miss {ratio['miss']:.2f}  {target}")
    print(f"  for comparison, a search on the {CACHE_KEY_TAG} value: {ratio['value']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3, help="fresh stores for (1) (default 3)")
    parser.add_argument(
        "--repeat", type=int, default=100, help="lookups timed per size for (2) (default 100)"
    )
    parser.add_argument("--skip-rerun", action="store_true", help="only (2)")
    args = parser.parse_args()
    if not args.skip_rerun:
        hour_csv = hour_csv_from_environment()
        rerun_ratio(hour_csv, args.rounds)
    lookup_ratios(args.repeat)


if __name__ == "__main__":
    main()
