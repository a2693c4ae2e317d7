"""The import pipeline: stat-first manifests, archives, bad input, and the guarded save."""

from __future__ import annotations

import gzip
import io
import os
import random
import sys
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "samples"))

import generate as samples

from healthcache.config import Paths
from healthcache.errors import IntegrityRefused
from healthcache.importers import apple_health, archive
from healthcache.importers.base import MIB, Limits
from healthcache.importers.run import run_import
from healthcache.store import Store, Transaction
from tests import fitgen

START = datetime(2024, 5, 1, 6, 30, tzinfo=UTC)

# One process-wide audit hook (they cannot be removed); tests switch recording on and off.
_OPENED: list[str] | None = None


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "open" and _OPENED is not None and args and isinstance(args[0], (str, bytes, os.PathLike)):
        _OPENED.append(os.fsdecode(args[0]))


sys.addaudithook(_audit)


class recording_opens:
    def __enter__(self) -> list[str]:
        global _OPENED
        _OPENED = []
        return _OPENED

    def __exit__(self, *exc: object) -> None:
        global _OPENED
        _OPENED = None


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(Paths(tmp_path / "home"))


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    d = tmp_path_factory.mktemp("samples")
    return d, samples.generate(d)


def _snapshot(store: Store) -> dict[str, tuple[int, int]]:
    out = {}
    for p in [store.paths.cache, *sorted(store.paths.sync_state.glob("*.json"))]:
        st = p.stat()
        out[p.name] = (st.st_ino, st.st_mtime_ns)
    return out


def _activities(store: Store) -> list[Any]:
    return store.read().cache.activities


def test_sample_set_imports_as_one_activity_per_workout(store: Store, sample_dir: Any) -> None:
    folder, info = sample_dir
    report = run_import(store, [folder])
    assert report.ok and report.counts()["imported"] == len(info["files"])
    acts = _activities(store)
    assert len(acts) == info["workouts"]
    by_start = {a.start_time: a for a in acts}
    for key, sources in info["groups"].items():
        act = by_start[info["starts"][key]]
        assert set(act.source_ids) == sources, key
    ride = by_start[info["starts"]["long-ride"]]
    assert ride.hr_splits is not None and len(ride.hr_splits) == 62


def test_second_import_opens_no_file_and_writes_nothing(store: Store, sample_dir: Any) -> None:
    folder, _ = sample_dir
    run_import(store, [folder])
    before = _snapshot(store)
    backups = sorted(store.paths.backups.iterdir())
    with recording_opens() as opened:
        report = run_import(store, [folder])
    assert [p for p in opened if p.startswith(str(folder))] == []
    assert not any(p.startswith(str(store.paths.tracking)) and p.endswith(".tmp") for p in opened)
    c = report.counts()
    assert c["opened"] == 0 and c["unopened"] == c["seen"] == len(list(folder.rglob("*.*")))
    assert report.merge is None and report.save is None and report.manifests_written == []
    assert _snapshot(store) == before
    assert sorted(store.paths.backups.iterdir()) == backups  # no backup either


def test_changed_file_is_read_again_and_a_touched_one_is_not_parsed(store: Store, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    f = folder / "run.fit"
    f.write_bytes(fitgen.run(START))
    run_import(store, [folder])
    f.write_bytes(fitgen.run(START, km=6, hr_per_km=(130, 135, 140, 145, 150, 155)))  # the watch rewrote it
    report = run_import(store, [folder])
    assert report.files[0].status == "imported" and report.merge is not None
    assert report.merge.summary()["new"] + report.merge.summary()["merged"] == 1
    os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 10**9))  # touched, content equal
    report = run_import(store, [folder])
    assert report.files[0].status == "unchanged" and report.files[0].opened
    assert "content unchanged" in (report.files[0].reason or "")
    assert report.merge is not None and report.merge.entries == []  # no records: only the new stat is saved
    assert report.manifests_written == ["fit"] and not report.save.changed  # type: ignore[union-attr]
    with recording_opens() as opened:
        report = run_import(store, [folder])
    assert str(f) not in opened and report.files[0].opened is False


def test_full_reads_everything_again(store: Store, sample_dir: Any) -> None:
    folder, info = sample_dir
    run_import(store, [folder])
    report = run_import(store, [folder], full=True)
    c = report.counts()
    assert c["opened"] == c["seen"] and c["imported"] == len(info["files"])
    assert report.merge is not None and report.merge.summary()["new"] == 0


