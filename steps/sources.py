"""Where the hourly data comes from: an http(s) URL (downloaded once into the user's cache), a UCI zip,
a hour.csv, or a folder holding hour.csv. Returns the exact bytes of hour.csv and their sha256.
"""

from __future__ import annotations

import hashlib
import logging
import os
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from steps.errors import PipelineError

log = logging.getLogger(__name__)

DATA_ENV_VAR = "BIKE_SHARING_DATA"
HOURLY_FILE = "hour.csv"
ZIP_MAGIC = b"PK\x03\x04"
OFFLINE_HINT = f"pass -P data=<local UCI zip or hour.csv> or set {DATA_ENV_VAR} to one"


@dataclass(frozen=True)
class HourlyBytes:
    """The raw hour.csv and where it came from."""

    source: str  # the URL or absolute path that was read
    label: str  # how to name the file in messages
    content: bytes
    sha256: str


def choose_source(data: str, default: str, environ: dict[str, str] | os._Environ) -> str:
    """The `data` argument, except that BIKE_SHARING_DATA replaces the default when it is set."""
    override = environ.get(DATA_ENV_VAR, "").strip()
    return override if data == default and override else data


def is_url(source: str) -> bool:
    return urlparse(source).scheme in ("http", "https")


def cache_dir(environ: dict[str, str] | os._Environ) -> Path:
    """The user's cache directory for downloads (XDG_CACHE_HOME, else ~/.cache)."""
    root = environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "bike-sharing-demand"


def read_hourly(source: str, pinned_sha256: str | None, cache: Path, timeout_seconds: float) -> HourlyBytes:
    """Fetch hour.csv from `source`; when `pinned_sha256` is given the bytes must match it."""
    if is_url(source):
        path = _cached_download(source, cache, timeout_seconds)
        origin = source
    else:
        path = Path(source).expanduser().resolve()
        origin = str(path)
        if path.is_dir():
            path = path / HOURLY_FILE
        if not path.is_file():
            raise PipelineError(f"data file not found: {path}; {OFFLINE_HINT}")
    content, label = _hourly_csv_bytes(path)
    digest = hashlib.sha256(content).hexdigest()
    if pinned_sha256 and digest != pinned_sha256:
        raise PipelineError(
            f"checksum mismatch: {label} has sha256 {digest}, expected the pinned {pinned_sha256}; "
            f"delete {path} and run again, or {OFFLINE_HINT}"
        )
    return HourlyBytes(source=origin, label=label, content=content, sha256=digest)


def _cached_download(url: str, cache: Path, timeout_seconds: float) -> Path:
    name = Path(urlparse(url).path).name or "download"
    target = cache / hashlib.sha256(url.encode()).hexdigest()[:16] / name
    if target.is_file():
        log.info("Reusing the cached download %s", target)
        return target
    log.info("Downloading %s", url)
    try:
        with urllib.request.urlopen(url, timeout=timeout_seconds) as response:
            content = response.read()
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise PipelineError(f"cannot download {url} ({reason}); {OFFLINE_HINT}") from None
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{name}.{os.getpid()}.part")
    partial.write_bytes(content)
    partial.replace(target)  # atomic: a concurrent run sees the whole file or none
    return target


def _hourly_csv_bytes(path: Path) -> tuple[bytes, str]:
    with path.open("rb") as handle:
        is_zip = handle.read(len(ZIP_MAGIC)) == ZIP_MAGIC
    if not is_zip:
        return path.read_bytes(), str(path)
    try:
        with zipfile.ZipFile(path) as archive:
            members = [m for m in archive.namelist() if Path(m).name == HOURLY_FILE]
            if not members:
                raise PipelineError(f"{path} holds no {HOURLY_FILE}; expected the UCI Bike Sharing zip")
            return archive.read(members[0]), f"{path}!{members[0]}"
    except zipfile.BadZipFile:
        raise PipelineError(f"{path} is not a readable zip; delete it or {OFFLINE_HINT}") from None
