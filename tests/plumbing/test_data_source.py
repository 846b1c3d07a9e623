"""Where data comes from: local files, zips, folders, downloads with a cache, checksums, and their errors."""

from __future__ import annotations

import hashlib
import http.server
import socket
import threading
import zipfile
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from demand.errors import PipelineError
from plumbing import settings
from plumbing.data_source import DATA_ENV_VAR, cache_dir, fetch_data, read_hourly, uci_download
from tests.synthetic import hourly_table, write_csv

TIMEOUT = 5.0


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_zip(csv: Path, path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.write(csv, "Bike-Sharing-Dataset/hour.csv")
        archive.writestr("Bike-Sharing-Dataset/Readme.txt", "readme")
    return path


@pytest.fixture
def file_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real HTTP server on a free localhost port serving a folder; yields (base URL, folder)."""
    folder = tmp_path / "served"
    folder.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", folder
    server.shutdown()
    server.server_close()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_offline_copy_stands_in_for_the_uci_download_only(small_csv: Path, tmp_path: Path) -> None:
    """BIKE_SHARING_DATA is read for the UCI URL alone, and must hold the pinned bytes: it can never change
    what a run trains on. Other data is named by `data` itself."""
    environ = {DATA_ENV_VAR: str(small_csv), "XDG_CACHE_HOME": str(tmp_path)}
    with pytest.raises(
        PipelineError, match=rf"{DATA_ENV_VAR}=.*hour\.csv is not a copy of the UCI download .*pass -P data="
    ) as refused:
        fetch_data(uci_download(), environ)
    assert "\n" not in str(refused.value)
    mine = fetch_data(str(small_csv), environ)
    assert (mine.source, mine.read_from, mine.pinned) == (str(small_csv), str(small_csv), False)
    missing = {DATA_ENV_VAR: str(tmp_path / "nowhere"), "XDG_CACHE_HOME": str(tmp_path)}
    with pytest.raises(PipelineError, match=rf"^{DATA_ENV_VAR}: data file not found: .*nowhere"):
        fetch_data(uci_download(), missing)


@pytest.mark.real_data
def test_the_offline_copy_is_read_as_the_uci_download(real_data: Path, tmp_path: Path) -> None:
    copy = fetch_data(uci_download(), {DATA_ENV_VAR: str(real_data), "XDG_CACHE_HOME": str(tmp_path)})
    assert (copy.source, copy.pinned) == (uci_download(), True)
    assert copy.sha256 == settings.config()["ingest"]["uci_hour_csv_sha256"]
    assert copy.read_params() == {"data": uci_download(), "data_sha256": copy.sha256}
    assert Path(copy.read_from).is_file() and Path(copy.read_from).is_relative_to(real_data.resolve())


def test_a_file_that_cannot_be_read_is_one_line(tmp_path: Path) -> None:
    """A file that exists but whose read fails (here /proc/self/mem, which every read refuses, even
    root's; a file without read permission fails the same way) is one line, not a traceback."""
    with pytest.raises(PipelineError, match=r"^cannot read data /proc/\d+/mem \(input/output error\); pass"):
        read_hourly("/proc/self/mem", None, tmp_path, TIMEOUT)


def test_cache_dir_follows_xdg() -> None:
    assert cache_dir({"XDG_CACHE_HOME": "/c"}) == Path("/c/bike-sharing-demand")


def test_reads_csv_zip_and_folder_to_the_same_bytes(small_csv: Path, tmp_path: Path) -> None:
    archive = make_zip(small_csv, tmp_path / "data.zip")
    results = [read_hourly(str(p), None, tmp_path, TIMEOUT) for p in (small_csv, archive, small_csv.parent)]
    assert {r.sha256 for r in results} == {sha256(small_csv.read_bytes())}
    assert results[1].label.endswith("data.zip!Bike-Sharing-Dataset/hour.csv")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match=r"data file not found: .*nowhere\.csv; pass -P data="):
        read_hourly(str(tmp_path / "nowhere.csv"), None, tmp_path, TIMEOUT)


def test_zip_without_hour_csv(tmp_path: Path) -> None:
    path = tmp_path / "other.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("day.csv", "x")
    with pytest.raises(PipelineError, match=r"holds no hour\.csv"):
        read_hourly(str(path), None, tmp_path, TIMEOUT)


def test_corrupt_zip(tmp_path: Path) -> None:
    path = tmp_path / "broken.zip"
    path.write_bytes(b"PK\x03\x04" + b"\x00" * 40)
    with pytest.raises(PipelineError, match="is not a readable zip"):
        read_hourly(str(path), None, tmp_path, TIMEOUT)


def test_checksum_mismatch_names_both_digests(small_csv: Path, tmp_path: Path) -> None:
    with pytest.raises(
        PipelineError,
        match=rf"checksum mismatch: .* has sha256 {sha256(small_csv.read_bytes())}, expected the pinned 0+",
    ):
        read_hourly(str(small_csv), "0" * 64, tmp_path, TIMEOUT)


def test_download_is_cached_and_reused(
    file_server: tuple[str, Path], small_csv: Path, tmp_path: Path
) -> None:
    base, folder = file_server
    make_zip(small_csv, folder / "bike.zip")
    cache = tmp_path / "cache"
    first = read_hourly(f"{base}/bike.zip", None, cache, TIMEOUT)
    (folder / "bike.zip").unlink()  # the server can no longer provide it: a second read must use the cache
    second = read_hourly(f"{base}/bike.zip", None, cache, TIMEOUT)
    assert first.sha256 == second.sha256 == sha256(small_csv.read_bytes())
    assert first.source == f"{base}/bike.zip"
    assert len(list(cache.rglob("bike.zip"))) == 1


def test_unreachable_url_says_what_to_do(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}/bike.zip"
    hint = rf"pass -P data=<a local UCI zip or hour\.csv>, or set {DATA_ENV_VAR} to a copy"
    with pytest.raises(PipelineError, match=rf"cannot download {url} \(.*\); {hint}"):
        read_hourly(url, None, tmp_path, TIMEOUT)
    assert not list(tmp_path.rglob("*.zip")), "a failed download must leave nothing in the cache"


def test_http_error_is_a_clear_error(file_server: tuple[str, Path], tmp_path: Path) -> None:
    base, _ = file_server
    with pytest.raises(PipelineError, match=r"cannot download .*missing\.zip \(.*File not found"):
        read_hourly(f"{base}/missing.zip", None, tmp_path, TIMEOUT)


def test_line_endings_change_the_recorded_digest_only(tmp_path: Path) -> None:
    frame = hourly_table(days=1)
    crlf = read_hourly(str(write_csv(frame, tmp_path / "a.csv", "\r\n")), None, tmp_path, TIMEOUT)
    lf = read_hourly(str(write_csv(frame, tmp_path / "b.csv", "\n")), None, tmp_path, TIMEOUT)
    assert crlf.sha256 != lf.sha256


@pytest.mark.parametrize(
    "broken",
    [
        b"<html><body>502 Bad Gateway</body></html>",
        b"PK\x03\x04 truncated",
        b"",
        b"instant,dteday,cnt\n1,x,3\n",
    ],
    ids=["an HTML page", "a truncated zip", "nothing", "a CSV that breaks the contract"],
)
def test_a_broken_download_never_replaces_the_good_cached_copy(
    file_server: tuple[str, Path], small_csv: Path, tmp_path: Path, broken: bytes
) -> None:
    base, folder = file_server
    make_zip(small_csv, folder / "bike.zip")
    cache = tmp_path / "cache"
    good = read_hourly(f"{base}/bike.zip", None, cache, TIMEOUT)
    (folder / "bike.zip").write_bytes(broken)  # the server now answers 200 with something else
    again = read_hourly(f"{base}/bike.zip", None, cache, TIMEOUT)
    assert again.sha256 == good.sha256
    (cached,) = cache.rglob("bike.zip")
    assert cached.read_bytes().startswith(b"PK\x03\x04") and len(cached.read_bytes()) > 100


def test_a_broken_first_download_is_one_line_and_caches_nothing(
    file_server: tuple[str, Path], tmp_path: Path
) -> None:
    base, folder = file_server
    (folder / "bike.zip").write_bytes(b"<html>maintenance</html>")
    with pytest.raises(PipelineError, match=r"the download of .*bike\.zip"):
        read_hourly(f"{base}/bike.zip", None, tmp_path / "cache", TIMEOUT)
    assert not list((tmp_path / "cache").rglob("bike.zip"))


def test_a_file_uri_reads_the_file(small_csv: Path, tmp_path: Path) -> None:
    by_uri = read_hourly(small_csv.as_uri(), None, tmp_path, TIMEOUT)
    assert by_uri.sha256 == read_hourly(str(small_csv), None, tmp_path, TIMEOUT).sha256
    assert by_uri.read_from == str(small_csv)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("file://elsewhere/data/hour.csv", r"names a file on another host"),
        ("s3://bucket/hour.csv", r"s3:// is not a source this pipeline reads"),
        ("file:///nowhere/hour.csv", r"data file not found: /nowhere/hour\.csv"),
    ],
)
def test_other_uris_are_refused_in_one_line(tmp_path: Path, data: str, message: str) -> None:
    with pytest.raises(PipelineError, match=message):
        read_hourly(data, None, tmp_path, TIMEOUT)


def test_a_name_from_the_data_itself_is_shown_short_and_on_one_line(small_csv: Path, tmp_path: Path) -> None:
    archive = tmp_path / "odd.zip"
    with zipfile.ZipFile(archive, "w") as written:
        written.write(small_csv, "x" * 3000 + "\ninjected/hour.csv")
    read = read_hourly(str(archive), None, tmp_path, TIMEOUT)
    assert "\n" not in read.label and len(read.label) < 600
    with pytest.raises(PipelineError, match=r"cannot read data .*file name too long") as raised:
        read_hourly(str(tmp_path / ("y" * 300)), None, tmp_path, TIMEOUT)
    assert len(str(raised.value)) < 500
