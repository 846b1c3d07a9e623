"""Benchmark: what `mlflow run` pays to build this project's environment, with virtualenv and with uv.

    cold: `mlflow run . -e ingest --env-manager <m> -P data=<hour.csv>` as a fresh machine pays it: a new
          MLFLOW_ENV_ROOT (where MLflow keeps the environments it builds for virtualenv and uv, named by
          the hash of python_env.yaml and requirements.txt, not by the manager), empty package caches
          (PIP_CACHE_DIR, UV_CACHE_DIR, and UV_PYTHON_INSTALL_DIR for any Python uv would download) and a
          new SQLite tracking store. `ingest` is the cheapest entry point that imports the whole stack
          (mlflow, pandas, pyarrow) in the built environment.
    warm: the same command again, right after, on the same root: MLflow finds the environment and reuses it.

Each round measures both managers, alternating which goes first; each measurement gets its own scratch
folder, removed afterwards (an environment is 700-950 MB). Prints every time, the medians, and the ratios
uv / virtualenv, cold and warm. Decision: the faster cold build is the `make run` default (ENV_MANAGER in
the Makefile). pip writes .pyc files at install and uv does not unless UV_COMPILE_BYTECODE=1, which the
Makefile sets and this benchmark sets too: where PYTHONDONTWRITEBYTECODE is set (as on this project's
machines), every run in a uv environment without them compiles its imports again, which shows in the warm
times; `--uv-without-bytecode` measures uv's own default.

Needs BIKE_SHARING_DATA; pyenv with the Python of python_env.yaml (virtualenv builds with that Python's
`-m venv` and pip; uv finds the same Python on PATH); `uv` on PATH (this venv's, requirements-dev.txt);
the package index. pip reads pip.conf; uv reads none of it, and trusts a proxy that re-signs the index's
TLS certificate only through SSL_CERT_FILE (or UV_SYSTEM_CERTS).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from mlflow import MlflowClient

from bench.pipeline import BIN, PROJECT_DIR, hour_csv_from_environment, timed

MANAGERS = ("virtualenv", "uv")
# What MLflow logs when it builds an environment, and when it finds one already built.
BUILT = "Creating a new environment in"
REUSED = "already exists"


def scratch_environment(scratch: Path, hour_csv: Path) -> dict[str, str]:
    """This process's environment with every place a build reads or fills moved into `scratch`."""
    environment = os.environ | {
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "MLFLOW_TRACKING_URI": f"sqlite:///{scratch / 'mlflow.db'}",
        "MLFLOW_ENV_ROOT": str(scratch / "envs"),
        "PIP_CACHE_DIR": str(scratch / "pip-cache"),
        "UV_CACHE_DIR": str(scratch / "uv-cache"),
        "UV_PYTHON_INSTALL_DIR": str(scratch / "uv-python"),
        "BIKE_SHARING_DATA": str(hour_csv),
    }
    for name in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", "VIRTUAL_ENV"):
        environment.pop(name, None)
    return environment


def check_run(output: str, tracking_uri: str, manager: str, expected: str) -> None:
    """Exit with the end of the log unless the run FINISHED in an environment that `manager` built or
    reused, as `expected` says."""
    found = re.search(r"Run \(ID '(\w+)'\) succeeded", output)
    problem = "" if found else "no 'Run (ID ...) succeeded' line"
    if found:
        run = MlflowClient(tracking_uri).get_run(found.group(1))
        built_by = run.data.tags.get("mlflow.project.env")
        if run.info.status != "FINISHED":
            problem = f"run {run.info.run_id} is {run.info.status}"
        elif built_by != manager:
            problem = f"run {run.info.run_id} has mlflow.project.env {built_by}"
        elif expected not in output:
            problem = f"MLflow did not log '{expected}'"
    if problem:
        sys.exit(f"--env-manager {manager}: {problem}\n{output[-3000:]}")


