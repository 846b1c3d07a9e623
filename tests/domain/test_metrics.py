"""Metrics and baselines on hand-made frames with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from demand import metrics
from demand.csv_text import read_csv_text
from demand.schema import parse_hourly
from demand.split import split_table


def frame(days: list[str], hours: list[int], workingday: list[int], counts: list[int]) -> pd.DataFrame:
    return pd.DataFrame(
        {"dteday": pd.to_datetime(days), "hr": hours, "workingday": workingday, "cnt": counts}
    )


def test_regression_metrics_known_values() -> None:
    scores = metrics.regression_metrics(np.array([0.0, 2.0, 4.0]), np.array([1.0, 2.0, 1.0]))
    assert scores["rmse"] == pytest.approx(np.sqrt(10 / 3))
    assert scores["mae"] == pytest.approx(4 / 3)
    assert scores["r2"] == pytest.approx(1 - 10 / 8)
    expected_rmsle = np.sqrt(np.mean((np.log1p([1, 2, 1]) - np.log1p([0, 2, 4])) ** 2))
    assert scores["rmsle"] == pytest.approx(expected_rmsle)


def test_perfect_predictions() -> None:
    scores = metrics.regression_metrics(np.array([3.0, 5.0]), np.array([3.0, 5.0]))
    assert scores == {"rmse": 0.0, "mae": 0.0, "r2": 1.0, "rmsle": 0.0}


def test_skill() -> None:
    assert metrics.skill(50.0, 100.0) == 0.5
    assert metrics.skill(120.0, 100.0) == pytest.approx(-0.2)


def test_hour_workingday_mean_uses_training_rows_only() -> None:
    train = frame(["2012-01-02"] * 3, [8, 8, 9], [1, 1, 1], [10, 20, 99])
    test = frame(["2012-01-09", "2012-01-09", "2012-01-14"], [8, 9, 8], [1, 1, 0], [1000, 1000, 1000])
    np.testing.assert_allclose(metrics.hour_workingday_mean(train, test), [15.0, 99.0, train["cnt"].mean()])


def test_last_week_looks_up_168_hours_earlier_and_falls_back() -> None:
    history = frame(
        ["2012-01-02", "2012-01-02", "2012-01-09", "2012-01-09"], [8, 9, 8, 9], [1] * 4, [11, 12, 21, 22]
    )
    test = frame(["2012-01-09", "2012-01-09", "2012-01-16"], [8, 9, 10], [1] * 3, [21, 22, 30])
    predicted, coverage = metrics.last_week(history, test, fallback=np.array([-1.0, -1.0, -1.0]))
    np.testing.assert_allclose(predicted, [11, 12, -1])
    assert coverage == pytest.approx(2 / 3)


def test_error_by_hour() -> None:
    test = frame(["2012-01-09"] * 3, [8, 8, 9], [1] * 3, [10, 20, 5])
    by_hour = metrics.error_by_hour(test, np.array([13.0, 16.0, 5.0]))
    assert by_hour.to_dict() == {8: pytest.approx(np.sqrt(12.5)), 9: 0.0}


def test_the_kaggle_protocol_scores_days_20_and_later_only() -> None:
    test = frame(["2012-01-19", "2012-01-20", "2012-02-28"], [0, 0, 0], [1, 1, 1], [10, 20, 30])
    scores = metrics.kaggle_protocol(test, np.array([1000.0, 20.0, 31.0]), winner_rmsle=0.33756)
    assert scores["kaggle_test_rows"] == 2, "the 19th is a training day in Kaggle's split"
    assert scores["kaggle_rmsle"] == pytest.approx(np.sqrt((np.log(32 / 31) ** 2) / 2))
    assert scores["kaggle_winner_rmsle"] == 0.33756


def test_the_kaggle_protocol_has_the_competitions_6493_rows(real_data) -> None:
    path = real_data / "hour.csv" if real_data.is_dir() else real_data
    table = parse_hourly(read_csv_text(path.read_bytes(), str(path)), str(path))
    _, test = split_table(table, "kaggle", 92)
    assert metrics.kaggle_protocol(test, test["cnt"].to_numpy(), 0.33756)["kaggle_test_rows"] == 6493
