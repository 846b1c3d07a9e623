"""A fault outside the user's input is told apart by what caused it: a real HTTP server that answers its
/health but drops artifact uploads (its artifact store is down) is not reported as a server that stopped
answering, and one that is gone is."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
from mlflow.store.artifact.http_artifact_repo import HttpArtifactRepository

from plumbing.faults import server_trouble
from tests.helpers import free_port

ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts/1/run/artifacts"


class ArtifactStoreDown(http.server.BaseHTTPRequestHandler):
    """/health answers; an artifact upload gets its connection closed unanswered, or HTTP 503."""

    status_for_uploads: int | None = None  # None: close the connection

    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()

    def do_PUT(self) -> None:
        if self.status_for_uploads is None:
            self.close_connection = True
            return
        self.send_response(self.status_for_uploads)
        self.end_headers()

    def log_message(self, *arguments: object) -> None:
        pass


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[http.server.ThreadingHTTPServer]:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    served = http.server.ThreadingHTTPServer(("127.0.0.1", 0), ArtifactStoreDown)
    threading.Thread(target=served.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{served.server_address[1]}"
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(url)
    yield served
    served.shutdown()
    served.server_close()
    mlflow.set_tracking_uri(previous)


def upload_error(tmp_path: Path) -> BaseException:
    """What a real artifact upload to the tracking server raises."""
    (tmp_path / "hour.parquet").write_bytes(b"x" * 200_000)
    repository = HttpArtifactRepository(f"{mlflow.get_tracking_uri()}{ARTIFACTS}")
    with pytest.raises(Exception) as raised:
        repository.log_artifact(str(tmp_path / "hour.parquet"), "data")
    return raised.value


@pytest.mark.parametrize("status", [None, 503], ids=["connection dropped", "HTTP 503"])
def test_an_artifact_store_outage_behind_a_live_server_is_named_as_such(
    server: http.server.ThreadingHTTPServer, tmp_path: Path, status: int | None, monkeypatch
) -> None:
    monkeypatch.setattr(ArtifactStoreDown, "status_for_uploads", status)
    said = server_trouble(upload_error(tmp_path))
    assert said is not None and "could not reach its artifact store" in said


def test_a_server_that_is_gone_stopped_answering(
    server: http.server.ThreadingHTTPServer, tmp_path: Path
) -> None:
    server.shutdown()
    server.server_close()
    said = server_trouble(upload_error(tmp_path))
    assert said == f"the tracking server {mlflow.get_tracking_uri()} stopped answering"


def test_other_errors_are_not_server_trouble() -> None:
    assert server_trouble(ValueError("column 'hr' is outside 0..23")) is None


def test_an_s3_endpoint_that_does_not_answer_is_named_not_the_tracking_store(
    tracking_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint = f"http://dave:S3cret@127.0.0.1:{free_port()}"
    for name, value in {"MLFLOW_S3_ENDPOINT_URL": endpoint, "AWS_MAX_ATTEMPTS": "1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "dave")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "key")
    experiment = mlflow.create_experiment("on-s3", artifact_location="s3://models/bike")
    (tmp_path / "f.txt").write_text("x")
    with mlflow.start_run(experiment_id=experiment), pytest.raises(Exception) as raised:
        mlflow.log_artifact(str(tmp_path / "f.txt"))
    assert server_trouble(raised.value) == (
        f"the artifact store's S3 endpoint {endpoint.replace(':S3cret@', ':***@')} did not answer"
    )


def test_another_address_is_named_as_the_one_called(server: http.server.ThreadingHTTPServer) -> None:
    elsewhere = ConnectionError("HTTPConnectionPool(host='10.1.2.3', port=8080): Max retries exceeded")
    assert server_trouble(elsewhere) == "10.1.2.3:8080, which this run called, did not answer"
    here = ConnectionError(
        f"HTTPConnectionPool(host='127.0.0.1', port={server.server_address[1]}): Max retries exceeded"
    )
    assert server_trouble(here) == f"the tracking server {mlflow.get_tracking_uri()} stopped answering"
