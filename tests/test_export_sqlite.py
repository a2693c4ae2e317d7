"""The SQLite mirror: incremental by content, one transaction, orphans, refresh, failures.

Every cache here is a real cache file saved through the store; every mirror is
a real SQLite file read back with the standard module.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import msgspec
import pytest
from click.testing import CliRunner, Result

from healthcache.cli import main
from healthcache.config import Config, ExportConfig, Paths
from healthcache.errors import CorruptInput
from healthcache.export import core, tables
from healthcache.export import sqlite as sqlite_mod
from healthcache.export.core import ExportError, ExportReport, export, run_configured_exports
from healthcache.export.sqlite import SqliteMirror
from healthcache.model.records import Activity, HRSplit, Tombstone
from healthcache.store import Store
from tests.export_fixtures import cache_activities, make_activity, make_home, replace, save_cache

N = 12


@pytest.fixture
def home(tmp_path: Path) -> Paths:
    paths = make_home(tmp_path / "home")
    save_cache(paths, [make_activity(i) for i in range(N)])
    return paths


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "mirror.db"


def run(paths: Paths, db: Path, **kw: Any) -> ExportReport:
    return export(SqliteMirror(db), Store(paths, Config()), **kw)


def invoke(*argv: str) -> Result:
    """The CLI as the console script runs it: errors become messages and exit codes in main()."""

    def entry() -> None:
        raise SystemExit(main(list(argv)))

    return CliRunner().invoke(click.Command("healthcache", callback=entry), [], catch_exceptions=False)


def query(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def mirror_image(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table: what 'the old mirror is intact' compares."""
    return {t.name: sorted(query(db, f"SELECT * FROM {t.name}"), key=repr) for t in tables.ALL_TABLES}


def stored_hashes(db: Path) -> dict[str, str]:
    return dict(query(db, "SELECT id, content_hash FROM activities"))


# ---- the schema --------------------------------------------------------------


def test_schema_is_declared_once_and_both_dialects_follow_it() -> None:
    for table in tables.ALL_TABLES:
        lite = tables.create_table(table, tables.SQLITE)
        pg = tables.create_table(table, tables.POSTGRES)
        for col in table.columns:
            assert f'"{col.name}" {tables.SQLITE.types[col.type]}' in lite
            assert f'"{col.name}" {tables.POSTGRES.types[col.type]}' in pg
    assert '"data" jsonb' in tables.create_table(tables.ACTIVITIES, tables.POSTGRES)
    assert '"start_time" timestamptz' in tables.create_table(tables.ACTIVITIES, tables.POSTGRES)
    # Row builders produce exactly one value per declared column.
    rows = tables.rows_for([(make_activity(3), "{}", "h")])
    for table, data in rows.by_table():
        assert data, table.name
        assert {len(r) for r in data} == {len(table.columns)}


def test_start_date_prefers_a_valid_local_date() -> None:
    act = make_activity(1, start_time="2024-03-10T23:30:00Z", start_time_local="2024-03-11T00:30:00")
    assert tables.start_date(act) == "2024-03-11"
    assert tables.start_date(replace(act, start_time_local="2024-13-45T00:00:00")) == "2024-03-10"
    assert tables.start_date(replace(act, start_time_local=None)) == "2024-03-10"


# ---- first export and reading it back ----------------------------------------


