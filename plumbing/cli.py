"""A step's command line: its parser, and how it runs: logging set up, SIGTERM/SIGINT end its runs
KILLED, a PipelineError is one line and a non-zero exit."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import traceback
from collections.abc import Callable
from types import FrameType

import mlflow

from demand.errors import PipelineError, redacted
from plumbing.faults import full_disk, server_trouble
from plumbing.names import EXPERIMENT_NAME

log = logging.getLogger(__name__)
EXPERIMENT_ENV_VARS = ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID")
EXIT_INTERRUPTED = 130


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
    try:
        if not any(os.environ.get(name) for name in EXPERIMENT_ENV_VARS):
            mlflow.set_experiment(EXPERIMENT_NAME)  # only outside `mlflow run`, which picks the experiment
        work()
    except PipelineError as error:
        log.error("%s", redacted(str(error)))
        sys.exit(1)
    except Interrupted as interruption:
        log.error("stopped by %s: the running runs are marked KILLED; the next run resumes", interruption)
        sys.exit(EXIT_INTERRUPTED)
    except Exception as error:
        where, unreachable = full_disk(error), server_trouble(error)
        if where is None and unreachable is None:  # a bug: its traceback, without any password in it
            log.error("%s", redacted("".join(traceback.format_exception(error))).rstrip())
        elif where is not None:
            log.error("no space left on %s; free some space and run again (the next run resumes)", where)
        else:
            log.error("%s; run again once it is fixed: finished steps are reused", unreachable)
        sys.exit(1)
