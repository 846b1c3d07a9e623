"""evaluate: score the model on the test rows against two baselines, with plots and a report.

Parameters:
    features: URI of the folder featurize logged (runs:/<featurize run>/features).
    model_uri: URI of the model train logged (models:/<model id>).
Metrics:
    rmse, mae, r2, rmsle of the model; baseline_<name>_<metric> for each baseline on the same rows;
    skill_vs_<name> = 1 - rmse / baseline rmse; last_week_coverage. Under split=kaggle also kaggle_rmsle
    (on the competition's test rows), kaggle_test_rows and kaggle_winner_rmsle (config.yaml).
Artifacts:
    report.html, predictions.parquet, plots/*.png.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from functools import partial
from pathlib import Path

import mlflow

from demand import metrics
from demand.models import feature_importances
from demand.plots import evaluation_figures, png_bytes
from demand.report import render_report
from demand.schema import model_inputs
from plumbing import settings
from plumbing.artifacts import load_model, read_features
from plumbing.cli import argument_parser, run_cli
from plumbing.names import (
    FEATURES_DIR,
    PLOTS_DIR,
    PREDICTIONS_ARTIFACT,
    REPORT_ARTIFACT,
)
from plumbing.tracking import StepResult, log_outputs, step_run

log = logging.getLogger(__name__)


def evaluate(features: str, model_uri: str) -> StepResult:
    """Score, plot and report in the active run."""
    mlflow.log_params({"features": features, "model_uri": model_uri})
    folder = read_features(features)
    train, test = folder.train, folder.test
    model = load_model(model_uri)
    scores = metrics.holdout_scores(train, test, model.predict(model_inputs(test)))
    options = settings.config()["evaluate"]
    kaggle = (
        metrics.kaggle_protocol(test, scores.predicted, options["kaggle_winner_rmsle"])
        if folder.split == "kaggle"
        else {}
    )
    mlflow.log_metrics(scores.metrics | kaggle)
    importances = feature_importances(model.get_raw_model())
    figures = evaluation_figures(test, scores.predicted, importances, options["plot_days"])
    pictures = {name: png_bytes(figure) for name, figure in figures.items()}
    context = {
        "model": model_uri,
        "test rows": f"{len(test)} ({test['dteday'].min().date()} to {test['dteday'].max().date()})",
        "training rows": str(len(train)),
    }
    if kaggle:
        context["Kaggle protocol"] = metrics.kaggle_comparison(kaggle)
    report = render_report(
        "Bike-sharing demand: holdout evaluation", context, scores.by_name, scores.skills, pictures
    )
    predictions = test.assign(predicted=scores.predicted)
    plots = {f"{PLOTS_DIR}/{name}.png": partial(Path.write_bytes, data=png) for name, png in pictures.items()}
    result = log_outputs(
        {
            **plots,
            REPORT_ARTIFACT: partial(Path.write_text, data=report),
            PREDICTIONS_ARTIFACT: partial(predictions.to_parquet, index=False),
        },
        outputs={"report": REPORT_ARTIFACT, "predictions": PREDICTIONS_ARTIFACT},
        digested=(REPORT_ARTIFACT, PREDICTIONS_ARTIFACT),
    )
    log.info("Test RMSE %.2f over %d rows", scores.metrics["rmse"], len(test))
    return replace(result, metrics=scores.metrics | kaggle)


def main(argv: list[str] | None = None) -> None:
    parser = argument_parser(__doc__)
    parser.add_argument("--features", required=True, help=f"e.g. runs:/<featurize run id>/{FEATURES_DIR}")
    parser.add_argument("--model_uri", required=True, help="e.g. models:/<model id>")
    args = parser.parse_args(argv)

    def work() -> None:
        with step_run("evaluate"):
            evaluate(args.features, args.model_uri)

    run_cli(work)


if __name__ == "__main__":
    main()
