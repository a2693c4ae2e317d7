"""Import state never outranks the cache: after a restore, a plain ``import`` brings every dropped activity back.

Through the CLI, on real GPX files, the way a user walks it (issue 10, point 1).
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "samples"))

import generate as samples

from healthcache import backup, codec
from healthcache.config import Paths
from healthcache.store import Store, load_file
from tests.conftest import Run


def _gpx_folder(folder: Path, n: int, *, offset_days: int = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        w = samples.WORKOUTS[i % len(samples.WORKOUTS)]
        w = dataclasses.replace(w, key=f"{w.key}-{i}", start=w.start + timedelta(days=30 * (i + 1) + offset_days))
        p = folder / f"{i:02d}-{w.key}.gpx"
        p.write_bytes(samples.gpx_bytes(w))
        out.append(p)
    return out


def _ids(store: Store) -> set[str]:
    return {a.id for a in store.read().cache.activities}


def _backup_with(store: Store, n: int) -> Path:
    """The backup holding exactly ``n`` activities."""
    for info in backup.list_backups(store.paths.backups):
        if len(load_file(info.path).cache.activities) == n:
            return info.path
    raise AssertionError(f"no backup with {n} activities")


@pytest.fixture
def twelve(store: Store, run: Run, tmp_path: Path) -> dict[str, Any]:
    """One early activity, then a folder of 12 GPX files imported on top of it."""
    _gpx_folder(tmp_path / "early", 1, offset_days=-2000)
    assert run("import", str(tmp_path / "early")).exit_code == 0
    early = _ids(store)
    folder = tmp_path / "gpx"
    files = _gpx_folder(folder, 12)
    first = run("import", str(folder))
    assert first.exit_code == 0 and "12 new" in first.output, first.output
    return {"folder": folder, "files": files, "all": _ids(store), "early": early}


def test_import_after_a_forced_restore_brings_every_dropped_activity_back(
    store: Store, run: Run, twelve: dict[str, Any]
) -> None:
    folder, everything = twelve["folder"], twelve["all"]
    older = _backup_with(store, 1)
    restored = run("restore", str(older), "--force")
    assert restored.exit_code == 0, restored.output
    assert len(_ids(store)) == 1
    assert "next import/sync will check them against the cache" in restored.output

    again = run("import", str(folder))
    assert again.exit_code == 0, again.output
    assert "the cache is not the one the import state describes" in again.output
    assert "checked 13 file(s) against it, 12 to read again" in again.output
    assert "12 new" in again.output and "nothing new" not in again.output
    assert _ids(store) == everything

    # The manifests now carry the restored cache's lineage: the next run is fast again.
    third = run("import", str(folder))
    assert third.exit_code == 0 and "nothing new: nothing was written" in third.output
    assert "not the one the import state describes" not in third.output


def test_following_the_corrupt_cache_hint_then_importing_brings_everything_back(
    store: Store, run: Run, twelve: dict[str, Any]
) -> None:
    folder, everything = twelve["folder"], twelve["all"]
    # Only the backup from before the import is left (the newer ones were pruned or lost), then the cache breaks.
    keep = _backup_with(store, 1)
    for info in backup.list_backups(store.paths.backups):
        if info.path != keep:
            info.path.unlink()
    store.paths.cache.write_bytes(store.paths.cache.read_bytes()[:-40])

    broken = run("import", str(folder))
    assert broken.exit_code == 4, broken.output
    hint = re.search(r"Restore it with: (healthcache restore [^\n]*)", broken.output)
    assert hint is not None, broken.output
    argv = hint.group(1).split()[1:]
    followed = run(*argv) if "--home" in argv else run(*argv, "--home", str(store.paths.home))
    assert followed.exit_code == 0, followed.output
    assert len(_ids(store)) == 1

    again = run("import", str(folder))
    assert again.exit_code == 0, again.output
    assert "12 to read again" in again.output and "12 new" in again.output
    assert _ids(store) == everything


def test_a_deleted_activity_stays_deleted_when_a_restore_makes_the_import_reconcile(
    store: Store, run: Run, twelve: dict[str, Any], tmp_path: Path
) -> None:
    folder = twelve["folder"]
    victim = sorted(twelve["all"] - twelve["early"])[0]
    assert run("delete", victim, "--reason", "double upload").exit_code == 0
    with_tombstone = len(_ids(store))  # 12: the early one and 11 of the folder
    later = tmp_path / "later"
    _gpx_folder(later, 3, offset_days=400)
    assert run("import", str(later)).exit_code == 0
    # Back to the state after the delete: the later three are dropped, the tombstone is kept.
    restored = run("restore", str(_backup_with(store, with_tombstone)), "--force")
    assert restored.exit_code == 0, restored.output
    again = run("import", "--json", str(folder), str(later))
    assert again.exit_code == 0, again.output
    report = json.loads(again.output)
    # The tombstone holds the deleted activity's record: its file is not even read; the later three come back.
    assert report["reconciled"]["stale"] == 3, again.output
    assert report["merge"]["new"] == 3 and report["counts"]["opened"] == 3
    ids = _ids(store)
    assert victim not in ids and len(ids) == with_tombstone + 3
    # Reading every file again (--full) still does not bring it back: the merge honours the tombstone.
    full = json.loads(run("import", "--json", "--full", str(folder), str(later)).output)
    assert full["merge"]["tombstoned"] == 1 and full["merge"]["new"] == 0
    assert _ids(store) == ids


def test_the_trusted_fast_path_opens_no_file_and_parses_no_cache(
    store: Store, run: Run, twelve: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_parse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the cache was parsed although the manifests describe it")

    monkeypatch.setattr(codec, "decode", no_parse)
    again = run("import", str(twelve["folder"]))
    assert again.exit_code == 0, again.output
    assert "nothing new: nothing was written" in again.output and "12 unchanged and not opened" in again.output


def test_manifests_from_before_lineages_are_checked_once(store: Store, run: Run, twelve: dict[str, Any]) -> None:
    for f in store.paths.sync_state.glob("import_*.json"):
        doc = json.loads(f.read_text())
        doc.pop("lineage", None)
        f.write_text(json.dumps(doc))
    first = run("import", str(twelve["folder"]))
    assert first.exit_code == 0 and "checked 13 file(s) against it, 0 to read again" in first.output
    second = run("import", str(twelve["folder"]))
    assert "not the one the import state describes" not in second.output
    assert Store(Paths(store.paths.home)).read().cache.activities


def test_importing_one_folder_after_a_restore_does_not_vouch_for_another(
    store: Store, run: Run, twelve: dict[str, Any], tmp_path: Path
) -> None:
    later = tmp_path / "later"
    _gpx_folder(later, 3, offset_days=400)
    assert run("import", str(later)).exit_code == 0
    everything = _ids(store)
    assert run("restore", str(_backup_with(store, 1)), "--force").exit_code == 0
    # Only the later folder is imported: the manifests, rewritten under the new lineage, must not
    # keep vouching for the other folder's files, whose activities the restore dropped too.
    first = run("import", str(later))
    assert first.exit_code == 0 and "3 new" in first.output, first.output
    second = run("import", str(twelve["folder"]))
    assert second.exit_code == 0 and "12 new" in second.output, second.output
    assert _ids(store) == everything
