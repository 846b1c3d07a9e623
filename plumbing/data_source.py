"""Where the hourly data comes from: decided here and nowhere else.

The `data` parameter names what is read, and the runs record it as `params.data`:
- an http(s) URL: downloaded once into the user's cache. The MLproject default, the official UCI download,
  must match the sha256 pinned in config.yaml; any other URL is asked again each run (a conditional
  request), so that new rows arrive;
- a local UCI zip, a hour.csv, a folder holding either, or a file:// URI on this host.

BIKE_SHARING_DATA names an offline copy of the UCI download (the zip, hour.csv, or their folder), for
machines without internet. It stands in for the download only: it is used when `data` is the UCI URL, and
only if its hour.csv has the pinned sha256, so it can never change what a run trains on. To train on
other data, pass it as `-P data=...`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, replace
from http import HTTPStatus
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

from demand.errors import PipelineError, quoted, redacted, shown, shown_path
from demand.hourly import HOURLY_FILE, hourly_csv, hourly_table
from plumbing import settings
from plumbing.files import why

log = logging.getLogger(__name__)

DATA_ENV_VAR = "BIKE_SHARING_DATA"
OFFLINE_HINT = (
    f"pass -P data=<a local UCI zip or hour.csv>, or set {DATA_ENV_VAR} to a copy of the UCI download"
)


@dataclass(frozen=True)
class HourlyBytes:
    """The raw hour.csv, what `data` named, and which file the bytes were read from."""

    source: str  # `data` as given: the URL, a path (absolute, or relative to where the step runs)
    read_from: str  # the file read: the source itself, the download's cached copy, or the offline copy
    label: str  # how to name the file in messages
    content: bytes
    sha256: str
    pinned: bool  # checked against the pinned digest, not only recorded

    def read_params(self) -> dict[str, str]:
        """What was read, as the params of ingest's run (run or reused) and of the pipeline's run."""
        return {"data": self.source, "data_sha256": self.sha256}


def uci_download() -> str:
    """The official UCI download: MLproject's default `data`."""
    return settings.parameter_defaults("ingest")["data"]


def fetch_data(data: str, environ: Mapping[str, str] = os.environ) -> HourlyBytes:
    """hour.csv for the `data` parameter, with the project's pinned digest and download timeout."""
    parse_data(data)
    options = settings.config()["ingest"]
    pinned = options["uci_hour_csv_sha256"] if data == uci_download() else None
    copy = offline_copy(environ)
    if pinned and copy is not None:
        return _from_offline_copy(data, copy, pinned)
    return read_hourly(data, pinned, cache_dir(environ), options["download_timeout_seconds"])


def parse_data(data: str) -> str:
    """`data`, unless it holds a password: runs record `data` as it is, for good."""
    if redacted(data) != data:
        raise PipelineError(
            f"parameter data={quoted(data)} holds a password, and runs record `data` as it is; download the "
            "file and pass -P data=<the local copy>"
        )
    return data


def offline_copy(environ: Mapping[str, str] = os.environ) -> Path | None:
    """The offline copy of the UCI download that BIKE_SHARING_DATA names, if it is set."""
    value = environ.get(DATA_ENV_VAR, "").strip()
    return Path(value).expanduser().resolve() if value else None


def _from_offline_copy(url: str, copy: Path, pinned_sha256: str) -> HourlyBytes:
    try:
        hourly = read_hourly(str(copy), None, Path(), 0)
    except PipelineError as error:
        raise PipelineError(f"{DATA_ENV_VAR}: {error}") from None
    if hourly.sha256 != pinned_sha256:
        raise PipelineError(
            f"{DATA_ENV_VAR}={shown_path(copy)} is not a copy of the UCI download (its hour.csv has sha256 "
            f"{hourly.sha256}, the pinned one is {pinned_sha256}); to train on it, pass -P data="
            f"{shown_path(copy)}, or unset {DATA_ENV_VAR}"
        )
    log.info("Reading the UCI download from its offline copy %s (%s)", hourly.read_from, DATA_ENV_VAR)
    return replace(hourly, source=url, pinned=True)


def is_url(source: str) -> bool:
    return urlparse(source).scheme in ("http", "https")


def cache_dir(environ: Mapping[str, str]) -> Path:
    """The user's cache directory for downloads (XDG_CACHE_HOME, else ~/.cache)."""
    root = environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "bike-sharing-demand"


def read_hourly(source: str, pinned_sha256: str | None, cache: Path, timeout_seconds: float) -> HourlyBytes:
    """Fetch hour.csv from `source`; when `pinned_sha256` is given the bytes must match it."""
    if is_url(source):
        path = _cached_download(source, cache, timeout_seconds, pinned_sha256)
        what_to_do = f"delete {path} and run again, or {OFFLINE_HINT}"
    else:
        path, what_to_do = local_path(source), OFFLINE_HINT
        try:
            if path.is_dir():
                path = path / HOURLY_FILE
            found = path.is_file()
        except OSError as error:  # a name too long, a loop of links...
            raise _unreadable(path, error) from None
        if not found:
            raise PipelineError(f"data file not found: {shown_path(path)}; {OFFLINE_HINT}")
    try:
        raw = path.read_bytes()
    except OSError as error:  # permission denied, an I/O error...
        raise _unreadable(path, error) from None
    content, label = hourly_csv(raw, shown_path(path))
    digest = _checked_digest(content, label, pinned_sha256, what_to_do)
    return HourlyBytes(source, str(path), label, content, digest, pinned=bool(pinned_sha256))


def _unreadable(path: Path, error: OSError) -> PipelineError:
    return PipelineError(f"cannot read data {shown_path(path)} ({why(error)}); {OFFLINE_HINT}")


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
        hourly_table(csv, label)  # the whole hour.csv contract, before it is kept
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
