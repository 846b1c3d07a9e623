"""Scheduled reruns in this process: what is reused and what reruns, reused outputs, deleted artifacts,
and growing data."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd
import pytest

from plumbing.names import CACHE_KEY_TAG, OUTPUT_DIGEST_TAG, OUTPUTS_TAG, REUSED_FROM_TAG
from tests.helpers import ALL_RAN, ALL_REUSED, PROJECT_DIR, actions, cli_environment, pipeline
from tests.synthetic import hourly_table, write_csv

SMALL_XGB = {"n_estimators": "30", "bagged_seeds": "1"}


def test_reuse_truth_table(client, experiment_id, tmp_path: Path) -> None:
    data = write_csv(hourly_table(days=42), tmp_path / "hour.csv")

    def rerun(overrides: dict[str, str] = SMALL_XGB, force: str = "false") -> dict[str, str]:
        result = pipeline(str(data), "time", "7", "xgb", overrides, force)
        return actions(client, result.run_id)

    assert rerun() == ALL_RAN
    assert rerun() == ALL_REUSED, "nothing changed: everything is reused"
    assert rerun({"n_estimators": "40"}) == {
        "ingest": "reused",
        "featurize": "reused",
        "train": "ran",
        "evaluate": "ran",
        "register": "ran",
    }
    assert rerun(force="train") == {
        "ingest": "reused",
        "featurize": "reused",
        "train": "ran",
        "evaluate": "ran",
        "register": "ran",
    }
    assert rerun(force="true") == ALL_RAN
    write_csv(hourly_table(days=43), data)  # one more day at the same path
    assert rerun() == ALL_RAN, "new data: everything reruns"

    reused = client.search_runs([experiment_id], f"tags.`{REUSED_FROM_TAG}` != ''")
    assert reused and all(run.data.tags[CACHE_KEY_TAG] for run in reused)
    sources = {run.data.tags[REUSED_FROM_TAG] for run in reused}
    assert all(REUSED_FROM_TAG not in client.get_run(source).data.tags for source in sources), (
        "reuse points at work"
    )


def test_a_reused_step_hands_on_the_outputs_of_the_run_that_did_the_work(
    client, experiment_id, small_csv: Path
) -> None:
    first = pipeline(str(small_csv), "time", "7", "xgb", SMALL_XGB)
    second = pipeline(str(small_csv), "time", "7", "xgb", SMALL_XGB)
    assert all(step.action == "reused" and step.why.startswith("same key as run") for step in second.steps)
    for before, after in zip(first.steps, second.steps, strict=True):
        original, marker = client.get_run(before.run_id).data.tags, client.get_run(after.run_id).data.tags
        assert marker[REUSED_FROM_TAG] == before.run_id
        assert marker[OUTPUTS_TAG] == original[OUTPUTS_TAG], f"{before.name}: the same model and tables"
        assert marker[OUTPUT_DIGEST_TAG] == original[OUTPUT_DIGEST_TAG]


HEAVY_LIBRARIES = ("sklearn", "xgboost", "skops", "matplotlib")  # not scipy: `import mlflow` imports it


def test_a_reused_rerun_imports_no_modelling_or_plotting_library(
    tracking_uri, experiment_id, small_csv: Path
) -> None:
    pipeline(str(small_csv), "time", "7", "ridge", {})
    command = [sys.executable, "-X", "importtime", "-m", "steps.main", "--data", str(small_csv)]
    rerun = subprocess.run(
        [*command, "--test_days", "7", "--model", "ridge"],
        env=cli_environment(tracking_uri),
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert rerun.stdout.count(" reused ") == len(ALL_REUSED), rerun.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in rerun.stderr.splitlines() if "|" in line}
    assert imported, "python -X importtime lists every import"
    assert sorted({name.split(".")[0] for name in imported} & set(HEAVY_LIBRARIES)) == []


def test_deleted_artifacts_are_not_reused(client, experiment_id, small_csv: Path) -> None:
    first = pipeline(str(small_csv), "time", "7", "xgb", SMALL_XGB)
    featurize_run = next(step.run_id for step in first.steps if step.name == "featurize")
    shutil.rmtree(Path(urlparse(client.get_run(featurize_run).info.artifact_uri).path) / "features")
    second = pipeline(str(small_csv), "time", "7", "xgb", SMALL_XGB)
    assert actions(client, second.run_id)["featurize"] == "ran"
    assert actions(client, second.run_id)["ingest"] == "reused"
    # featurize wrote the same bytes again, so what depends only on them is still reused
    assert actions(client, second.run_id)["train"] == "reused"


@pytest.mark.real_data
def test_growing_data_moves_the_test_window(client, experiment_id, real_data: Path, tmp_path: Path) -> None:
    hour_csv = real_data / "hour.csv" if real_data.is_dir() else real_data
    full = pd.read_csv(hour_csv, dtype=str)
    data = tmp_path / "hour.csv"
    full[full["dteday"] <= "2012-09-30"].to_csv(data, index=False)
    first = pipeline(str(data), "time", "92", "xgb", SMALL_XGB)
    shutil.copyfile(hour_csv, data)  # the source gained Q4 2012
    second = pipeline(str(data), "time", "92", "xgb", SMALL_XGB)
    assert actions(client, second.run_id) == ALL_RAN
    periods = [
        client.get_run(next(s.run_id for s in result.steps if s.name == "featurize")).data.params[
            "test_period"
        ]
        for result in (first, second)
    ]
    assert periods == ["2012-07-01..2012-09-30", "2012-10-01..2012-12-31"]
