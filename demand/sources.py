"""Where the hourly data comes from: an http(s) URL (downloaded once into the user's cache), a UCI zip,
a hour.csv, or a folder holding hour.csv. Returns the exact bytes of hour.csv and their sha256, and
turns them into the validated table.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import urllib.error
import urllib.request
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import pandas as pd

from demand.csv_text import read_csv_text
from demand.errors import PipelineError, quoted, shown, shown_path
from demand.schema import TARGET, parse_hourly

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
    pinned: bool  # checked against the pinned digest, not only recorded


def choose_source(data: str, default: str, environ: Mapping[str, str]) -> str:
    """The `data` argument, except that BIKE_SHARING_DATA replaces the default when it is set."""
    override = environ.get(DATA_ENV_VAR, "").strip()
    return override if data == default and override else data


def is_url(source: str) -> bool:
    return urlparse(source).scheme in ("http", "https")


def cache_dir(environ: Mapping[str, str]) -> Path:
    """The user's cache directory for downloads (XDG_CACHE_HOME, else ~/.cache)."""
    root = environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "bike-sharing-demand"


def fetch_hourly(
    data: str, default: str, pinned_sha256: str, timeout_seconds: float, environ: Mapping[str, str]
) -> HourlyBytes:
    """hour.csv for the `data` parameter: BIKE_SHARING_DATA replaces the `default` source, and the
    default (the official UCI download) must match `pinned_sha256`."""
    source = choose_source(data, default, environ)
    pinned = pinned_sha256 if source == default else None
    return read_hourly(source, pinned, cache_dir(environ), timeout_seconds)


def read_hourly(source: str, pinned_sha256: str | None, cache: Path, timeout_seconds: float) -> HourlyBytes:
    """Fetch hour.csv from `source`; when `pinned_sha256` is given the bytes must match it."""
    if is_url(source):
        path = _cached_download(source, cache, timeout_seconds, pinned_sha256)
        origin = source
    else:
        path = local_path(source)
        origin = str(path)
        try:
            if path.is_dir():
                path = path / HOURLY_FILE
            found = path.is_file()
        except OSError as error:  # a name too long, a loop of links...
            reason = (error.strerror or type(error).__name__).lower()
            raise PipelineError(f"cannot read data {shown_path(path)} ({reason}); {OFFLINE_HINT}") from None
        if not found:
            raise PipelineError(f"data file not found: {shown_path(path)}; {OFFLINE_HINT}")
    content, label = hourly_csv(path.read_bytes(), shown_path(path))
    digest = _checked_digest(content, label, pinned_sha256, f"delete {path} and run again, or {OFFLINE_HINT}")
    return HourlyBytes(origin, label, content, digest, pinned=bool(pinned_sha256))


def local_path(source: str) -> Path:
    """The file a `data` value names: a path, or a file:// URI on this host. Any other URI is refused."""
    parsed = urlparse(source)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise PipelineError(f"data={quoted(source)} names a file on another host; {OFFLINE_HINT}")
        return Path(url2pathname(parsed.path)).resolve()
    if len(parsed.scheme) > 1:  # one letter is a Windows drive
        raise PipelineError(
            f"data={quoted(source)}: {shown(parsed.scheme, 20)}:// is not a source this pipeline reads; "
            "pass an http(s) URL, a local path or a file:// URI"
        )
    return Path(source).expanduser().resolve()


def _checked_digest(content: bytes, label: str, pinned_sha256: str | None, what_to_do: str) -> str:
    digest = hashlib.sha256(content).hexdigest()
    if pinned_sha256 and digest != pinned_sha256:
        expected = f"expected the pinned {pinned_sha256}"
        raise PipelineError(f"checksum mismatch: {label} has sha256 {digest}, {expected}; {what_to_do}")
    return digest


def _cached_download(url: str, cache: Path, timeout_seconds: float, pinned_sha256: str | None) -> Path:
    """The cached copy of `url`. A pinned file never changes, so its copy is final; any other URL is
    asked again each run (a conditional request: cheap when nothing changed), so new rows arrive.
    A new download replaces the cached copy only once it has been checked: an hour.csv that meets the
    whole contract (demand/schema.py), with the pinned digest when there is one."""
    name = Path(urlparse(url).path).name or "download"
    target = cache / hashlib.sha256(url.encode()).hexdigest()[:16] / name
    validators = target.with_name(f".{name}.validators.json")
    if target.is_file() and pinned_sha256:
        log.info("Reusing the cached download %s", target)
        return target
    request = urllib.request.Request(url)
    if target.is_file() and validators.is_file():
        for header, value in json.loads(validators.read_text()).items():
            request.add_header(header, value)
    log.info("Downloading %s", shown(url))
    try:
        with urllib.request.urlopen(request, timeout=timeout_seconds) as response:
            content = response.read()
            seen = {
                "If-None-Match": response.headers.get("ETag"),
                "If-Modified-Since": response.headers.get("Last-Modified"),
            }
    except urllib.error.HTTPError as error:
        if error.code == HTTPStatus.NOT_MODIFIED:
            return target
        return _cached_or_fail(url, target, error.reason)
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        return _cached_or_fail(url, target, getattr(error, "reason", error))
    try:
        csv, label = hourly_csv(content, f"the download of {shown_path(url)}")
        parse_hourly(read_csv_text(csv, label), label)  # the whole hour.csv contract, before it is kept
        _checked_digest(
            csv, label, pinned_sha256, f"the source changed or the download broke; {OFFLINE_HINT}"
        )
    except PipelineError as invalid:
        return _cached_or_fail(url, target, invalid)
    target.parent.mkdir(parents=True, exist_ok=True)
    for path, data in (
        (target, content),
        (validators, json.dumps({k: v for k, v in seen.items() if v}).encode()),
    ):
        partial = path.with_name(f".{path.name}.{os.getpid()}.part")
        partial.write_bytes(data)
        partial.replace(path)  # atomic: a concurrent run sees the whole file or none
    return target


def _cached_or_fail(url: str, target: Path, reason: object) -> Path:
    if target.is_file():
        log.warning(
            "cannot use a new download of %s (%s); using the copy cached at %s", shown(url), reason, target
        )
        return target
    if isinstance(reason, PipelineError):
        raise reason
    raise PipelineError(f"cannot download {shown_path(url)} ({shown(reason)}); {OFFLINE_HINT}")


def hourly_csv(data: bytes, label: str) -> tuple[bytes, str]:
    """The bytes of hour.csv in `data` (a UCI zip, or hour.csv itself) and how to name them."""
    if data.startswith(ZIP_MAGIC):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                members = [m for m in archive.namelist() if Path(m).name == HOURLY_FILE]
                if not members:
                    raise PipelineError(f"{label} holds no {HOURLY_FILE}; expected the UCI Bike Sharing zip")
                return archive.read(members[0]), f"{label}!{shown_path(members[0])}"
        except zipfile.BadZipFile:
            raise PipelineError(f"{label} is not a readable zip; delete it or {OFFLINE_HINT}") from None
    return data, label


def hourly_table(hourly: HourlyBytes) -> pd.DataFrame:
    """The validated, typed, time-ordered table from the raw bytes of hour.csv."""
    return parse_hourly(read_csv_text(hourly.content, hourly.label), hourly.label)


def describe_table(table: pd.DataFrame) -> dict[str, float]:
    return {"rows": len(table), "days": table["dteday"].nunique(), "cnt_total": float(table[TARGET].sum())}
