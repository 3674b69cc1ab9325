"""`published_folder`: a folder appears whole or not at all, is locked while built, and what a
killed run left is swept by the next one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.errors import OutputError
from engine.io.destination import published_folder


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_the_folder_appears_only_when_the_block_succeeds(tmp_path: Path) -> None:
    entry = tmp_path / "entry"
    with published_folder(entry) as temp:
        (temp / "data.bin").write_bytes(b"abc")
        assert temp.parent == tmp_path and temp.name.startswith(".entry.partial-")
        assert not entry.exists()
        assert ".entry.lock" in names(tmp_path)
    assert names(tmp_path) == ["entry"]
    assert (entry / "data.bin").read_bytes() == b"abc"


def test_an_error_or_a_cancel_leaves_nothing(tmp_path: Path) -> None:
    for error in (ValueError("boom"), KeyboardInterrupt()):
        with pytest.raises(type(error)), published_folder(tmp_path / "entry") as temp:
            (temp / "half.bin").write_bytes(b"x")
            raise error
        assert names(tmp_path) == []


def test_an_existing_folder_is_refused_or_replaced(tmp_path: Path) -> None:
    entry = tmp_path / "entry"
    entry.mkdir()
    (entry / "old.txt").write_text("old")
    with pytest.raises(OutputError, match="already exists"), published_folder(entry):
        pass
    assert names(entry) == ["old.txt"]
    with published_folder(entry, overwrite=True) as temp:
        (temp / "new.txt").write_text("new")
    assert names(entry) == ["new.txt"] and names(tmp_path) == ["entry"]
    (tmp_path / "file").write_text("a file")
    with pytest.raises(OutputError, match="is a file"), published_folder(tmp_path / "file"):
        pass


def test_a_second_builder_of_the_same_folder_is_refused(tmp_path: Path) -> None:
    with published_folder(tmp_path / "entry"):
        with (
            pytest.raises(OutputError, match=f"process {os.getpid()}"),
            published_folder(tmp_path / "entry"),
        ):
            pass
        with published_folder(tmp_path / "other") as other:  # another folder is free
            (other / "x").write_text("x")
    assert names(tmp_path) == ["entry", "other"]


def test_a_killed_runs_leftovers_are_swept_and_nothing_else(tmp_path: Path) -> None:
    for leftover in (".entry.partial-99999", ".entry.partial-99999-old"):
        (tmp_path / leftover).mkdir()
        (tmp_path / leftover / "big.bin").write_bytes(b"0" * 10)
    mine = [".entry.partial-notes", ".other.partial-123", "entry.bak"]
    for name in mine:
        (tmp_path / name).mkdir()
    with published_folder(tmp_path / "entry") as temp:
        (temp / "ok").write_text("ok")
    assert names(tmp_path) == sorted(["entry", *mine])


def test_a_missing_parent_is_an_output_error(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="does not exist"), published_folder(tmp_path / "x" / "e"):
        pass
