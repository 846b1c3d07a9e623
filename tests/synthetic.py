"""Small hour.csv-shaped tables the tests make, so the suite means something without the real data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from demand.schema import HOURLY_COLUMNS

# Rentals by hour on working days (two commuting peaks) and other days (one afternoon hump).
WORKDAY_PROFILE = np.array(
    [
        5,
        2,
        1,
        1,
        2,
        20,
        90,
        250,
        380,
        200,
        110,
        130,
        160,
        160,
        140,
        160,
        260,
        480,
        420,
        280,
        190,
        140,
        100,
        50,
    ]
)
WEEKEND_PROFILE = np.array(
    [40, 30, 20, 8, 4, 4, 10, 25, 60, 120, 190, 250, 290, 300, 290, 280, 260, 230, 190, 150, 120, 100, 80, 60]
)


def hourly_table(days: int = 42, start: str = "2012-06-01", seed: int = 0) -> pd.DataFrame:
    """A valid hour.csv table: every hour of `days` days, counts that follow hour, weekday and weather."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range(start, periods=days, freq="D")
    frame = pd.DataFrame({"dteday": np.repeat(dates, 24), "hr": np.tile(np.arange(24), days)})
    frame["weekday"] = (frame["dteday"].dt.day_of_week + 1) % 7  # the Readme counts from Sunday = 0
    frame["holiday"] = 0
    frame["workingday"] = frame["weekday"].between(1, 5).astype(int)
    frame["mnth"] = frame["dteday"].dt.month
    frame["yr"] = frame["dteday"].dt.year - 2011
    frame["season"] = (frame["mnth"] % 12) // 3 + 1
    frame["weathersit"] = rng.choice([1, 1, 1, 2, 2, 3], size=len(frame))
    frame["temp"] = np.round(rng.uniform(0.4, 0.9, len(frame)), 2)
    frame["atemp"] = np.round(frame["temp"] * 0.9, 4)
    frame["hum"] = np.round(rng.uniform(0.2, 1.0, len(frame)), 2)
    frame["windspeed"] = np.round(rng.uniform(0.0, 0.5, len(frame)), 4)
    profile = np.where(frame["workingday"] == 1, WORKDAY_PROFILE[frame["hr"]], WEEKEND_PROFILE[frame["hr"]])
    expected = profile * (1.25 - 0.25 * frame["weathersit"]) * (0.6 + frame["temp"])
    frame["cnt"] = np.maximum(1, rng.poisson(expected)).astype(int)
    frame["casual"] = frame["cnt"] // 5
    frame["registered"] = frame["cnt"] - frame["casual"]
    frame["instant"] = np.arange(1, len(frame) + 1)
    frame["dteday"] = frame["dteday"].dt.strftime("%Y-%m-%d")
    return frame.loc[:, list(HOURLY_COLUMNS)]


def write_csv(frame: pd.DataFrame, path: Path, line_ending: str = "\r\n") -> Path:
    """Write like UCI does (CRLF by default)."""
    path.write_bytes(frame.to_csv(index=False, lineterminator=line_ending).encode())
    return path
