"""predict reads, checks and scores its input in chunks: the same output as in one piece, and a bad row in
a late chunk still leaves no output file and names its own line."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
import pytest

from demand.errors import PipelineError
from demand.schema import PREDICTION_COLUMN
from plumbing import settings
from steps.predict import predict
from tests.helpers import pipeline


@pytest.fixture
def chunked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(settings.config()["predict"], "chunk_rows", 7)


def run_predict(source: Path, output: Path) -> None:
    with mlflow.start_run():
        defaults = settings.parameter_defaults("predict")
        predict(
            str(source), str(output), "", defaults["model_name"], engine="pandas", spark_master="local[1]"
        )


def test_chunks_give_the_same_predictions_as_one_piece(
    experiment_id: str, small_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline(str(small_csv), "time", "7", "ridge", {})
    whole, pieces = tmp_path / "whole.csv", tmp_path / "pieces.csv"
    run_predict(small_csv, whole)
    monkeypatch.setitem(settings.config()["predict"], "chunk_rows", 7)
    run_predict(small_csv, pieces)
    assert whole.read_bytes() == pieces.read_bytes()
    written = pd.read_csv(pieces)
    assert len(written) == len(pd.read_csv(small_csv)) and written[PREDICTION_COLUMN].notna().all()


def test_a_bad_row_in_a_late_chunk_leaves_no_output(
    experiment_id: str, small_csv: Path, tmp_path: Path, chunked: None
) -> None:
    pipeline(str(small_csv), "time", "7", "ridge", {})
    lines = small_csv.read_text().splitlines()
    fields = lines[-3].split(",")
    fields[5] = "25"  # hr
    lines[-3] = ",".join(fields)
    folder = tmp_path / "batch"
    folder.mkdir()
    source = folder / "records.csv"
    source.write_text("\n".join(lines) + "\n")
    output = folder / "predictions.csv"
    with pytest.raises(
        PipelineError, match=rf"column 'hr' is outside the documented range 0..23 on line {len(lines) - 2} "
    ):
        run_predict(source, output)
    assert sorted(path.name for path in folder.iterdir()) == ["records.csv"], "no output, no partial file"


def test_an_output_that_is_the_input_is_refused_before_it_is_touched(
    experiment_id: str, small_csv: Path
) -> None:
    before = small_csv.read_bytes()
    with pytest.raises(PipelineError, match=r"output .*hour\.csv is the input file; write to another"):
        run_predict(small_csv, small_csv.parent / "." / small_csv.name)
    assert small_csv.read_bytes() == before
