"""A logged model carries exactly the project code that scoring runs: its code folder holds the modules
that loading it and predicting import, and nothing else (no download code, plots, reports or tuning)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import mlflow

from demand.models import fit
from demand.schema import model_inputs, parse_hourly
from plumbing import settings
from plumbing.code import PACKAGES, shipped_files
from serving.model import SCORING_MODULES, ShippedCode, log_model
from tests.domain.test_models import SHIPPED, SMALL
from tests.synthetic import hourly_table

# Loads the model from its folder, in a process whose only project code is the model's own, scores three
# records and prints the project modules that were imported, with their files relative to the code folder.
SCORE_AND_LIST = """
import io, json, sys
import mlflow.pyfunc
import pandas as pd
model = mlflow.pyfunc.load_model(sys.argv[1])
model.predict(pd.read_json(io.StringIO(sys.argv[2]), orient="split", dtype=False))
packages = tuple(sys.argv[3].split(","))
print(json.dumps(sorted(
    name for name, module in sys.modules.items()
    if name.split(".")[0] in packages and getattr(module, "__file__", None)
)))
"""


def test_the_model_carries_exactly_the_code_it_scores_with(experiment_id: str, tmp_path: Path) -> None:
    table = parse_hourly(hourly_table(days=14).astype(str), "hour.csv")
    pipeline = fit(table, "xgb", SMALL["xgb"], seed=0, target=SHIPPED)
    code = ShippedCode(settings.PROJECT_DIR, shipped_files(SCORING_MODULES))
    with mlflow.start_run():
        info = log_model(pipeline, model_inputs(table).head(5), "model", code, settings.REQUIREMENTS_FILE)
    local = Path(mlflow.artifacts.download_artifacts(info.model_uri, dst_path=str(tmp_path / "model")))
    carried = {path.relative_to(local / "code").as_posix() for path in (local / "code").rglob("*.py")}
    records = model_inputs(table).head(3).to_json(orient="split", index=False)
    elsewhere = tmp_path / "elsewhere"  # no project code on the path but the model's own
    elsewhere.mkdir()
    listed = subprocess.run(
        [sys.executable, "-c", SCORE_AND_LIST, str(local), records, ",".join(PACKAGES)],
        cwd=elsewhere,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr[-2000:]
    imported = json.loads(listed.stdout.strip().splitlines()[-1])
    as_files = {
        f"{name.replace('.', '/')}/__init__.py"
        if name in ("serving", "demand")
        else f"{name.replace('.', '/')}.py"
        for name in imported
    }
    assert carried == as_files, f"carried but never imported: {carried - as_files}; imported: {imported}"
    assert not {"demand/plots.py", "demand/tuning.py", "demand/report.py", "demand/hourly.py"} & carried
