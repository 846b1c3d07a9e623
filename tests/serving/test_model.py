"""The logged model's own code: records checked before predicting, messages the scoring server cannot
rewrite, and skops files loaded with a fixed allow-list of types, never with pickle."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import skops.io
from mlflow.exceptions import MlflowException

from demand.models import MODELS, fit
from demand.schema import MODEL_INPUT_COLUMNS, model_inputs, parse_hourly
from serving.model import BikeDemandModel, InvalidRecords, checked_records, load_pipeline, save_pipeline
from tests.domain.test_models import SHIPPED, SMALL
from tests.synthetic import hourly_table


@pytest.fixture(scope="module")
def table():
    return parse_hourly(hourly_table(days=14).astype(str), "hour.csv")


@pytest.mark.parametrize("model", MODELS)
def test_every_model_saves_and_loads_with_the_allow_list(table, model: str, tmp_path: Path) -> None:
    pipeline = fit(table, model, SMALL[model], seed=0, target=SHIPPED)
    saved = tmp_path / "model.skops"
    save_pipeline(pipeline, saved)
    loaded = BikeDemandModel(load_pipeline(saved))
    np.testing.assert_allclose(
        loaded.predict(model_inputs(table)), pipeline.predict(model_inputs(table)), rtol=1e-12
    )


def test_a_bad_record_is_invalid_records_naming_the_rule(table) -> None:
    records = model_inputs(table).head(3).assign(hr=[1, 99, 2])
    with pytest.raises(
        InvalidRecords, match=r"column 'hr' is outside the documented range 0..23 on record 2"
    ):
        checked_records(records)


def test_checked_records_keep_their_order_and_drop_counts() -> None:
    frame = hourly_table(days=1).iloc[::-1]
    checked = checked_records(frame)
    assert list(checked.columns) == list(MODEL_INPUT_COLUMNS)
    assert checked["hr"].tolist() == list(range(23, -1, -1))


def test_invalid_records_keep_their_message_when_the_server_rewrites_it() -> None:
    error = InvalidRecords("request: column 'hr' is outside the documented range 0..23 on record 1")
    error.message = "Failed to predict data '<the whole request>'"  # what MLflow's scoring server does
    assert error.message == "request: column 'hr' is outside the documented range 0..23 on record 1"
    assert json.loads(error.serialize_as_json())["error_code"] == "INVALID_PARAMETER_VALUE"
    assert error.get_http_status_code() == 400


class Untrusted:
    """A type outside the allow-list, as a tampered model file would carry."""


def test_a_model_file_with_a_type_outside_the_allow_list_is_refused(table, tmp_path: Path) -> None:
    pipeline = fit(table, "ridge", SMALL["ridge"], seed=0, target=SHIPPED)
    pipeline.steps.append(("extra", Untrusted()))
    path = tmp_path / "model.skops"
    skops.io.dump(pipeline, path)
    with pytest.raises(MlflowException, match=r"refusing to load .*tests\.serving\.test_model\.Untrusted"):
        load_pipeline(path)
