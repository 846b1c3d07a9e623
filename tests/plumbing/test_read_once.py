"""What a pipeline process reads once: tables and models at URIs that cannot change; aliases every time."""

from __future__ import annotations

import pytest

from plumbing import artifacts


@pytest.fixture(autouse=True)
def nothing_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(artifacts, "_KEPT", type(artifacts._KEPT)())


def reads_of(uris: list[str]) -> list[str]:
    """The URIs a reader was really called for, reading `uris` in order."""
    called: list[str] = []
    for uri in uris:
        artifacts.read_once(uri, lambda uri=uri: called.append(uri) or uri)
    return called


@pytest.mark.parametrize(
    "uri",
    ["runs:/0123abcd/features/test.parquet", "models:/m-0123abcd", "models:/bike-sharing-demand/3"],
)
def test_an_unchanging_uri_is_read_once(uri: str) -> None:
    assert reads_of([uri, uri, uri]) == [uri]


@pytest.mark.parametrize(
    "uri", ["models:/bike-sharing-demand@champion", "models:/bike-sharing-demand/latest", "/data/x.parquet"]
)
def test_an_alias_or_a_local_path_is_read_every_time(uri: str) -> None:
    assert reads_of([uri, uri]) == [uri, uri]


def test_only_the_newest_reads_are_kept() -> None:
    uris = [f"runs:/{index}/model" for index in range(artifacts.KEPT_READS + 1)]
    assert reads_of([*uris, uris[-1], uris[0]]) == [*uris, uris[0]]


def test_another_tracking_store_is_read_again(monkeypatch: pytest.MonkeyPatch) -> None:
    uri = "runs:/0123abcd/features/split.json"
    assert reads_of([uri]) == [uri]
    monkeypatch.setattr(artifacts.mlflow, "get_tracking_uri", lambda: "sqlite:///elsewhere.db")
    assert reads_of([uri]) == [uri]


def test_a_failed_read_is_not_kept() -> None:
    uri = "runs:/0123abcd/model"

    def failing() -> None:
        raise artifacts.PipelineError("the store is down")

    with pytest.raises(artifacts.PipelineError):
        artifacts.read_once(uri, failing)
    assert reads_of([uri]) == [uri]
