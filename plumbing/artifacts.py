"""Reading what earlier steps logged: tables, the features folder, models, and which model version an alias
names. Each artifact at a URI that
cannot change is read once per process (`main` runs every step in one process); a bad URI or file is one
line, and a tracking server or artifact store that does not answer is said as such."""

from __future__ import annotations

import json
import re
import tempfile
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from demand.errors import PipelineError, first_line, quoted, shown, shown_path
from demand.promotion import CHAMPION
from plumbing.faults import server_trouble
from plumbing.names import SPLIT_FILE, TEST_FILE, TRAIN_FILE

# A run's artifact, a logged model (models:/m-...) or a model version (models:/name/3): never rewritten.
UNCHANGING_URI = re.compile(r"runs:/|models:/[^@]+/\d+$|models:/m-[0-9a-f]+$")
KEPT_READS = 8
_KEPT: OrderedDict[tuple[str, str], Any] = OrderedDict()
URI_HINT = "pass a URI that the previous step logged (its run's artifacts or models:/<id>)"


@dataclass(frozen=True)
class Features:
    """The folder featurize logged: training and test rows, and the split that made them."""

    train: pd.DataFrame
    test: pd.DataFrame
    split: str
    test_days: int


def read_features(features: str) -> Features:
    """The features folder at `features` (runs:/<featurize run>/features)."""
    made = read_split(features)
    return Features(
        read_table(f"{features}/{TRAIN_FILE}", "training rows"),
        read_table(f"{features}/{TEST_FILE}", "test rows"),
        made["split"],
        made["test_days"],
    )


def read_table(uri: str, what: str) -> pd.DataFrame:
    """A Parquet table logged as an artifact, read through a temporary copy (once per process)."""
    return read_once(uri, lambda: read_artifact(uri, what, pd.read_parquet)).copy()


def read_split(features: str) -> dict[str, Any]:
    """The split and test_days that made the features folder at `features`."""
    uri = f"{features}/{SPLIT_FILE}"
    return dict(read_once(uri, lambda: read_artifact(uri, "split file", _json)))


def _json(path: str) -> Any:
    return json.loads(Path(path).read_text())


def read_once(uri: str, read: Callable[[], Any]) -> Any:
    """What `read` returns for `uri`, read once per process when the URI names something that cannot
    change: `main` runs every step in one process, and train, evaluate and register read the same tables
    and model. Aliases (models:/name@champion) are read every time. The newest KEPT_READS are kept."""
    if not UNCHANGING_URI.match(uri):
        return read()
    key = (mlflow.get_tracking_uri(), uri)
    if key not in _KEPT:
        _KEPT[key] = read()
        while len(_KEPT) > KEPT_READS:
            _KEPT.popitem(last=False)
    _KEPT.move_to_end(key)
    return _KEPT[key]


def read_artifact(uri: str, what: str, reader: Callable[[str], Any]) -> Any:
    """An artifact read by `reader` from a temporary copy; a bad URI or file is one line."""
    with tempfile.TemporaryDirectory() as scratch:
        try:
            path = mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=scratch)
            return reader(path)
        except Exception as error:  # MLflow and pyarrow raise several types for a bad URI or file
            if server_trouble(error):
                raise  # not the URI's fault: run_cli says what happened
            _raise_if_the_artifact_store_is_down(uri, what)
            reason = first_line(error)
            raise PipelineError(
                f"cannot read the {what} at {shown_path(uri)} ({shown(reason)}); {URI_HINT}"
            ) from None


def _raise_if_the_artifact_store_is_down(uri: str, what: str) -> None:
    """A download that failed for a runs:/ URI: if even listing that run's artifacts fails, the store behind
    the tracking server is down (MLflow reports it only as 'please ensure that the path is correct')."""
    run_id = uri.removeprefix("runs:/").split("/", 1)[0]
    if not uri.startswith("runs:/"):
        return
    try:
        mlflow.MlflowClient().list_artifacts(run_id)
    except Exception as error:  # MLflow and requests raise several types when the store does not answer
        if getattr(error, "error_code", "") == "RESOURCE_DOES_NOT_EXIST":
            return  # no such run: the URI is wrong, which the caller says
        raise PipelineError(
            f"cannot read the {what}: the tracking server could not reach its artifact store "
            f"({shown(first_line(error))}); its log says why. Run again once it is back: finished steps "
            "are reused"
        ) from None


def load_model(uri: str) -> mlflow.pyfunc.PyFuncModel:
    """The model logged at a model URI, as MLflow serves it (serving/model.py); loaded once per process."""
    try:
        return read_once(uri, lambda: mlflow.pyfunc.load_model(uri))
    except Exception as error:  # as above
        if server_trouble(error):
            raise
        raise PipelineError(
            f"cannot load the model at {shown_path(uri)} ({shown(first_line(error))}); {URI_HINT}"
        ) from None


def resolve_model(client: MlflowClient, model_uri: str, model_name: str) -> tuple[str, str]:
    """The URI to load, pinned to a version when it names an alias, and the version it is."""
    uri = model_uri or f"models:/{model_name}@{CHAMPION}"
    name, alias = _split_alias(uri)
    if alias is None:
        return uri, uri.removeprefix("models:/") if uri.startswith("models:/") else "unregistered"
    try:
        version = client.get_model_version_by_alias(name, alias).version
    except MlflowException as error:
        if is_missing(error, client, name):
            raise PipelineError(
                f"no version of registered model {quoted(name)} has the alias @{shown(alias)}; "
                "run the pipeline first (mlflow run .) or pass -P model_uri=<a model URI>"
            ) from None
        if error.error_code == "PERMISSION_DENIED":
            raise PipelineError(
                f"this login may not read the registered model {quoted(name)}; ask an admin for READ on it"
            ) from None
        raise  # the store did not answer: one line from run_cli
    return f"models:/{name}/{version}", f"{name}/{version}"


def _split_alias(uri: str) -> tuple[str, str | None]:
    if uri.startswith("models:/") and "@" in uri:
        name, _, alias = uri.removeprefix("models:/").partition("@")
        return name, alias
    return uri, None


def is_missing(error: MlflowException, client: MlflowClient, name: str) -> bool:
    """The error says the registered model `name`, or its alias, does not exist. A server with logins
    answers PERMISSION_DENIED for a model that does not exist: then the model is looked for among those
    this login can see (one it cannot see at all, it could not register a version of either)."""
    if error.error_code == "RESOURCE_DOES_NOT_EXIST":
        return True
    if error.error_code == "PERMISSION_DENIED":
        return not client.search_registered_models(f"name = '{name}'")
    return error.error_code == "INVALID_PARAMETER_VALUE" and bool(
        re.search(r"alias .* not found", error.message)
    )
