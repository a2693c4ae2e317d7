"""A day with nothing new: an unchanged file is judged by its stat alone, on a short way that gives
the very outcome (report line, manifest) of the full one (issue 11, the daily run's cost)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "samples"))

import generate as samples

from healthcache.config import Paths
from healthcache.importers import run as run_mod
from healthcache.importers.manifest import Manifest
from healthcache.importers.report import ImportReport
from healthcache.importers.run import run_import
from healthcache.store import Store
from tests import fitgen

from .test_import_run import START


def _inputs(folder: Path) -> dict[str, Any]:
    """The sample set (archives, a Polar session, FIT, GPX), plus a file that fails, one that is skipped,
    one that is touched after the first import, and one that is rewritten."""
    info = samples.generate(folder)
    (folder / "watch" / "broken.fit").write_bytes(b"\x0e\x10" + b"\x00" * 30)  # named FIT, is not
    (folder / "notes.json").write_bytes(b'{"hello": "world"}')  # JSON of no known kind: skipped
    (folder / "watch" / "tempo.fit").write_bytes(fitgen.run(START))
    return info


def _second_run_state(folder: Path) -> None:
    """What changed since the first import: a touched file (same content) and a rewritten one."""
    recovery = folder / "watch" / "recovery.fit"
    os.utime(recovery, ns=(recovery.stat().st_atime_ns, recovery.stat().st_mtime_ns + 10**9))
    (folder / "watch" / "tempo.fit").write_bytes(fitgen.run(START, km=6, hr_per_km=(130, 135, 140, 145, 150, 155)))


def _outcome(report: ImportReport, paths: Paths) -> tuple[Any, dict[str, Any]]:
    """The report without its timings, and every manifest without the time stamps and lineage of its run."""
    doc = report.to_dict()
    doc.pop("timings_s")
    doc.pop("backup")
    manifests = {}
    for f in sorted(paths.sync_state.glob("import_*.json")):
        m = msgspec.json.decode(f.read_bytes(), type=Manifest)
        m.lineage = None
        for entry in m.files.values():
            entry.at = None
        manifests[f.name] = msgspec.to_builtins(m)
    return doc, manifests


def test_an_unchanged_file_needs_no_item_no_facts_and_no_decision(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "in"
    _inputs(folder)
    store = Store(Paths(tmp_path / "home"))
    run_import(store, [folder])
    _second_run_state(folder)
    built: list[str] = []
    real = run_mod.file_item

    def spy(path: str, st: os.stat_result) -> Any:
        built.append(os.path.relpath(path, folder))
        return real(path, st)

    monkeypatch.setattr(run_mod, "file_item", spy)
    report = run_import(store, [folder])
    assert report.counts()["seen"] == len(list(folder.rglob("*.*")))
    # Only what is not judged by stat alone goes the full way: the failure (tried again), the touched
    # file and the rewritten one.  The Polar session's file is judged by its own entry, as any other.
    assert sorted(built) == sorted(["watch/broken.fit", "watch/recovery.fit", "watch/tempo.fit"])


def test_the_short_way_and_the_full_way_come_to_the_same(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same inputs and history, imported by two workspaces: one judges unchanged files on the
    short way, the other sends every file the full way; reports and manifests are the same."""
    folder = tmp_path / "in"
    _inputs(folder)
    homes = {name: Store(Paths(tmp_path / name)) for name in ("short", "full")}
    for store in homes.values():
        run_import(store, [folder])
    _second_run_state(folder)
    outcomes = {}
    for name, store in homes.items():
        with monkeypatch.context() as m:
            if name == "full":
                m.setattr(run_mod, "_unchanged", lambda *a: None)
            first = _outcome(run_import(store, [folder]), store.paths)  # reads the touched and rewritten files
            again = _outcome(run_import(store, [folder]), store.paths)  # nothing new but the failure
        outcomes[name] = (first, again)
    assert outcomes["short"] == outcomes["full"]
    (report, _), (quiet, _) = outcomes["short"]
    assert report["counts"]["unopened"] < quiet["counts"]["unopened"]
    assert quiet["counts"]["failed"] == 1  # tried again, on the full way
    reasons = {Path(f["path"]).name: f.get("reason") for f in quiet["files"]}
    assert reasons["notes.json"].startswith("unchanged since it was skipped: ")
    assert reasons["tempo.fit"] == "unchanged since it was imported"


