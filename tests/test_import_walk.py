"""The walker: what a folder holds that an import may read, with its stat; nothing is opened."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from healthcache.importers import walk as walk_mod
from healthcache.importers.walk import walk


def test_files_in_order_hidden_and_excluded_left_out_symlinks_as_reading_would(tmp_path: Path) -> None:
    top = tmp_path / "in"
    (top / "b" / "deep").mkdir(parents=True)
    (top / ".hidden").mkdir()
    (top / "backups").mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "far.fit").write_bytes(b"far")
    for rel in ("z.fit", "a.gpx", "b/deep/x.tcx", "b/c.fit", ".dot.fit", ".hidden/h.fit", "backups/old.json"):
        (top / rel).write_bytes(rel.encode())
    (top / "link.fit").symlink_to(top / "a.gpx")  # a symlinked file is read through its link
    (top / "linked-folder").symlink_to(elsewhere, target_is_directory=True)  # never followed
    (top / "dangling.fit").symlink_to(tmp_path / "gone.fit")  # nothing to read
    found, missing, odd = walk([top], [str(top / "backups")])
    names = [os.path.relpath(p, top) for p, _ in found]
    assert names == ["a.gpx", "b/c.fit", "b/deep/x.tcx", "link.fit", "z.fit"]
    assert dict(found)[str(top / "link.fit")].st_size == len(b"a.gpx")
    assert missing == [] and odd == []


def test_a_folder_that_cannot_be_listed_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    top = tmp_path / "in"
    (top / "locked").mkdir(parents=True)
    (top / "ok.fit").write_bytes(b"1")
    real = os.scandir

    def scandir(path: str) -> object:  # a permission the test's root user would not meet
        if path == str(top / "locked"):
            raise PermissionError(13, "Permission denied", path)
        return real(path)

    monkeypatch.setattr(walk_mod.os, "scandir", scandir)
    found, missing, odd = walk([top], [])
    assert [p for p, _ in found] == [str(top / "ok.fit")]
    assert missing == [str(top / "locked")] and odd == []
