"""The logged model as MLflow loads it: a `python_function` model whose loader is this module.

The fitted scikit-learn pipeline is saved with skops, which rebuilds objects without pickle, and loaded
here with an allow-list of types fixed in this code (never read from the model's own files). So the
model loads with `MLFLOW_ALLOW_PICKLE_DESERIALIZATION=false`, which the sklearn flavor refuses for skops.

Every way of using the model (`mlflow models serve`, `mlflow.pyfunc.load_model`, the `predict` and
`evaluate` steps) goes through MLflow's check of the signature's column types (input_schema), then
`BikeDemandModel.predict`, which checks the records against the rest of the hour.csv contract. A bad
record is an `InvalidRecords` error: HTTP 400 from the scoring server, with a message that names the
column, the rule and the record numbers, and never the values sent.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.types import ColSpec, Schema

from demand.errors import PipelineError
from demand.schema import (
    COUNT_COLUMNS,
    INTEGER_RANGES,
    MODEL_INPUT_COLUMNS,
    PREDICTION_COLUMN,
    REQUEST_RECORDS,
    model_inputs,
    parse_records,
)

SKOPS_FILE = "model.skops"
LOADER_MODULE = __name__
REQUEST_LABEL = "request"
# The types a saved pipeline of any model in demand/models.py is built from, beyond those skops trusts by
# default. tests/test_models.py saves and loads every model with it; a type missing here fails loading
# with a clear error rather than running code the list does not name.
TRUSTED_TYPES = (
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.tree._tree.Tree",
    "demand.features.HourlyFeatures",
    "demand.models.RiderDemand",
    "demand.models.SeedBag",
    "demand.models.floor_at_zero",
    "demand.models.unchanged",
    "xgboost.core.Booster",
    "xgboost.sklearn.XGBRegressor",
)


# The modules a logged model runs when it scores: this loader, and the modules of the domain types that the
# allow-list names (skops imports them to rebuild the pipeline). The model carries these and the project
# modules they import, nothing else (plumbing/code.py finds them; steps/train.py passes them to log_model).
SCORING_MODULES = (
    LOADER_MODULE,
    *sorted({name.rsplit(".", 1)[0] for name in TRUSTED_TYPES if name.startswith("demand.")}),
)


class InvalidRecords(MlflowException):
    """Records that break the hour.csv contract: a client error (HTTP 400).

    MLflow's scoring server rewrites an error's `message` to quote the whole request before it answers;
    this error keeps its own words, so the response never echoes what the client sent.
    """

    def __init__(self, message: str) -> None:
        self._own_message = message
        super().__init__(message, error_code=INVALID_PARAMETER_VALUE)

    @property
    def message(self) -> str:
        return self._own_message

    @message.setter
    def message(self, value: str) -> None:
        pass  # keep our own message; see the class docstring


def checked_records(model_input: Any) -> pd.DataFrame:
    """The typed records of a request, in request order, or InvalidRecords naming what is wrong."""
    if not isinstance(model_input, pd.DataFrame):
        raise InvalidRecords(
            f"send a table of records (dataframe_split or dataframe_records) with the columns "
            f"{','.join(MODEL_INPUT_COLUMNS)}"
        )
    try:
        return parse_records(model_input.rename(columns=str), REQUEST_LABEL, rows=REQUEST_RECORDS)
    except PipelineError as error:
        raise InvalidRecords(str(error)) from None


class BikeDemandModel:
    """The pyfunc model: checked records in, predicted rentals per hour (never negative) out."""

    def __init__(self, pipeline: Any) -> None:
        self.pipeline = pipeline

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> np.ndarray:
        return self.pipeline.predict(model_inputs(checked_records(model_input)))

    def get_raw_model(self) -> Any:
        """The fitted scikit-learn pipeline."""
        return self.pipeline


def input_schema() -> Schema:
    """The hour.csv columns the model takes, typed as JSON carries them (dates as YYYY-MM-DD text); the
    counts, which a record may carry and the model ignores, are optional.

    MLflow enforces it before the model runs (types only; its scoring server first casts a JSON request's
    columns to these types, see serving/answers.py); the model's own check (BikeDemandModel) then applies
    the rest of the contract, naming the column, the rule and the records. MLflow's own refusals quote the
    request: the front (serving/front.py, serving/answers.py) words them as the
    model's check does."""
    return Schema(
        [ColSpec(_column_type(column), column) for column in MODEL_INPUT_COLUMNS]
        + [ColSpec("long", column, required=False) for column in COUNT_COLUMNS]
    )


