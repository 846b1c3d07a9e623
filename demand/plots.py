"""The evaluate step's figures (pure: data in, matplotlib Figure out)."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
from matplotlib.figure import Figure  # not pyplot: figures drawn straight to PNG need no backend or window

from demand import metrics
from demand.schema import TARGET

SIZE = (8, 4.5)


def predicted_vs_actual(actual: np.ndarray, predicted: np.ndarray) -> Figure:
    figure = Figure(figsize=(5.5, 5.5))
    axes = figure.subplots()
    axes.scatter(actual, predicted, s=4, alpha=0.35)
    top = float(max(np.max(actual), np.max(predicted)))
    axes.plot([0, top], [0, top], color="black", linewidth=1, label="perfect")
    axes.set(
        xlabel="actual rentals per hour", ylabel="predicted rentals per hour", title="Predicted vs actual"
    )
    axes.legend(loc="upper left")
    figure.tight_layout()
    return figure


def recent_weeks(when: pd.Series, actual: np.ndarray, predicted: np.ndarray, days: int) -> Figure:
    """The last `days` days of the test period as a time series."""
    start = when.max() - pd.Timedelta(days=days)
    shown = (when > start).to_numpy()
    figure = Figure(figsize=SIZE)
    axes = figure.subplots()
    axes.plot(when[shown], actual[shown], label="actual", linewidth=1)
    axes.plot(when[shown], predicted[shown], label="predicted", linewidth=1)
    axes.set(ylabel="rentals per hour", title=f"Last {days} days of the test period")
    axes.legend(loc="upper left")
    figure.autofmt_xdate()
    figure.tight_layout()
    return figure


def error_by_hour(rmse_by_hour: pd.Series) -> Figure:
    figure = Figure(figsize=SIZE)
    axes = figure.subplots()
    axes.bar(rmse_by_hour.index, rmse_by_hour.to_numpy())
    axes.set(xlabel="hour of day", ylabel="RMSE", title="Error by hour of day", xticks=range(0, 24, 2))
    figure.tight_layout()
    return figure


def feature_importance(importances: pd.Series) -> Figure:
    figure = Figure(figsize=SIZE)
    axes = figure.subplots()
    ordered = importances.sort_values()
    axes.barh(ordered.index, ordered.to_numpy())
    axes.set(xlabel="importance", title="Feature importance")
    figure.tight_layout()
    return figure


def evaluation_figures(
    test: pd.DataFrame, predicted: np.ndarray, importances: pd.Series | None, plot_days: int
) -> dict[str, Figure]:
    """The evaluate step's figures by name; `plot_days` of the test period are drawn hour by hour."""
    actual = test[TARGET].to_numpy()
    figures = {
        "predicted_vs_actual": predicted_vs_actual(actual, predicted),
        "last_two_weeks": recent_weeks(metrics.timestamps(test), actual, predicted, plot_days),
        "error_by_hour": error_by_hour(metrics.error_by_hour(test, predicted)),
    }
    if importances is not None:
        figures["feature_importance"] = feature_importance(importances)
    return figures


def png_bytes(figure: Figure) -> bytes:
    """The figure as PNG."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()
