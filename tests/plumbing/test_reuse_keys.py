"""docs/reruns.md says what each step's reuse key covers; this checks the table against the keys a real
pipeline run writes (each step run's `pipeline.key_parts` tag), for both splits."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from plumbing import settings
from plumbing.names import KEY_PARTS_TAG, STEPS
from tests.helpers import PROJECT_DIR, pipeline

TABLE_HEADER = "| step | params in its key | inputs in its key |"
EVERY_KEY = {"step", "params", "inputs", "code", "versions"}


def documented_keys() -> dict[str, tuple[set[str], set[str]]]:
    """step -> (the params, the inputs) named in backticks in the table's rows."""
    text = (PROJECT_DIR / "docs" / "reruns.md").read_text()
    assert TABLE_HEADER in text, f"docs/reruns.md has no table headed {TABLE_HEADER}"
    rows = text.split(TABLE_HEADER, 1)[1].strip().splitlines()[1:]
    table = {}
    for row in rows:
        if not row.startswith("|"):
            break
        step, params, inputs = (cell.strip() for cell in row.strip("|").split("|"))
        named = [set(re.findall(r"`([^`]+)`", cell)) for cell in (step, params, inputs)]
        table[named[0].pop()] = (named[1] - {"evaluate"}, named[2])  # evaluate: "config.yaml `evaluate`"
    return table


@pytest.mark.parametrize("split", ["time", "kaggle"])
def test_the_documented_reuse_keys_are_the_keys_the_pipeline_writes(
    client, experiment_id, small_csv: Path, split: str
) -> None:
    test_days = "7" if split == "time" else settings.parameter_defaults("featurize")["test_days"]
    result = pipeline(str(small_csv), split, test_days, "ridge", {"alpha": "1.0"})
    documented = documented_keys()
    assert sorted(documented) == sorted(STEPS)
    for record in result.steps:
        parts = json.loads(client.get_run(record.run_id).data.tags[KEY_PARTS_TAG])
        params, inputs = documented[record.name]
        if record.name == "featurize" and split != "time":
            params = params - {"test_days"}  # the table says: test_days under the time split only
        assert set(parts) == EVERY_KEY
        assert (set(parts["params"]), set(parts["inputs"])) == (params, inputs), record.name
