"""`python -m serving` refuses a port or a worker count it cannot use in one line, before loading anything."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.helpers import PROJECT_DIR


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["-p", "99999"], "error: --port 99999 is outside 1..65535"),
        (["-p", "0"], "error: --port 0 is outside 1..65535"),
        (["-w", "0"], "error: --workers 0 is outside 1..64"),
    ],
)
def test_an_unusable_port_or_worker_count_is_one_line(flags: list[str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "serving", "-m", "models:/nothing@champion", *flags],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [message]
