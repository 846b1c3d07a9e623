"""The validated table as an MLflow dataset input of the ingest run: its source, digest, schema and size."""

from __future__ import annotations

import warnings

import mlflow
import pandas as pd
from mlflow.data.pandas_dataset import PandasDataset
from mlflow.models import infer_signature
from mlflow.types import Schema

SCHEMA_ROWS = 100


class CheckedTable(PandasDataset):
    """A PandasDataset whose schema is inferred from its first rows.

    MLflow's inference looks at every cell in Python to find missing values (half a second for hour.csv);
    ingest has already refused any missing value, so the first rows give the whole table's schema.
    """

    @property
    def schema(self) -> Schema | None:
        return infer_signature(self.df.head(SCHEMA_ROWS)).inputs


def log_table_input(
    table: pd.DataFrame,
    *,
    source: str,
    name: str,
    target: str,
    digest: str,
    context: str,
    tags: dict[str, str],
) -> None:
    """Log `table` (checked: no missing values) as a dataset input of the active run."""
    with warnings.catch_warnings():  # MLflow's hints on file URIs and integer columns do not apply here
        warnings.simplefilter("ignore", UserWarning)
        plain = mlflow.data.from_pandas(table, source=source, name=name, targets=target, digest=digest)
        dataset = CheckedTable(table, plain.source, targets=target, name=name, digest=digest)
        mlflow.log_input(dataset, context=context, tags=tags)
