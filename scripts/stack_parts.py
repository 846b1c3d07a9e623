"""Processes and files of the team stack (scripts/stack.py): free ports, detached processes with pid files,
files only their owner reads, and waiting with progress."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from plumbing.liveness import process_start, same_process_alive

BIN = Path(sys.executable).parent
WEED_PORTS = ("master", "master_grpc", "volume", "volume_grpc", "filer", "filer_grpc", "s3", "s3_grpc")
START_SECONDS = 180  # far above a first start on an empty database (measured in docs/team-stack.md)
PROGRESS_SECONDS = 5


class StackError(Exception):
    pass


def free_ports(names: list[str]) -> dict[str, int]:
    """A free loopback port for each name, all different."""
    sockets = [socket.socket() for _ in names]
    try:
        for probe in sockets:
            probe.bind(("127.0.0.1", 0))
        return {name: probe.getsockname()[1] for name, probe in zip(names, sockets, strict=True)}
    finally:
        for probe in sockets:
            probe.close()


def write_private(path: Path, text: str) -> None:
    """Write `text` to a file only its owner can read (0600), never readable in between."""
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(text)


def write_env(path: Path, values: dict[str, str]) -> None:
    write_private(path, "".join(f"{name}={value}\n" for name, value in values.items()))


def running(folder: Path, name: str) -> bool:
    """The process <name>.pid names runs, and is the one `start` started (not a reused pid after a reboot)."""
    pid, started = _pid_file(folder, name)
    return pid is not None and same_process_alive(pid, started) and not _zombie(pid)


def _pid_file(folder: Path, name: str) -> tuple[int | None, str]:
    """The pid and the process start time recorded in <name>.pid: "<pid> <start>"."""
    text = (folder / f"{name}.pid").read_text().split() if (folder / f"{name}.pid").is_file() else []
    if not text or not text[0].isdigit():
        return None, ""
    return int(text[0]), text[1] if len(text) > 1 else ""


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z"
    except OSError:
        return False


def start(folder: Path, name: str, command: list[str], environment: dict[str, str] | None = None) -> None:
    """Start `command` detached (its own session), logging to <name>.log; its pid and start time in
    <name>.pid."""
    if running(folder, name):
        return
    with (folder / f"{name}.log").open("a") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, cwd=folder, env=environment, start_new_session=True
        )
    (folder / f"{name}.pid").write_text(f"{process.pid} {process_start(process.pid)}")


def stop(folder: Path, name: str) -> bool:
    """Stop the process group that `start` began: SIGTERM, then SIGKILL after 30 s. False if none ran."""
    pid_file = folder / f"{name}.pid"
    if not running(folder, name):
        pid_file.unlink(missing_ok=True)
        return False
    pid, _ = _pid_file(folder, name)
    _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and running(folder, name):
        time.sleep(0.2)
    if running(folder, name):
        _signal_group(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)
    return True


def _signal_group(pid: int, signum: int) -> None:
    try:
        os.killpg(pid, signum)
    except ProcessLookupError:
        pass  # gone already
    except PermissionError:
        raise StackError(
            f"not allowed to stop process group {pid}; stop it as the user who started it"
        ) from None


def waiting(what: str, where: str) -> Iterator[None]:
    """Yield about once a second until START_SECONDS pass, saying every few seconds that it waits."""
    started = time.monotonic()
    said = started
    while time.monotonic() - started < START_SECONDS:
        yield
        if time.monotonic() - said >= PROGRESS_SECONDS:
            print(f"  waiting for {what} at {where} ({time.monotonic() - started:.0f} s)", flush=True)
            said = time.monotonic()
        time.sleep(1)
