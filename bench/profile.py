"""Profile: where a cold pipeline run spends its time, as a pyinstrument call tree.

Runs `python -m steps.main` against a fresh SQLite store in another process, to create the store and warm
the OS file cache, then again with force=true in this process under pyinstrument, so that every step does
its work and every import is paid. Frames under 2% of the whole are left out. The tree starts at
`steps.main`: it leaves out the `mlflow run` CLI in front of it (bench/pipeline.py times that).

    python -m bench.profile [--min-share 0.02] [--html profile.html]

Needs BIKE_SHARING_DATA.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from pyinstrument import Profiler
from pyinstrument.renderers import ConsoleRenderer

from bench.pipeline import PROJECT_DIR, hour_csv_from_environment


def pipeline(hour_csv: Path, *arguments: str) -> None:
    """`python -m steps.main --data <hour_csv> ...`, in this process."""
    from steps import main  # noqa: PLC0415 - imported inside the profile, as part of what it measures

    main.main(["--data", str(hour_csv), *arguments])


def warm_up(hour_csv: Path) -> None:
    """The same pipeline in another process, run in the current folder (where the store's artifacts go)."""
    command = [sys.executable, "-m", "steps.main", "--data", str(hour_csv)]
    environment = os.environ | {"PYTHONPATH": str(PROJECT_DIR)}
    subprocess.run(command, env=environment, capture_output=True, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--min-share", type=float, default=0.02, help="hide frames below this share")
    parser.add_argument("--html", type=Path, help="also write pyinstrument's interactive HTML here")
    args = parser.parse_args()
    hour_csv = hour_csv_from_environment()
    scratch = Path(tempfile.mkdtemp(prefix="bench-profile-"))
    os.chdir(scratch)  # the store's artifacts land here
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{scratch / 'mlflow.db'}"
    warm_up(hour_csv)
    profiler = Profiler(interval=0.001)
    with profiler:
        pipeline(hour_csv, "--force", "true")
    options = {"filter_threshold": args.min_share}
    print(profiler.output(ConsoleRenderer(unicode=True, processor_options=options)))
    if args.html:
        args.html.write_text(profiler.output_html())


if __name__ == "__main__":
    main()