def test_a_listing_the_manifests_settle_is_vouched_for_only_while_it_and_they_are_as_noted(tmp_path: Path) -> None:
    """``settled.unchanged_files`` answers what ``run_import`` finds (every file unchanged) and
    nothing else: a touched or new file, a failure, another import's manifest write, a restore."""
    from healthcache.importers.settled import unchanged_files

    folder = tmp_path / "in"
    samples.generate(folder)  # archives, a Polar session, FIT, GPX, an Apple Health export
    store = Store(Paths(tmp_path / "home"))
    paths = store.paths
    assert unchanged_files(paths, [folder]) is None  # never imported
    run_import(store, [folder])

    def quiet() -> int:
        c = run_import(store, [folder]).counts()
        assert c["unchanged"] == c["seen"] and c["opened"] == 0
        return c["seen"]

    n = quiet()
    assert unchanged_files(paths, [folder]) == n == len(list(folder.rglob("*.*")))
    assert unchanged_files(paths, [folder / "watch"]) is None  # other inputs: no note of theirs
    treadmill = folder / "watch" / "treadmill.fit"
    os.utime(treadmill, ns=(treadmill.stat().st_atime_ns, treadmill.stat().st_mtime_ns + 10**9))
    assert unchanged_files(paths, [folder]) is None  # touched: the import opens it
    run_import(store, [folder])  # content unchanged: its new stat is written, and noted again
    assert unchanged_files(paths, [folder]) == quiet() == n
    (folder / "watch" / "new.fit").write_bytes(fitgen.run(START))
    assert unchanged_files(paths, [folder]) is None  # a new file
    run_import(store, [folder])
    assert unchanged_files(paths, [folder]) == quiet() == n + 1
    (folder / "watch" / "broken.fit").write_bytes(b"\x0e\x10" + b"\x00" * 30)
    assert run_import(store, [folder]).counts()["failed"] == 1
    assert unchanged_files(paths, [folder]) is None  # a failure is tried again every run: never noted
    (folder / "watch" / "broken.fit").unlink()
    assert quiet() == n + 1  # an import that writes nothing notes nothing: the next one that writes does
    assert unchanged_files(paths, [folder]) is None
    (folder / "watch" / "tempo.fit").write_bytes(fitgen.run(START.replace(day=5)))
    run_import(store, [folder])  # the failed file's entry stays, for a file no longer listed
    assert unchanged_files(paths, [folder]) == quiet() == n + 2
    other = tmp_path / "other"
    other.mkdir()
    (other / "ride.fit").write_bytes(fitgen.run(START.replace(day=9)))
    run_import(store, [other])  # another import rewrote a manifest: only a new reading of it can tell
    assert unchanged_files(paths, [folder]) is None
    assert unchanged_files(paths, [other]) == 1
    paths.index.unlink()  # the index no longer vouches for the cache (as after an edit outside healthcache)
    assert unchanged_files(paths, [other]) is None


def test_manifests_unreadable_when_noting_cost_only_the_note(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The note is a hint: manifests that cannot be read again under the lock (another process broke
    one meanwhile) leave the import as it was, saved, and note nothing."""
    from healthcache.errors import CorruptInput
    from healthcache.importers import manifest
    from healthcache.importers.settled import unchanged_files

    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "run.fit").write_bytes(fitgen.run(START))
    store = Store(Paths(tmp_path / "home"))

    def unreadable(paths: Paths) -> Any:
        raise CorruptInput(paths.state_file("import_fit"), "state file is unreadable: broken meanwhile")

    monkeypatch.setattr(manifest, "Manifests", unreadable)
    report = run_import(store, [folder])
    assert report.ok and report.counts()["imported"] == 1 and report.manifests_written == ["fit"]
    assert unchanged_files(store.paths, [folder]) is None
    monkeypatch.undo()
    (folder / "run.fit").touch()
    run_import(store, [folder])
    assert unchanged_files(store.paths, [folder]) == 1