def megabytes(*folders: Path) -> float:
    """Disk used by the files under `folders`, each hard link counted once (uv links its cache into the
    environment)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for folder in folders:
        for path in folder.rglob("*") if folder.is_dir() else ():
            status = path.lstat()
            if (status.st_dev, status.st_ino) not in seen:
                seen.add((status.st_dev, status.st_ino))
                total += status.st_blocks * 512
    return total / 1e6


def measure(manager: str, hour_csv: Path, extra: dict[str, str]) -> tuple[float, float, str]:
    """(cold seconds, warm seconds, what the build used) for one manager in a fresh scratch folder."""
    scratch = Path(tempfile.mkdtemp(prefix=f"bench-envs-{manager}-"))
    try:
        environment = scratch_environment(scratch, hour_csv) | extra
        tracking_uri = environment["MLFLOW_TRACKING_URI"]
        command = [str(BIN / "mlflow"), "run", str(PROJECT_DIR), "-e", "ingest", "--env-manager", manager]
        command += ["--experiment-name", "bench-envs", "-P", f"data={hour_csv}"]
        cold, output = timed(command, environment, scratch)
        check_run(output, tracking_uri, manager, BUILT)
        warm, output = timed(command, environment, scratch)
        check_run(output, tracking_uri, manager, REUSED)
        (config,) = (scratch / "envs").glob("*/pyvenv.cfg")
        home = re.search(r"^home = (.+)$", config.read_text(), re.MULTILINE).group(1)
        caches = [scratch / name for name in ("pip-cache", "uv-cache", "uv-python")]
        sizes = f"env {megabytes(config.parent):.0f} MB, caches {megabytes(*caches):.0f} MB"
        compiled = sum(1 for _ in config.parent.rglob("*.pyc"))
        return cold, warm, f"python {home}; {sizes}; {compiled} .pyc files"
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def make_default() -> str:
    """The ENV_MANAGER the Makefile's `make run` uses when none is given."""
    found = re.search(r"^ENV_MANAGER \?= *(\S+)", (PROJECT_DIR / "Makefile").read_text(), re.MULTILINE)
    return found.group(1) if found else "?"


def ratio_line(label: str, median: dict[str, float]) -> str:
    ratio = median["uv"] / median["virtualenv"]
    faster, factor = ("uv", 1 / ratio) if ratio < 1 else ("virtualenv", ratio)
    return f"ratio uv/virtualenv, {label:<28}= {ratio:.2f}  ({faster} is faster, {factor:.2f}x)"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=2, help="cold+warm pairs per manager (default 2)")
    parser.add_argument(
        "--uv-without-bytecode",
        action="store_true",
        help="uv without UV_COMPILE_BYTECODE=1 (which `make run` sets): no .pyc files at install",
    )
    args = parser.parse_args()
    compile_bytecode = "0" if args.uv_without_bytecode else "1"
    extra = {"uv": {"UV_COMPILE_BYTECODE": compile_bytecode}, "virtualenv": {}}
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        print(
            "note: PYTHONDONTWRITEBYTECODE is set, so Python writes no .pyc files when it imports: an "
            "environment installed without them (uv's default) compiles its imports again on every run"
        )
    hour_csv = hour_csv_from_environment()
    for tool, manager in (("uv", "uv"), ("pyenv", "virtualenv")):
        if shutil.which(tool, path=f"{BIN}{os.pathsep}{os.environ['PATH']}") is None:
            sys.exit(f"{tool} is not on PATH: --env-manager {manager} needs it")
    cold: dict[str, list[float]] = {manager: [] for manager in MANAGERS}
    warm: dict[str, list[float]] = {manager: [] for manager in MANAGERS}
    for index in range(args.rounds):
        order = MANAGERS if index % 2 == 0 else MANAGERS[::-1]
        for manager in order:
            cold_seconds, warm_seconds, used = measure(manager, hour_csv, extra[manager])
            cold[manager].append(cold_seconds)
            warm[manager].append(warm_seconds)
            print(
                f"round {index + 1} {manager:<10}: cold {cold_seconds:6.1f} s, warm {warm_seconds:5.1f} s"
                f"  ({used})",
                flush=True,
            )
    median_cold = {manager: statistics.median(values) for manager, values in cold.items()}
    median_warm = {manager: statistics.median(values) for manager, values in warm.items()}
    build = {manager: median_cold[manager] - median_warm[manager] for manager in MANAGERS}
    for manager in MANAGERS:
        print(
            f"{manager:<10}: cold median {median_cold[manager]:6.1f} s ({_seconds(cold[manager])}), "
            f"warm median {median_warm[manager]:5.1f} s ({_seconds(warm[manager])}), "
            f"cold - warm {build[manager]:6.1f} s"
        )
    print(ratio_line("cold (fresh machine)", median_cold))
    print(ratio_line("warm (environment reused)", median_warm))
    print(ratio_line("cold - warm (the build)", build))
    faster = "uv" if median_cold["uv"] < median_cold["virtualenv"] else "virtualenv"
    current = make_default()
    verdict = "already is" if current == faster else f"is {current}: change it to"
    print(f"decision: the faster one is the `make run` default; ENV_MANAGER {verdict} {faster}")
    other = "virtualenv" if faster == "uv" else "uv"
    penalty = median_warm[faster] - median_warm[other]
    if penalty > 0:
        runs = (median_cold[other] - median_cold[faster]) / penalty
        print(
            f"  but each run with a built environment costs {penalty:.1f} s more with {faster}: "
            f"{other} catches up after about {runs:.0f} runs with the same environment"
        )


def _seconds(values: list[float]) -> str:
    return ", ".join(f"{value:.1f}" for value in values)


if __name__ == "__main__":
    main()
