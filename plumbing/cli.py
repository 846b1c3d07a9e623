"""A step's command line: its parser, and how it runs: logging set up, SIGTERM/SIGINT end its runs
KILLED, a PipelineError is one line and a non-zero exit."""

from __future__ import annotations

import argparse
import errno
import logging
import os
import re
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable, Iterator
from types import FrameType

import mlflow

from demand.errors import PipelineError, shown_path
from plumbing import settings
from plumbing.liveness import heartbeat
from plumbing.names import EXPERIMENT_NAME
from plumbing.store import redacted

log = logging.getLogger(__name__)
EXPERIMENT_ENV_VARS = ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID")
EXIT_INTERRUPTED = 130
FULL_BYTES = 1024 * 1024  # a disk with less free space than this is full


class Interrupted(BaseException):
    """SIGTERM or SIGINT: not an error of the step, so not an Exception; its runs end KILLED."""


def argument_parser(description: str | None) -> argparse.ArgumentParser:
    """A step CLI's parser, with the module docstring as its help."""
    return argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signal.Signals(signum).name)


def run_cli(work: Callable[[], object]) -> None:
    """Run a CLI: logging set up, SIGTERM/SIGINT end the runs KILLED, a PipelineError is one line."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _interrupt)
    if not any(os.environ.get(name) for name in EXPERIMENT_ENV_VARS):
        mlflow.set_experiment(EXPERIMENT_NAME)  # only outside `mlflow run`, which picks the experiment
    try:
        with heartbeat(mlflow.MlflowClient(), settings.config()["pipeline"]["heartbeat_seconds"]):
            work()
    except PipelineError as error:
        log.error("%s", error)
        sys.exit(1)
    except Interrupted as interruption:
        log.error("stopped by %s: the running runs are marked KILLED; the next run resumes", interruption)
        sys.exit(EXIT_INTERRUPTED)
    except Exception as error:
        where, unreachable = full_disk(error), server_trouble(error)
        if where is None and unreachable is None:
            raise
        if where is not None:
            log.error("no space left on %s; free some space and run again (the next run resumes)", where)
        else:
            log.error("%s; run again once it is fixed: finished steps are reused", unreachable)
        sys.exit(1)


def server_trouble(error: BaseException) -> str | None:
    """What went wrong, in one line, when `error` (or its cause) says the tracking server did not answer
    or could not reach its artifact store; None for any other error."""
    server = redacted(mlflow.get_tracking_uri())
    for cause in causes(error):
        text = str(cause)
        if "/mlflow-artifacts/" in text and re.search(r"(error code|too many) 50[023]\b", text):
            return f"the tracking server {server} could not reach its artifact store (HTTP 5xx); see its log"
        if any(sign in text for sign in ("Max retries exceeded", "Connection refused", "ConnectionError")):
            return f"the tracking server {server} stopped answering"
    return None


def full_disk(error: BaseException) -> str | None:
    """Where the disk is full, when `error` (or what caused it) says so: a path, or the store."""
    for cause in causes(error):
        if isinstance(cause, OSError) and cause.errno == errno.ENOSPC:
            return shown_path(cause.filename) if cause.filename else _full_folder()
        if "database or disk is full" in str(cause):
            return "the disk of the tracking store"
    return None


def causes(error: BaseException) -> Iterator[BaseException]:
    """`error`, then what caused it, and so on (each once)."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def _full_folder() -> str:
    """A write error names no file: the folder this process writes to whose disk is full."""
    for folder in (tempfile.gettempdir(), os.getcwd()):
        if shutil.disk_usage(folder).free < FULL_BYTES:
            return folder
    return "the device"