def test_dry_run_writes_nothing(store: Store, sample_dir: Any) -> None:
    folder, info = sample_dir
    report = run_import(store, [folder], dry_run=True)
    assert report.merge is not None and report.merge.summary()["new"] == info["workouts"]
    assert not store.paths.cache.exists()
    assert not store.paths.sync_state.exists() or list(store.paths.sync_state.iterdir()) == []


def test_manifest_moves_only_after_a_good_save(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "run.fit"
    f.write_bytes(fitgen.run(START))

    def refuse(self: Transaction, new: Any, **kw: Any) -> Any:
        raise IntegrityRefused("refused for the test", [])

    monkeypatch.setattr(Transaction, "save", refuse)
    with pytest.raises(IntegrityRefused):
        run_import(store, [f])
    assert not list(store.paths.sync_state.glob("import_*.json")) if store.paths.sync_state.exists() else True
    monkeypatch.undo()
    report = run_import(store, [f])
    assert report.files[0].status == "imported" and report.files[0].opened
    assert len(_activities(store)) == 1


def test_polar_sessions_are_decided_from_the_file_name(store: Store, tmp_path: Path) -> None:
    folder = tmp_path / "polar-export"
    folder.mkdir()
    w = samples.WORKOUTS[7]
    name1, data1 = samples.polar_session(w, 1111)
    (folder / name1).write_bytes(data1)
    run_import(store, [folder])
    # A new account export, beside the old one: the old session comes again under another name, plus a new session.
    copy = folder / "again" / name1
    copy.parent.mkdir()
    copy.write_bytes(data1 + b" ")
    later = samples.Workout("later", "cycling", datetime(2024, 6, 1, 9, 0, tzinfo=UTC), 30, 130, "Ride")
    name2, data2 = samples.polar_session(later, 2222)
    (folder / name2).write_bytes(data2)
    with recording_opens() as opened:
        report = run_import(store, [folder])
    assert str(copy) not in opened and str(folder / name2) in opened
    lines = {f.path: f for f in report.files}
    assert lines[str(copy)].status == "unchanged" and "Polar session 1111" in (lines[str(copy)].reason or "")
    assert lines[str(folder / name2)].status == "imported"
    assert {a.source_ids.get("polar") for a in _activities(store)} == {"1111", "2222"}


def test_unchanged_apple_export_is_not_parsed(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    export = tmp_path / "export.xml"
    export.write_bytes(samples.apple_export_xml([samples.WORKOUTS[1]]))
    first = run_import(store, [export])
    assert first.files[0].status == "imported" and first.files[0].records == 1

    def boom(*a: Any, **k: Any) -> Any:
        raise AssertionError("the unchanged export was parsed")

    monkeypatch.setattr(apple_health, "read_export", boom)
    os.utime(export, ns=(0, export.stat().st_mtime_ns + 5 * 10**9))  # copied or touched: new mtime
    report = run_import(store, [export])
    assert report.files[0].status == "unchanged" and "first and last MiB" in (report.files[0].reason or "")
    copy = tmp_path / "again" / "export.xml"
    copy.parent.mkdir()
    copy.write_bytes(export.read_bytes())
    report = run_import(store, [copy])
    assert report.files[0].status == "unchanged" and "the same export" in (report.files[0].reason or "")


def test_apple_export_zip_reports_bytes_progress(store: Store, tmp_path: Path) -> None:
    z = tmp_path / "export.zip"
    z.write_bytes(samples.apple_export_zip([samples.WORKOUTS[1], samples.WORKOUTS[7]]))
    seen: list[tuple[str, int, int]] = []
    report = run_import(store, [z], progress=lambda label, done, total: seen.append((label, done, total)))
    assert report.ok
    assert seen and seen[-1][1] == seen[-1][2] > 0  # ends at the member's full size
    members = {Path(f.path.split("!")[1]).name: f for f in report.files if f.member}
    assert members["export.xml"].records == 2
    assert all(f.status == "skipped" for n, f in members.items() if n.startswith("route_"))


def test_garmin_and_strava_exports_of_the_same_workouts(store: Store, tmp_path: Path) -> None:
    ws = list(samples.WORKOUTS[:3])
    (tmp_path / "garmin.zip").write_bytes(samples.garmin_export_zip(ws))
    (tmp_path / "strava.zip").write_bytes(samples.strava_export_zip(ws, []))
    report = run_import(store, [tmp_path])
    assert report.ok
    acts = _activities(store)
    assert len(acts) == 3
    for w, act in zip(ws, sorted(acts, key=lambda a: a.start_time), strict=True):
        assert act.source_ids["garmin"] == str(w.garmin_id)  # the ids the APIs use: a later sync merges onto them
        assert act.source_ids["strava"] == str(w.strava_id)
        assert "fit" in act.source_ids
        assert act.hr_splits is not None and len(act.hr_splits) == int(-(-w.km // 1))


def test_a_new_download_of_an_export_reads_only_new_members(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = list(samples.WORKOUTS[:2])
    (tmp_path / "export-may.zip").write_bytes(samples.strava_export_zip(ws, []))
    run_import(store, [tmp_path / "export-may.zip"])
    newer = [*ws, samples.WORKOUTS[2]]
    (tmp_path / "export-june.zip").write_bytes(samples.strava_export_zip(newer, []))
    read: list[str] = []
    real = archive.read_member

    def spy(zf: Any, member: Any, limits: Any) -> bytes:
        read.append(member.name)
        return real(zf, member, limits)

    monkeypatch.setattr(archive, "read_member", spy)
    report = run_import(store, [tmp_path / "export-june.zip"])
    assert sorted(read) == ["activities.csv", f"activities/{samples.WORKOUTS[2].strava_id}.fit.gz"]
    assert len(_activities(store)) == 3 and report.ok


def _zip(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE gpx [
 <!ENTITY a "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa">
 <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
 <!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
 <!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">
]>
<gpx version="1.1" creator="&d;"><trk><name>&d;</name></trk></gpx>
"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE TrainingCenterDatabase [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<TrainingCenterDatabase><Activities><Activity Sport="Running"><Id>&xxe;</Id></Activity></Activities></TrainingCenterDatabase>
"""


def test_bad_inputs_are_reported_and_the_rest_is_imported(store: Store, tmp_path: Path) -> None:
    d = tmp_path / "mixed"
    d.mkdir()
    good = fitgen.run(START)
    (d / "good.fit").write_bytes(good)
    (d / "good2.fit.gz").write_bytes(gzip.compress(fitgen.run(datetime(2024, 5, 2, 6, 0, tzinfo=UTC))))
    (d / "corrupt.fit").write_bytes(good[:14] + os.urandom(200))
    (d / "truncated.gpx").write_bytes(samples.gpx_bytes(samples.WORKOUTS[6])[:5000])
    (d / "traversal.zip").write_bytes(_zip({"activities/ok.fit": good, "../../outside.fit": good}))
    (d / "absolute.zip").write_bytes(_zip({"/etc/cron.d/evil.fit": good}))
    (d / "bomb.zip").write_bytes(_zip({"activities/big.fit": b"\0" * (48 * MIB)}))
    (d / "random.bin").write_bytes(b"\x00\x01" + random.Random(7).randbytes(4094))  # no magic can match
    (d / "laughs.gpx").write_bytes(BILLION_LAUGHS)
    (d / "xxe.tcx").write_bytes(EXTERNAL_ENTITY)
    (d / "notes.txt").write_text("a note beside the files\n")
    report = run_import(store, [d])
    lines = {Path(f.path).name: f for f in report.files if not f.member}
    assert lines["good.fit"].status == "imported" and lines["good2.fit.gz"].status == "imported"
    assert lines["notes.txt"].status == "skipped"
    expect = {
        "corrupt.fit": "corrupt FIT",
        "truncated.gpx": "malformed or truncated XML",
        "traversal.zip": "path traversal",
        "absolute.zip": "path traversal",
        "bomb.zip": "zip bomb",
        "random.bin": "unknown file type",
        "laughs.gpx": "declares entities",
        "xxe.tcx": "declares entities",
    }
    for name, why in expect.items():
        assert lines[name].status == "failed", name
        assert why in (lines[name].reason or ""), (name, lines[name].reason)
    assert not (tmp_path / "outside.fit").exists() and not Path("/etc/cron.d/evil.fit").exists()
    assert len(_activities(store)) == 2  # nothing of the refused archives was imported
    # A failure is never remembered as done: the next import tries the failed files again and fails
    # again, while the imported ones are not opened.
    with recording_opens() as opened:
        again = run_import(store, [d])
    failed_again = {Path(f.path).name for f in again.failures if not f.member}
    assert {"corrupt.fit", "laughs.gpx", "xxe.tcx"} <= failed_again
    assert not again.ok and str(d / "corrupt.fit") in opened
    assert str(d / "good.fit") not in opened and str(d / "notes.txt") not in opened


def test_gzip_bomb_is_refused(store: Store, tmp_path: Path) -> None:
    (tmp_path / "big.fit.gz").write_bytes(gzip.compress(b"\0" * (3 * MIB)))
    report = run_import(store, [tmp_path], limits=Limits(max_file_bytes=1 * MIB))
    assert report.files[0].status == "failed" and "gzip bomb" in (report.files[0].reason or "")


def test_nested_archives_beyond_one_level_are_refused(store: Store, tmp_path: Path) -> None:
    inner = _zip({"deep.zip": _zip({"run.fit": fitgen.run(START)})})
    (tmp_path / "outer.zip").write_bytes(_zip({"UploadedFiles_0-_Part1.zip": inner}))
    report = run_import(store, [tmp_path])
    member = next(f for f in report.files if f.member)
    assert member.status == "failed" and "nested deeper" in (member.reason or "")


def test_workspace_folders_and_hidden_files_are_left_out(store: Store, sample_dir: Any) -> None:
    folder, _ = sample_dir
    run_import(store, [folder])
    home = store.paths.home
    (home / ".hidden.fit").write_bytes(b"junk")
    report = run_import(store, [home])
    assert report.counts()["seen"] == 0  # tracking/, backups/ and dot-files are not inputs


def test_the_manifest_records_every_outcome(store: Store, sample_dir: Any) -> None:
    folder, _ = sample_dir
    run_import(store, [folder])
    from healthcache.importers.manifest import Manifest

    names = sorted(p.name for p in store.paths.sync_state.glob("import_*.json"))
    assert {
        "import_fit.json",
        "import_gpx.json",
        "import_polar.json",
        "import_apple_health.json",
        "import_garmin_export.json",
        "import_strava_export.json",
    } <= set(names)
    garmin = msgspec.json.decode((store.paths.sync_state / "import_garmin_export.json").read_bytes(), type=Manifest)
    ((path, entry),) = garmin.files.items()
    assert path.endswith("garmin-export.zip") and entry.status == "imported" and entry.head_tail
    assert any(k.startswith("garmin:") for k in entry.keys) and any(k.startswith("fit:") for k in entry.keys)
    assert any(n.endswith(".fit") for n in entry.members)  # the FIT uploads inside the nested zip
    assert (store.paths.sync_state / "import_fit.json").stat().st_mode & 0o777 == 0o600


def test_two_imports_into_one_workspace_keep_each_others_manifest_entries(store: Store, tmp_path: Path) -> None:
    """Manifests are read before the lock and written under it: an import that saved meanwhile keeps its entries."""
    from healthcache import ingest as ingest_mod  # run_import imports it when there is something to save

    a, b = tmp_path / "a.fit", tmp_path / "b.fit"
    a.write_bytes(fitgen.run(START))
    b.write_bytes(fitgen.run(datetime(2024, 5, 3, 6, 0, tzinfo=UTC)))
    real_ingest = ingest_mod.ingest
    done = []

    def ingest_after_another_import(*args: Any, **kw: Any) -> Any:
        if not done:
            done.append(1)
            run_import(store, [b])  # finishes its own save and manifest first
        return real_ingest(*args, **kw)

    ingest_mod.ingest = ingest_after_another_import  # type: ignore[assignment]
    try:
        run_import(store, [a])
    finally:
        ingest_mod.ingest = real_ingest  # type: ignore[assignment]
    with recording_opens() as opened:
        again = run_import(store, [a, b])
    assert again.counts()["unopened"] == 2 and not [p for p in opened if p.endswith(".fit")]


def test_polar_export_zip_and_a_later_download(store: Store, tmp_path: Path) -> None:
    w = samples.WORKOUTS[7]
    n1, d1 = samples.polar_session(w, 5551)
    first = tmp_path / "polar-user-data-export_1.zip"
    first.write_bytes(_zip({f"polar-user-data-export/{n1}": d1, "polar-user-data-export/account-profile.json": b"{}"}))
    assert run_import(store, [first]).ok
    later = samples.Workout("later", "running", datetime(2024, 6, 2, 6, 0, tzinfo=UTC), 10, 300, "Run")
    n2, d2 = samples.polar_session(later, 5552)
    # The next export renames nothing but rewrites the old session (new export time): new CRC, same id.
    second = tmp_path / "polar-user-data-export_2.zip"
    second.write_bytes(_zip({f"polar-user-data-export/{n1}": d1 + b" ", f"polar-user-data-export/{n2}": d2}))
    report = run_import(store, [second])
    members = [f for f in report.files if f.member]
    assert [Path(f.path).name for f in members if f.status == "imported"] == [n2]
    assert {a.source_ids.get("polar") for a in _activities(store)} == {"5551", "5552"}
