"""evaluate: score the model on the test rows against two baselines, with plots and a report.

Parameters:
    features: URI of the folder featurize logged (runs:/<featurize run>/features).
    model_uri: URI of the model train logged (models:/<model id>).
Metrics:
    rmse, mae, r2, rmsle of the model; baseline_<name>_<metric> for each baseline on the same rows;
    skill_vs_<name> = 1 - rmse / baseline rmse; last_week_coverage.
Artifacts:
    report.html, predictions.parquet, plots/*.png.
"""

from __future__ import annotations

import io
import logging
import tempfile
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from matplotlib import pyplot as plt
from matplotlib.figure import Figure

from steps import metrics, plots, settings
from steps.models import feature_importances, model_inputs
from steps.names import (
    FEATURES_DIR,
    PLOTS_DIR,
    PREDICTIONS_ARTIFACT,
    REPORT_ARTIFACT,
    TEST_FILE,
    TRAIN_FILE,
)  # fmt: skip
from steps.report import render_report
from steps.schema import TARGET
from steps.tracking import (
    StepResult,
    argument_parser,
    artifact_uri,
    load_model,
    read_table,
    record_outputs,
    run_cli,
    step_run,
)  # fmt: skip

log = logging.getLogger(__name__)


def draw_figures(
    test: pd.DataFrame, predicted: np.ndarray, importances: pd.Series | None
) -> dict[str, Figure]:
    days = settings.config()["evaluate"]["plot_days"]
    actual = test[TARGET].to_numpy()
    figures = {
        "predicted_vs_actual": plots.predicted_vs_actual(actual, predicted),
        "last_two_weeks": plots.recent_weeks(metrics.timestamps(test), actual, predicted, days),
        "error_by_hour": plots.error_by_hour(metrics.error_by_hour(test, predicted)),
    }
    if importances is not None:
        figures["feature_importance"] = plots.feature_importance(importances)
    return figures


def png_bytes(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    return buffer.getvalue()


def evaluate(features: str, model_uri: str) -> StepResult:
    """Score, plot and report in the active run."""
    mlflow.log_params({"features": features, "model_uri": model_uri})
    train = read_table(f"{features}/{TRAIN_FILE}", "training rows")
    test = read_table(f"{features}/{TEST_FILE}", "test rows")
    model = load_model(model_uri)
    scores = metrics.holdout_scores(train, test, model.predict(model_inputs(test)))
    mlflow.log_metrics(scores.metrics)
    importances = feature_importances(model.get_raw_model())
    pictures = {
        name: png_bytes(figure) for name, figure in draw_figures(test, scores.predicted, importances).items()
    }
    context = {
        "model": model_uri,
        "test rows": f"{len(test)} ({test['dteday'].min().date()} to {test['dteday'].max().date()})",
        "training rows": str(len(train)),
    }
    report = render_report(
        "Bike-sharing demand: holdout evaluation", context, scores.by_name, scores.skills, pictures
    )
    run_id = mlflow.active_run().info.run_id
    outputs = {
        "report": artifact_uri(run_id, REPORT_ARTIFACT),
        "predictions": artifact_uri(run_id, PREDICTIONS_ARTIFACT),
    }
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        (root / PLOTS_DIR).mkdir()
        for name, png in pictures.items():
            (root / PLOTS_DIR / f"{name}.png").write_bytes(png)
        (root / REPORT_ARTIFACT).write_text(report)
        test.assign(predicted=scores.predicted).to_parquet(root / PREDICTIONS_ARTIFACT, index=False)
        mlflow.log_artifacts(scratch)
        digest = record_outputs(outputs, [root / REPORT_ARTIFACT, root / PREDICTIONS_ARTIFACT])
    log.info("Test RMSE %.2f over %d rows", scores.metrics["rmse"], len(test))
    return StepResult(run_id, outputs, digest, scores.metrics)


def main() -> None:
    parser = argument_parser(__doc__)
    parser.add_argument("--features", required=True, help=f"e.g. runs:/<featurize run id>/{FEATURES_DIR}")
    parser.add_argument("--model_uri", required=True, help="e.g. models:/<model id>")
    args = parser.parse_args()

    def work() -> None:
        with step_run("evaluate"):
            evaluate(args.features, args.model_uri)

    run_cli(work)


if __name__ == "__main__":
    main()
