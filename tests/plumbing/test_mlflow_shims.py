"""The two places this project leans on an MLflow internal, each checked so that an MLflow upgrade that
breaks it fails here, loudly, instead of silently costing time or validating what it should not:

- serving/model.py PyfuncUnvalidated: `Model.log` reads `validate_serving_input` and skips loading the
  model it just saved to run it on the input example (evaluate scores the logged model right after);
- plumbing/datasets.py CheckedTable: `PandasDataset.to_dict` reads the dataset's `schema` property, which
  CheckedTable infers from the first rows instead of every cell.
"""

from __future__ import annotations

import inspect
import json

import mlflow
import pytest
from mlflow.data.pandas_dataset import PandasDataset
from mlflow.models import infer_signature

import serving.model
from demand.models import fit
from demand.schema import TARGET, model_inputs, parse_hourly
from plumbing import settings
from plumbing.code import shipped_files
from plumbing.datasets import log_table_input
from serving.model import SCORING_MODULES, ShippedCode, log_model
from tests.domain.test_models import SHIPPED, SMALL
from tests.synthetic import hourly_table


@pytest.fixture(scope="module")
def table():
    return parse_hourly(hourly_table(days=14).astype(str), "hour.csv")


def test_model_log_still_takes_validate_serving_input_and_skips_the_validation(
    experiment_id: str, table, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "validate_serving_input" in inspect.getsource(mlflow.models.Model.log), (
        "mlflow.models.Model.log no longer reads validate_serving_input: PyfuncUnvalidated does nothing now"
    )
    pipeline = fit(table, "ridge", SMALL["ridge"], seed=0, target=SHIPPED)
    code = ShippedCode(settings.PROJECT_DIR, shipped_files(SCORING_MODULES))
    loads: list[str] = []
    loader = serving.model._load_pyfunc
    monkeypatch.setattr(serving.model, "_load_pyfunc", lambda path: loads.append(path) or loader(path))
    with mlflow.start_run():
        info = log_model(pipeline, model_inputs(table).head(5), "model", code, settings.REQUIREMENTS_FILE)
    assert loads == [], "MLflow loaded the model to run its input example although log_model asked it not to"
    assert mlflow.pyfunc.load_model(info.model_uri).predict(model_inputs(table).head(3)).shape == (3,)
    assert len(loads) == 1, "the loader this test watches is the one MLflow calls"


def test_pandas_dataset_still_reads_its_schema_property_and_gets_the_full_schema(
    experiment_id: str, table
) -> None:
    assert "self.schema" in inspect.getsource(PandasDataset.to_dict), (
        "PandasDataset.to_dict no longer reads self.schema: CheckedTable's shortcut does nothing now"
    )
    with mlflow.start_run() as run:
        log_table_input(
            table, source="file:///hour.csv", name="t", target=TARGET, digest="d", context="c", tags={}
        )
    (logged,) = mlflow.get_run(run.info.run_id).inputs.dataset_inputs
    expected = {"mlflow_colspec": infer_signature(table).inputs.to_dict()}
    assert json.loads(logged.dataset.schema) == expected, "the first rows no longer give the whole schema"
