"""Files the pipeline writes for the user: checked before any work, written whole or not at all, and a
full disk said in one line."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

import pandas as pd

from demand.errors import PipelineError, shown_path


def output_file(text: str) -> Path:
    """Where an output file goes: refused before any work when it names a folder or cannot be made."""
    path = Path(text).expanduser()
    if not text.strip() or path.is_dir() or text.endswith(("/", os.sep)):
        raise PipelineError(
            f"output {shown_path(text)} is a folder, not a file; pass a file, "
            f"e.g. -P output={shown_path(path / 'predictions.csv')}"
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise PipelineError(f"cannot make the folder of output {shown_path(text)}: {why(error)}") from None
    return path


def write_csv_atomically(table: pd.DataFrame, path: Path) -> None:
    """Readers of `path` see the old file or the whole new one, never half of it; a failed write leaves
    no partial file behind."""
    scratch = tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".partial", delete=False)  # noqa: SIM115
    try:
        with scratch:
            table.to_csv(scratch, index=False)
        os.replace(scratch.name, path)
    except OSError as error:
        Path(scratch.name).unlink(missing_ok=True)
        raise PipelineError(f"cannot write {shown_path(path)}: {why(error)}") from None


def why(error: OSError) -> str:
    """An OSError in a few words: 'no space left on device', 'permission denied', ..."""
    if error.errno == errno.ENOSPC:
        return "no space left on device; free some space and run again"
    return (error.strerror or type(error).__name__).lower()
