"""Files the pipeline writes for the user: checked before any work, written whole or not at all, and a
full disk said in one line."""

from __future__ import annotations

import errno
import hashlib
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from demand.errors import PipelineError, shown_path


def readable_file(text: str, what: str) -> Path:
    """A file the user named, checked readable (not read); a one-line error otherwise."""
    path = Path(text).expanduser()
    try:
        with path.open("rb"):
            return path
    except IsADirectoryError:
        raise PipelineError(f"{what} {shown_path(text)} is a folder; pass -P {what}=<a CSV file>") from None
    except FileNotFoundError:
        raise PipelineError(f"{what} {shown_path(text)} is not a file; pass -P {what}=<a CSV file>") from None
    except OSError as error:
        raise PipelineError(f"cannot read {what} {shown_path(text)}: {why(error)}") from None


def output_file(text: str, source: Path | None = None) -> Path:
    """Where an output file goes: refused before any work when it names a folder, the `source`
    it is computed from, or cannot be made; a folder it needs is made, and said so."""
    path = Path(text).expanduser()
    if source is not None and path.resolve() == source.resolve():
        raise PipelineError(f"output {shown_path(text)} is the input file; write to another file")
    try:
        is_folder = path.is_dir()
    except OSError as error:  # a name too long, a loop of links...
        raise PipelineError(f"cannot write output {shown_path(text)}: {why(error)}") from None
    if not text.strip() or is_folder or text.endswith(("/", os.sep)):
        raise PipelineError(
            f"output {shown_path(text)} is a folder, not a file; pass a file, "
            f"e.g. -P output={shown_path(path / 'predictions.csv')}"
        )
    if path.parent.is_dir():
        return path
    try:
        path.parent.mkdir(parents=True)
    except FileExistsError:  # made meanwhile by another writer
        return path
    except OSError as error:
        raise PipelineError(f"cannot make the folder of output {shown_path(text)}: {why(error)}") from None
    print(f"made folder {shown_path(path.parent)} for output {shown_path(text)}", file=sys.stderr)
    return path


def file_sha256(path: Path) -> str:
    """sha256 of a file, read in blocks: memory stays flat whatever its size."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


@contextmanager
def csv_written_atomically(path: Path) -> Iterator[Callable[[pd.DataFrame], None]]:
    """A writer of CSV chunks (the header once) into a file that appears at `path` only when the block
    ends without an error. Readers of `path` see the old file or the whole new one, never half of it; a
    failed or interrupted write leaves no partial file behind. The file gets the usual permissions (the
    umask's), and a link at `path` is written through to its target."""
    target = path.resolve()
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        with partial.open("w") as handle:
            yield lambda chunk: chunk.to_csv(handle, index=False, header=handle.tell() == 0)
        os.replace(partial, target)
    except OSError as error:
        raise PipelineError(f"cannot write {shown_path(path)}: {why(error)}") from None
    finally:
        partial.unlink(missing_ok=True)


def why(error: OSError) -> str:
    """An OSError in a few words: 'no space left on device', 'permission denied', ..."""
    if error.errno == errno.ENOSPC:
        return "no space left on device; free some space and run again"
    return (error.strerror or type(error).__name__).lower()