def test_first_export_writes_every_activity_as_plain_tables(home: Paths, db: Path) -> None:
    report = run(home, db)
    acts = cache_activities(home)
    assert (report.processed, report.inserted, report.updated, report.unchanged) == (N, N, 0, 0)
    assert report.rows["activities"].before == 0 and report.rows["activities"].after == N
    n_sources = sum(len(a.source_ids) for a in acts)
    n_splits = sum(len(a.hr_splits or []) for a in acts)
    assert report.sent == {"activities": N, "activity_sources": n_sources, "aliases": N // 3, "hr_splits": n_splits}
    assert report.rows["hr_splits"].after == n_splits
    assert report.size_mb_after and report.size_mb_after > 0

    # Every activity's JSON decodes back to exactly the cache's activity.
    for aid, data in query(db, "SELECT id, data FROM activities"):
        assert msgspec.json.decode(data, type=Activity) == next(a for a in acts if a.id == aid)
    # Columns are the activity's fields; plain SQLite types only (Datasette, sqlite-utils).
    first = acts[0]
    row = query(db, "SELECT start_time, sport, distance_m, avg_hr, source FROM activities WHERE id = ?", (first.id,))
    assert row == [(first.start_time, first.sport, first.distance_m, first.avg_hr, first.source)]
    types = {r[2] for t in tables.ALL_TABLES for r in query(db, f"PRAGMA table_info({t.name})")}
    assert types <= {"TEXT", "REAL", "INTEGER"}
    # A Strava id finds its activity; an alias resolves.
    twin = next(a for a in acts if "strava" in a.source_ids)
    sid = twin.source_ids["strava"]
    assert query(db, "SELECT activity_id FROM activity_sources WHERE source='strava' AND source_id=?", (sid,)) == [
        (twin.id,)
    ]
    assert query(db, "SELECT activity_id FROM aliases WHERE alias = ?", (f"strava:{sid}",)) == [(twin.id,)]
    indexes = {r[0] for r in query(db, "SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"activities_start_time", "activities_sport", "activity_sources_activity"} <= indexes
    assert query(db, "PRAGMA foreign_key_list(hr_splits)")[0][2] == "activities"
    meta = dict(query(db, "SELECT key, value FROM meta"))
    assert meta["schema_version"] == str(tables.SCHEMA_VERSION)
    assert meta["cache_sha256"] == hashlib.sha256(home.cache.read_bytes()).hexdigest()
    assert query(db, "PRAGMA journal_mode") == [("wal",)]
    assert db.stat().st_mode & 0o777 == 0o600  # personal health data, like the cache


def test_views_total_what_python_totals(home: Paths, db: Path) -> None:
    run(home, db)
    acts = cache_activities(home)
    monthly = {
        (m, s): (n, km)
        for m, s, n, km in query(db, "SELECT month_start, sport, activities, distance_km FROM monthly_totals")
    }
    expected: dict[tuple[str, str], list[float]] = {}
    for a in acts:
        key = (tables.start_date(a)[:8] + "01", a.sport)
        expected.setdefault(key, [0, 0.0])
        expected[key][0] += 1
        expected[key][1] += (a.distance_m or 0) / 1000
    assert monthly.keys() == expected.keys()
    for key, (n, km) in expected.items():
        assert monthly[key][0] == n
        assert monthly[key][1] == pytest.approx(km, abs=0.01)
    weekly = query(db, "SELECT week_start, SUM(activities) FROM weekly_totals GROUP BY 1")
    assert sum(n for _w, n in weekly) == N
    for week, _n in weekly:  # every week starts on a Monday
        assert query(db, "SELECT strftime('%w', ?)", (week,)) == [("1",)]
    coverage = query(db, "SELECT SUM(activities), SUM(with_avg_hr), SUM(with_hr_splits) FROM hr_coverage")
    assert coverage == [(N, N, N)]


# ---- incremental -----------------------------------------------------------------


def test_reexport_of_an_unchanged_cache_sends_nothing_and_touches_no_byte(home: Paths, db: Path, monkeypatch) -> None:
    run(home, db)
    before = file_digest(db)
    # Recognised from the cache index and stat alone: the cache file is not even read.
    monkeypatch.setattr(core, "_read_snapshot", lambda store: pytest.fail("the cache was read"))
    report = run(home, db)
    assert report.cache_unchanged
    assert (report.processed, report.unchanged, report.changed) == (N, N, 0)
    assert not any(report.sent.values()) and report.statements <= 8
    assert report.rows["activities"].before == report.rows["activities"].after == N
    assert file_digest(db) == before


def test_unchanged_cache_with_a_stale_index_is_hashed_then_skipped(home: Paths, db: Path) -> None:
    run(home, db)
    before = file_digest(db)
    os.utime(home.cache, ns=(1, 1))  # the index no longer proves anything
    report = run(home, db)
    assert report.cache_unchanged and not any(report.sent.values())
    assert file_digest(db) == before  # reads only: not one byte of the mirror changed


def test_a_cache_read_without_its_index_hashes_the_same(home: Paths, db: Path) -> None:
    """Trusted and validated reads give the same content hashes: no spurious resend."""
    run(home, db)
    acts = cache_activities(home)
    save_cache(home, [*acts[:-1], replace(acts[-1], name="renamed")])
    home.index.unlink()
    report = run(home, db)
    assert (report.updated, report.unchanged) == (1, N - 1)
    assert report.sent["activities"] == 1


def test_one_changed_activity_is_the_only_row_sent_and_its_children_are_replaced(home: Paths, db: Path) -> None:
    run(home, db)
    acts = cache_activities(home)
    old_hashes = stored_hashes(db)
    target = acts[4]
    splits = [HRSplit(km=1, duration_s=300.0, avg_hr=150.0), HRSplit(km=2, duration_s=310.0, avg_hr=155.0)]
    new = replace(target, name="Renamed run", hr_splits=[*splits, *(target.hr_splits or [])][:6], avg_hr=151.0)
    save_cache(home, [new if a.id == target.id else a for a in acts])

    report = run(home, db, batch_size=2)
    assert (report.inserted, report.updated, report.unchanged) == (0, 1, N - 1)
    assert report.sent == {"activities": 1, "activity_sources": 1, "aliases": 0, "hr_splits": 6}
    hashes = stored_hashes(db)
    assert {k for k in hashes if hashes[k] != old_hashes[k]} == {target.id}
    assert query(db, "SELECT name, avg_hr FROM activities WHERE id = ?", (target.id,)) == [("Renamed run", 151.0)]
    got = query(db, "SELECT km, duration_s, avg_hr FROM hr_splits WHERE activity_id = ? ORDER BY rowid", (target.id,))
    assert got == [(s.km, s.duration_s, s.avg_hr) for s in new.hr_splits or []]
    assert report.rows["hr_splits"].after == report.rows["hr_splits"].before + 1


def test_new_activities_are_inserted_and_batches_report_progress(home: Paths, db: Path) -> None:
    run(home, db)
    acts = cache_activities(home)
    save_cache(home, [*acts, *(make_activity(i) for i in range(N, N + 7))])
    calls: list[tuple[int, int]] = []
    report = run(home, db, batch_size=3, progress=lambda done, total: calls.append((done, total)))
    assert (report.inserted, report.updated, report.unchanged) == (7, 0, N)
    assert calls == [(3, 7), (6, 7), (7, 7)]
    assert query(db, "SELECT count(*) FROM activities") == [(N + 7,)]


# ---- orphans -------------------------------------------------------------------


def delete_with_tombstone(paths: Paths, victim: Activity) -> None:
    acts = [a for a in cache_activities(paths) if a.id != victim.id]
    tomb = Tombstone(
        id=victim.id,
        deleted_at="2024-06-01T00:00:00Z",
        reason="test delete",
        aliases=list(victim.aliases),
        source_ids=dict(victim.source_ids),
    )
    save_cache(paths, acts, tombstones=[tomb])


def test_a_deleted_activity_is_an_orphan_until_delete_orphans(home: Paths, db: Path) -> None:
    run(home, db)
    victim = cache_activities(home)[3]  # has a Strava twin and an alias
    delete_with_tombstone(home, victim)

    report = run(home, db)
    assert (report.orphans, report.deleted, report.unchanged) == (1, 0, N - 1)
    assert "--delete-orphans" in report.human()
    assert query(db, "SELECT orphaned_at IS NOT NULL FROM activities WHERE id = ?", (victim.id,)) == [(1,)]
    # The views no longer count it.
    assert query(db, "SELECT SUM(activities) FROM monthly_totals") == [(N - 1,)]
    # Reported on every later export too, without re-sending anything.
    again = run(home, db)
    assert again.cache_unchanged and again.orphans == 1 and not any(again.sent.values())

    removed = run(home, db, delete_orphans=True)
    assert (removed.orphans, removed.deleted) == (1, 1)
    for table in ("activities",):
        assert query(db, f"SELECT count(*) FROM {table} WHERE id = ?", (victim.id,)) == [(0,)]
    for table in ("activity_sources", "aliases", "hr_splits"):
        assert query(db, f"SELECT count(*) FROM {table} WHERE activity_id = ?", (victim.id,)) == [(0,)]
    assert removed.rows["activities"].after == N - 1
    assert run(home, db).orphans == 0


def test_an_absorbed_id_stays_findable_through_aliases(home: Paths, db: Path) -> None:
    acts = cache_activities(home)
    strava = make_activity(1, splits=0)
    sid = "777000111"
    dup = replace(
        strava,
        id=f"strava:{sid}",
        source="strava",
        source_ids={"strava": sid},
        aliases=[],
        raw={"strava": {"id": int(sid)}},
        hr_splits=None,
        start_time=acts[1].start_time,
    )
    save_cache(home, [*acts, dup])
    run(home, db)
    assert query(db, "SELECT activity_id FROM activity_sources WHERE source_id = ?", (sid,)) == [(dup.id,)]

    # A merge proves the Strava record to be activity 1: it is absorbed.
    keeper = acts[1]
    merged = replace(keeper, source_ids={**keeper.source_ids, "strava": sid}, aliases=[*keeper.aliases, dup.id])
    save_cache(home, [merged if a.id == keeper.id else a for a in acts])
    report = run(home, db)
    assert (report.updated, report.orphans) == (1, 1)
    assert query(db, "SELECT activity_id FROM activity_sources WHERE source='strava' AND source_id=?", (sid,)) == [
        (keeper.id,)
    ]
    assert query(db, "SELECT activity_id FROM aliases WHERE alias = ?", (dup.id,)) == [(keeper.id,)]
    assert query(db, "SELECT SUM(activities) FROM monthly_totals") == [(N,)]  # not counted twice

    run(home, db, delete_orphans=True)
    assert query(db, "SELECT count(*) FROM activities WHERE id = ?", (dup.id,)) == [(0,)]
    assert query(db, "SELECT activity_id FROM aliases WHERE alias = ?", (dup.id,)) == [(keeper.id,)]


def test_an_orphan_that_comes_back_is_live_again(home: Paths, db: Path) -> None:
    run(home, db)
    acts = cache_activities(home)
    victim = acts[2]
    delete_with_tombstone(home, victim)
    run(home, db)
    # A restore brings the same activity back (the guard allows a tombstone to go with its activity).
    save_cache(home, acts, tombstones=[], force="test restore")
    report = run(home, db)
    assert report.updated == 1 and report.orphans == 0
    assert query(db, "SELECT orphaned_at FROM activities WHERE id = ?", (victim.id,)) == [(None,)]


# ---- full refresh and schema versions ----------------------------------------------


def test_full_refresh_readers_never_see_empty_tables(home: Paths, db: Path) -> None:
    run(home, db)
    acts = cache_activities(home)
    save_cache(home, [*acts, make_activity(N)])
    seen: list[int] = []
    reader = sqlite3.connect(db, check_same_thread=False)

    def read_during_refresh(done: int, total: int) -> None:
        # Mid-rebuild: the writer has dropped and partly refilled the tables in its transaction.
        seen.append(reader.execute("SELECT count(*) FROM activities").fetchone()[0])
        seen.append(reader.execute("SELECT count(*) FROM weekly_totals").fetchone()[0] > 0)

    report = run(home, db, full_refresh=True, batch_size=4, progress=read_during_refresh)
    assert report.full_refresh and "full refresh" in report.human()
    assert seen and all(seen[i] == N for i in range(0, len(seen), 2)) and all(seen[1::2])
    assert reader.execute("SELECT count(*) FROM activities").fetchone()[0] == N + 1
    reader.close()
    assert report.sent["activities"] == N + 1


def test_an_older_mirror_schema_is_rebuilt_with_an_explanation(home: Paths, db: Path) -> None:
    run(home, db)
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("DROP VIEW hr_coverage")
        conn.execute("ALTER TABLE activities DROP COLUMN device")  # what an older layout might lack
        conn.execute("UPDATE meta SET value = '0' WHERE key = 'schema_version'")
    conn.close()
    report = run(home, db)
    assert report.full_refresh
    assert any("schema version 0 is older" in n for n in report.notes)
    assert "schema version 0" in report.human()
    assert "device" in {r[1] for r in query(db, "PRAGMA table_info(activities)")}
    assert query(db, "SELECT count(*) FROM hr_coverage")[0][0] > 0
    assert dict(query(db, "SELECT key, value FROM meta"))["schema_version"] == str(tables.SCHEMA_VERSION)
    assert run(home, db).cache_unchanged


def test_a_newer_mirror_schema_is_refused_unless_full_refresh(home: Paths, db: Path) -> None:
    run(home, db)
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    conn.close()
    before = file_digest(db)
    with pytest.raises(ExportError, match="newer") as info:
        run(home, db)
    assert "--full-refresh" in str(info.value)
    assert file_digest(db) == before
    assert run(home, db, full_refresh=True).full_refresh
    assert dict(query(db, "SELECT key, value FROM meta"))["schema_version"] == str(tables.SCHEMA_VERSION)


def test_a_foreign_activities_table_is_not_overwritten(home: Paths, db: Path) -> None:
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("CREATE TABLE activities (id INTEGER PRIMARY KEY, note TEXT)")
        conn.execute("INSERT INTO activities (note) VALUES ('mine')")
    conn.close()
    with pytest.raises(ExportError, match="did not create"):
        run(home, db)
    assert query(db, "SELECT note FROM activities") == [("mine",)]


# ---- dry run -------------------------------------------------------------------


def test_dry_run_writes_nothing_and_predicts_what_is_sent(home: Paths, db: Path) -> None:
    report = run(home, db, dry_run=True)
    assert not db.exists()
    assert report.dry_run and report.inserted == N and "dry run" in report.human()
    actual = run(home, db)
    assert report.sent == actual.sent

    acts = cache_activities(home)
    save_cache(home, [replace(acts[0], name="x"), *acts[1:]])
    before = file_digest(db)
    predicted = run(home, db, dry_run=True, delete_orphans=True)
    assert file_digest(db) == before
    assert predicted.updated == 1 and predicted.sent["activities"] == 1
    assert run(home, db).sent == predicted.sent


# ---- failures: clear message, old mirror intact, cache untouched ----------------------


@pytest.fixture
def exported(home: Paths, db: Path) -> Iterator[tuple[Paths, Path, dict[str, list[tuple[Any, ...]]], str]]:
    """A first export, then a changed cache: (home, db, the old mirror's rows, the cache's digest)."""
    run(home, db)
    image = mirror_image(db)
    acts = cache_activities(home)
    save_cache(home, [replace(a, name=f"changed {i}") for i, a in enumerate(acts)])
    yield home, db, image, file_digest(home.cache)


def test_a_corrupt_sqlite_file_is_named_and_left_alone(home: Paths, db: Path) -> None:
    db.write_bytes(b"this is not a database, just text " * 200)
    before = file_digest(db)
    cache_before = file_digest(home.cache)
    with pytest.raises(ExportError) as info:
        run(home, db)
    assert str(db) in str(info.value) and "not a SQLite database" in str(info.value)
    assert file_digest(db) == before and file_digest(home.cache) == cache_before
    result = invoke("export", "sqlite", str(db), "--home", str(home.home))
    assert result.exit_code == 1 and "not a SQLite database" in result.stderr


def test_a_full_disk_rolls_back_to_the_old_mirror(exported, monkeypatch) -> None:
    home, db, image, _digest = exported
    save_cache(home, [*cache_activities(home), *(make_activity(i, splits=20) for i in range(N, N + 300))])
    cache_digest = file_digest(home.cache)
    pages = query(db, "PRAGMA page_count")[0][0]
    # SQLite's own size cap raises SQLITE_FULL exactly as a full disk does.
    monkeypatch.setattr(sqlite_mod, "_on_connect", lambda conn: conn.execute(f"PRAGMA max_page_count = {pages}"))
    for kw in ({"batch_size": 50}, {"full_refresh": True}):
        with pytest.raises(ExportError, match="disk is full") as info:
            run(home, db, **kw)
        assert str(db) in str(info.value) and "rolled back" in str(info.value)
        assert mirror_image(db) == image
    assert file_digest(home.cache) == cache_digest
    monkeypatch.setattr(sqlite_mod, "_on_connect", None)
    report = run(home, db)  # and the next export, with room, succeeds
    assert (report.updated, report.inserted) == (N, 300)


def test_a_failed_first_export_leaves_no_empty_database(home: Paths, db: Path) -> None:
    home.cache.write_bytes(b'{"schema_version": 1, "activities": [')  # a cache that cannot be read
    with pytest.raises(CorruptInput):
        run(home, db)
    assert not db.exists() and not Path(f"{db}-wal").exists()


def test_a_missing_folder_is_a_clear_error(home: Paths, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="does not exist"):
        run(home, tmp_path / "no" / "such" / "mirror.db")


# Imports everything as root, then drops to nobody and runs the real command (root ignores file modes).
_UNPRIVILEGED = """
import os, sys
import healthcache.cli.export_cmds, healthcache.export.sqlite
from healthcache.cli import main
os.setgroups([]); os.setgid(65534); os.setuid(65534)
sys.exit(main(sys.argv[1:]))
"""


def test_a_read_only_sqlite_file_is_named_and_left_alone() -> None:
    # Not tmp_path: its parents are private to root, and the export must run unprivileged.
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        paths = make_home(root / "home")
        acts = [make_activity(i) for i in range(N)]
        save_cache(paths, acts)
        db = root / "mirror.db"
        run(paths, db)
        image = mirror_image(db)
        save_cache(paths, [replace(a, name="changed") for a in acts])
        cache_digest = file_digest(paths.cache)
        for p in (root, paths.home, paths.tracking, paths.sync_state):
            p.chmod(0o755)
        for p in (paths.cache, paths.index):
            p.chmod(0o644)
        db.chmod(0o444)

        argv = ["export", "sqlite", str(db), "--home", str(paths.home)]
        if os.geteuid() == 0:
            proc = subprocess.run([sys.executable, "-c", _UNPRIVILEGED, *argv], capture_output=True, text=True)
            status, message = proc.returncode, proc.stderr
        else:
            result = invoke(*argv)
            status, message = result.exit_code, result.stderr
        assert status == 1, message
        assert str(db) in message and "read-only" in message
        db.chmod(0o644)
        assert mirror_image(db) == image
        assert file_digest(paths.cache) == cache_digest


# ---- concurrency ---------------------------------------------------------------------


def test_two_exports_to_one_file_serialise(exported) -> None:
    home, db, _image, _digest = exported
    first_writing = threading.Event()
    second_waiting = threading.Event()
    results: dict[str, ExportReport | BaseException] = {}

    def first_progress(done: int, total: int) -> None:
        if done == 4:  # hold the write lock mid-export until the second export is seen waiting
            first_writing.set()
            assert second_waiting.wait(30), "the second export never waited"

    def go(name: str, **kw: Any) -> None:
        try:
            results[name] = run(home, db, **kw)
        except BaseException as exc:
            results[name] = exc

    one = threading.Thread(target=go, args=("first",), kwargs={"batch_size": 4, "progress": first_progress})
    one.start()
    assert first_writing.wait(30)
    two = threading.Thread(target=go, args=("second",), kwargs={"on_lock_wait": lambda msg: second_waiting.set()})
    two.start()
    one.join(60)
    two.join(60)
    first, second = results["first"], results["second"]
    assert isinstance(first, ExportReport) and isinstance(second, ExportReport), results
    assert first.updated == N
    # The second ran after the first had committed: it found nothing left to send.
    assert second.cache_unchanged and not any(second.sent.values())
    assert query(db, "SELECT count(*) FROM activities WHERE name LIKE 'changed %'") == [(N,)]


def test_an_export_that_cannot_get_the_lock_in_time_gives_up_cleanly(exported) -> None:
    home, db, image, _digest = exported
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    waited: list[str] = []
    try:
        with pytest.raises(ExportError, match="locked") as info:
            run(home, db, lock_wait=0.2, on_lock_wait=waited.append)
        assert info.value.exit_code == 75
    finally:
        holder.rollback()
        holder.close()
    assert waited and "another export" in waited[0]
    assert mirror_image(db) == image


# ---- the command line and configured targets ----------------------------------------


def test_cli_export_sqlite_json_report(home: Paths, db: Path) -> None:
    result = invoke("export", "sqlite", str(db), "--home", str(home.home), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    for key in ("processed", "inserted", "updated", "unchanged", "orphans", "deleted", "seconds"):
        assert key in data
    assert (data["processed"], data["inserted"]) == (N, N)
    assert data["rows"]["activities"] == {"before": 0, "after": N}
    assert set(data["size_mb"]) == {"before", "after"} and data["size_mb"]["after"] > 0
    assert query(db, "SELECT count(*) FROM activities") == [(N,)]

    human = invoke("export", "sqlite", str(db), "--home", str(home.home))
    assert human.exit_code == 0 and "cache unchanged" in human.output and "activities" in human.output
    quiet = invoke("export", "sqlite", str(db), "--home", str(home.home), "--quiet")
    assert quiet.exit_code == 0 and quiet.output == ""


def test_cli_flags_reach_the_export(home: Paths, db: Path) -> None:
    base = ["export", "sqlite", str(db), "--home", str(home.home), "--json"]
    dry = invoke(*base, "--dry-run")
    assert dry.exit_code == 0 and json.loads(dry.stdout)["dry_run"] and not db.exists()
    assert invoke(*base).exit_code == 0
    delete_with_tombstone(home, cache_activities(home)[0])
    kept = json.loads(invoke(*base, "--batch-size", "5").stdout)
    assert (kept["orphans"], kept["deleted"]) == (1, 0)
    gone = json.loads(invoke(*base, "--delete-orphans").stdout)
    assert (gone["orphans"], gone["deleted"]) == (1, 1)
    full = json.loads(invoke(*base, "--full-refresh").stdout)
    assert full["full_refresh"] and full["sent"]["activities"] == N - 1
    bad = invoke(*base, "--batch-size", "0")
    assert bad.exit_code == 2


def test_cli_without_a_cache_fails_without_creating_a_mirror(tmp_path: Path, db: Path) -> None:
    result = invoke("export", "sqlite", str(db), "--home", str(tmp_path / "empty"))
    assert result.exit_code == 1 and "no cache" in result.stderr
    assert not db.exists()


def test_configured_targets_export_and_report_failures_without_raising(home: Paths) -> None:
    config = Config(
        export=ExportConfig(
            targets=("sqlite:mirror.db", "postgresql://someone:s3cret-pw@127.0.0.1:1/nowhere", "ftp:nope")
        )
    )
    outcomes = run_configured_exports(home, config)
    assert len(outcomes) == 3
    ok, down, unknown = outcomes
    assert ok.report is not None and ok.report.inserted == N and ok.error is None
    assert query(home.home / "mirror.db", "SELECT count(*) FROM activities") == [(N,)]
    assert down.report is None and down.exit_code == 1 and "cannot connect" in (down.error or "")
    assert "s3cret-pw" not in (down.error or "") + down.target
    assert unknown.error and "unknown export target" in unknown.error
    again = run_configured_exports(home, Config(export=ExportConfig(targets=("sqlite:mirror.db",))))
    assert again[0].report is not None and again[0].report.cache_unchanged


def test_redaction_of_target_specs() -> None:
    assert core.redact_text("postgresql://u:pw@h:5/db") == "postgresql://u:***@h:5/db"
    assert core.redact_text("sqlite:/tmp/x.db") == "sqlite:/tmp/x.db"


def test_export_modules_keep_the_startup_path_light() -> None:
    code = (
        "import sys, healthcache.cli.export_cmds, healthcache.export.core;"
        "from healthcache.export.core import Target;"
        "Target('sqlite', '/tmp/x.db').open();"
        "print('psycopg' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
