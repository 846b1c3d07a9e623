"""`python -m serving` refuses a port, a worker count or a body timeout it cannot use in one line, before
loading anything."""

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
        (["--body-timeout", "0"], "error: --body-timeout 0.0 is outside 0.1..3600"),
        (["--body-timeout", "nan"], "error: --body-timeout nan is outside 0.1..3600"),
        (["--body-timeout", "1e9"], "error: --body-timeout 1000000000.0 is outside 0.1..3600"),
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