def _column_type(column: str) -> str:
    return "string" if column == "dteday" else "long" if column in INTEGER_RANGES else "double"


SIGNATURE = ModelSignature(inputs=input_schema(), outputs=Schema([ColSpec("double", PREDICTION_COLUMN)]))


def log_model(
    pipeline: Any, example: pd.DataFrame, name: str, code: ShippedCode, requirements: Path
) -> mlflow.models.model.ModelInfo:
    """Log the pipeline in the active run as the pyfunc model of this module, with SIGNATURE, exactly the
    `code` that scoring runs, and the pins of `requirements`."""
    with tempfile.TemporaryDirectory() as scratch:
        saved = Path(scratch) / SKOPS_FILE
        save_pipeline(pipeline, saved)
        packages = code.copy_to(Path(scratch) / "code")
        return mlflow.models.Model.log(
            artifact_path=None,
            name=name,
            flavor=PyfuncUnvalidated,
            flavor_name="pyfunc",
            validate_serving_input=False,
            loader_module=LOADER_MODULE,
            data_path=str(saved),
            code_paths=[str(package) for package in packages],
            pip_requirements=str(requirements),
            signature=SIGNATURE,
            input_example=example,
            metadata={"contract": "demand/schema.py"},
        )


@dataclass(frozen=True)
class ShippedCode:
    """The project files a logged model carries: paths relative to `root`, the project folder."""

    root: Path
    files: tuple[str, ...]

    def copy_to(self, folder: Path) -> list[Path]:
        """The files, with each package's __init__.py, copied under `folder`; its package folders."""
        packages = sorted({Path(name).parts[0] for name in self.files})
        for name in {*self.files, *(f"{package}/__init__.py" for package in packages)}:
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.root / name, folder / name)
        return [folder / package for package in packages]


def model_identity(fitted_digest: str, code: ShippedCode, requirements: Path) -> str:
    """What a logged model is: its fitted state, the code it carries and the requirements it pins. A change
    to any of them is a different model: evaluate and register run again, and the registry sees a new one."""
    digest = hashlib.sha256(f"{fitted_digest}\0".encode())
    for name in sorted(code.files):
        digest.update(name.encode() + b"\0" + (code.root / name).read_bytes() + b"\0")
    digest.update(requirements.read_bytes())
    return digest.hexdigest()


class PyfuncUnvalidated:
    """mlflow.pyfunc as the flavor of `Model.log`, told not to validate the input example.

    mlflow.pyfunc.log_model loads the model it just saved and runs it on the input example. evaluate loads
    the logged model from the store right after and scores the test rows, which checks the same thing on
    real rows, so the pipeline does it once. Model.log reads `validate_serving_input` and hands every
    argument on to the flavor's save_model, whose mlflow.pyfunc version refuses that one.
    """

    __name__ = "mlflow.pyfunc"

    @staticmethod
    def save_model(validate_serving_input: bool, **arguments: Any) -> None:
        mlflow.pyfunc.save_model(**arguments)


def _skops_io() -> ModuleType:
    """skops.io, imported on first use: importing it imports every scikit-learn estimator to list the types
    it trusts (over a second), which a pipeline whose train, evaluate and register are reused never needs."""
    import skops.io  # noqa: PLC0415

    return skops.io


def save_pipeline(pipeline: Any, path: Path) -> None:
    """Save with skops; refuse a pipeline that load_pipeline would refuse."""
    skops_io = _skops_io()
    saved = skops_io.dumps(pipeline)
    unknown = sorted(set(skops_io.get_untrusted_types(data=saved)) - set(TRUSTED_TYPES))
    if unknown:
        raise PipelineError(
            f"the model holds types that serving/model.py does not trust: {', '.join(unknown)}; "
            "add them to TRUSTED_TYPES only if they come from this project or its pinned libraries"
        )
    path.write_bytes(saved)


def load_pipeline(path: str | Path) -> Any:
    """The scikit-learn pipeline in a skops file, refusing any type outside TRUSTED_TYPES."""
    skops_io = _skops_io()
    unknown = sorted(set(skops_io.get_untrusted_types(file=path)) - set(TRUSTED_TYPES))
    if unknown:
        raise MlflowException(
            f"refusing to load {path}: it holds types outside TRUSTED_TYPES in serving/model.py: "
            f"{', '.join(unknown)}"
        )
    return skops_io.load(path, trusted=list(TRUSTED_TYPES))


def _load_pyfunc(data_path: str) -> BikeDemandModel:
    """Called by mlflow.pyfunc.load_model with the model's data file."""
    return BikeDemandModel(load_pipeline(data_path))
