"""Output files: a folder is refused before any work, a write is whole or absent, a full disk is one line."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pandas as pd
import pytest

from demand.errors import PipelineError
from plumbing.faults import full_disk
from plumbing.files import csv_written_atomically, output_file, readable_file


def test_a_folder_is_not_an_output_file(tmp_path: Path) -> None:
    for text in (str(tmp_path), f"{tmp_path}/new/", ""):
        with pytest.raises(PipelineError, match="is a folder, not a file"):
            output_file(text)
    assert output_file(str(tmp_path / "made" / "p.csv")).parent.is_dir()


def test_an_output_that_is_its_source_under_another_name_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "records.csv"
    source.write_text("a\n1\n")
    (tmp_path / "link.csv").symlink_to(source)
    for text in (str(source), f"{tmp_path}/./records.csv", str(tmp_path / "link.csv")):
        with pytest.raises(PipelineError, match="is the input file; write to another file"):
            output_file(text, source)
    assert source.read_text() == "a\n1\n"


def test_a_folder_made_for_an_output_is_said(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output_file(str(tmp_path / "new" / "deeper" / "p.csv"))
    assert (
        capsys.readouterr().err.strip()
        == f"made folder {tmp_path}/new/deeper for output {tmp_path}/new/deeper/p.csv"
    )
    output_file(str(tmp_path / "new" / "deeper" / "q.csv"))
    assert capsys.readouterr().err == "", "an existing folder is not announced"


def write_csv_atomically(table: pd.DataFrame, path: Path) -> None:
    with csv_written_atomically(path) as write:
        write(table)


def test_a_write_on_a_full_disk_is_one_line_and_leaves_no_partial_file(small_disk: Path) -> None:
    previous = small_disk / "predictions.csv"
    previous.write_text("the old predictions\n")
    big = pd.DataFrame({"value": range(100_000)})  # ~600 KB of CSV
    with pytest.raises(PipelineError, match=r"cannot write .*predictions\.csv: no space left on device"):
        write_csv_atomically(big, previous)
    assert [path.name for path in small_disk.iterdir()] == ["predictions.csv"]
    assert previous.read_text() == "the old predictions\n", "the old file is untouched"


def test_full_disk_is_found_in_what_caused_an_error(
    small_disk: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(small_disk)  # the folder this process writes to
    try:
        try:
            (small_disk / "f").write_bytes(b"x" * 200_000)
        except OSError as error:
            raise RuntimeError("logging the artifact failed") from error
    except RuntimeError as wrapped:
        assert full_disk(wrapped) == str(small_disk)  # the write error names no file; the full folder
    assert full_disk(ValueError("no")) is None


def test_a_full_disk_names_the_folder_not_a_temporary_file_that_is_gone(tmp_path: Path) -> None:
    written = tmp_path / "tmpab12" / "model" / "model.pkl"  # a temporary folder removed since
    error = OSError(errno.ENOSPC, "No space left on device", str(written))
    try:
        raise RuntimeError("logging the model failed") from error
    except RuntimeError as wrapped:
        assert full_disk(wrapped) == str(tmp_path)
    written.parent.mkdir(parents=True)
    assert full_disk(error) == str(written.parent)


def test_an_input_that_is_no_readable_file_is_one_line(tmp_path: Path) -> None:
    too_long = str(tmp_path / ("x" * 300))
    for text, message in [
        (str(tmp_path), "is a folder"),
        (str(tmp_path / "none.csv"), "is not a file"),
        (too_long, r"cannot read input .*: file name too long"),
    ]:
        with pytest.raises(PipelineError, match=message) as raised:
            readable_file(text, "input")
        assert len(str(raised.value)) < 400
    with pytest.raises(PipelineError, match=r"cannot write output .*: file name too long"):
        output_file(too_long + "/p.csv")


def test_a_written_file_gets_the_usual_permissions_and_a_link_is_written_through(tmp_path: Path) -> None:
    real = tmp_path / "real.csv"
    link = tmp_path / "link.csv"
    link.symlink_to(real)
    write_csv_atomically(pd.DataFrame({"a": [1]}), link)
    assert link.is_symlink() and real.read_text() == "a\n1\n"
    umask = os.umask(0)
    os.umask(umask)
    assert real.stat().st_mode & 0o777 == 0o666 & ~umask


class InterruptedTable:
    def to_csv(self, handle: object, index: bool, header: bool) -> None:
        handle.write("half of it")
        raise KeyboardInterrupt


def test_an_interrupted_write_leaves_no_partial_file(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt):
        write_csv_atomically(InterruptedTable(), tmp_path / "p.csv")
    assert list(tmp_path.iterdir()) == []
