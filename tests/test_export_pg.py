"""The PostgreSQL mirror against a real server (HEALTHCACHE_TEST_PG_URL, else a throwaway cluster).

"Nothing sent" is checked twice: by counting what the exporter sends, and on
the server, whose row versions (ctid, xmin) and per-table tuple counters
(pg_stat_user_tables) must not move.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import msgspec
import psycopg
import pytest
from click.testing import CliRunner, Result
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from healthcache.cli import main
from healthcache.config import Config, ExportConfig, Paths
from healthcache.export import tables
from healthcache.export.core import ExportError, ExportReport, Target, export, run_configured_exports
from healthcache.export.postgres import LOCK_KEY, PostgresMirror, describe
from healthcache.model.records import Activity, Tombstone
from tests import export_fixtures
from tests.export_fixtures import cache_activities, make_activity, make_home, replace, save_cache

# The shared server and a fresh database per test (these fail, never skip, without a server).
pg_server = export_fixtures.pg_server
pg_url = export_fixtures.pg_url

N = 12
DATA_TABLES = [t.name for t in tables.DATA_TABLES]


@pytest.fixture
def home(tmp_path: Path) -> Paths:
    paths = make_home(tmp_path / "home")
    save_cache(paths, [make_activity(i) for i in range(N)])
    return paths


def run(paths: Paths, url: str, mirror: PostgresMirror | None = None, **kw: Any) -> ExportReport:
    from healthcache.store import Store

    return export(mirror or PostgresMirror(url), Store(paths, Config()), **kw)


def q(url: str, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql.encode(), params).fetchall()


def invoke(*argv: str) -> Result:
    def entry() -> None:
        raise SystemExit(main(list(argv)))

    return CliRunner().invoke(click.Command("healthcache", callback=entry), [], catch_exceptions=False)


def row_versions(url: str) -> dict[str, list[tuple[str, str]]]:
    """Each row's physical version: any UPDATE, DELETE or re-INSERT changes it."""
    return {t: sorted(q(url, f"SELECT ctid::text, xmin::text FROM {t}")) for t in (*DATA_TABLES, "meta")}


def mirror_image(url: str) -> dict[str, list[tuple[Any, ...]]]:
    return {t: sorted(q(url, f"SELECT * FROM {t}"), key=repr) for t in (*DATA_TABLES, "meta")}


def wait_backend_gone(url: str, pid: int | None) -> None:
    """A backend flushes its table statistics on exit, before it leaves pg_stat_activity."""
    assert pid is not None
    deadline = time.monotonic() + 30
    while q(url, "SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)):
        assert time.monotonic() < deadline, "the export's backend did not exit"
        time.sleep(0.02)


def tuple_stats(url: str) -> dict[str, tuple[int, int, int]]:
    rows = q(url, "SELECT relname, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_user_tables")
    return {r[0]: (r[1], r[2], r[3]) for r in rows if r[0] in (*DATA_TABLES, "meta")}


def exported_and_settled(paths: Paths, url: str, **kw: Any) -> ExportReport:
    mirror = PostgresMirror(url)
    report = run(paths, url, mirror, **kw)
    wait_backend_gone(url, mirror.backend_pid)
    return report


def with_password(url: str, password: str) -> str:
    params = conninfo_to_dict(url)
    params["password"] = password
    return make_conninfo(**params)


# ---- first export ---------------------------------------------------------------


def test_first_export_writes_typed_tables_views_and_meta(home: Paths, pg_url: str) -> None:
    report = run(home, pg_url)
    acts = cache_activities(home)
    assert (report.processed, report.inserted, report.updated) == (N, N, 0)
    assert report.rows["activities"].after == N and report.rows["activities"].before == 0
    assert report.sent["hr_splits"] == sum(len(a.hr_splits or []) for a in acts)
    assert "postgresql://healthcache@" in report.target and report.size_mb_after

    by_id = {a.id: a for a in acts}
    for aid, data, start in q(pg_url, "SELECT id, data, start_time FROM activities"):
        assert msgspec.convert(data, Activity) == by_id[aid]  # jsonb holds the whole activity
        assert start.isoformat().replace("+00:00", "Z") == by_id[aid].start_time
    types = dict(
        q(pg_url, "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'activities'")
    )
    assert types["data"] == "jsonb" and types["start_time"] == "timestamp with time zone"
    assert types["distance_m"] == "double precision" and types["start_date"] == "date"
    indexes = {r[0] for r in q(pg_url, "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()")}
    assert {"activities_pkey", "activities_start_time", "activities_sport", "activity_sources_key"} <= indexes
    fkeys = {r[0] for r in q(pg_url, "SELECT conname FROM pg_constraint WHERE contype = 'f'")}
    assert fkeys == {f"{t}_activity_id_fkey" for t in ("activity_sources", "aliases", "hr_splits")}
    twin = next(a for a in acts if "strava" in a.source_ids)
    found = q(
        pg_url,
        "SELECT activity_id FROM activity_sources WHERE source = 'strava' AND source_id = %s",
        (twin.source_ids["strava"],),
    )
    assert found == [(twin.id,)]
    weeks = q(pg_url, "SELECT week_start, SUM(activities) FROM weekly_totals GROUP BY 1")
    assert sum(n for _w, n in weeks) == N and all(w.isoweekday() == 1 for w, _n in weeks)
    assert q(pg_url, "SELECT SUM(activities), SUM(with_hr_splits) FROM hr_coverage") == [(N, N)]
    meta = dict(q(pg_url, "SELECT key, value FROM meta"))
    assert meta["cache_sha256"] == hashlib.sha256(home.cache.read_bytes()).hexdigest()
    assert meta["schema_version"] == str(tables.SCHEMA_VERSION)


# ---- incremental: what the server received ---------------------------------------------


def test_reexport_of_an_unchanged_cache_sends_nothing_to_the_server(home: Paths, pg_url: str) -> None:
    exported_and_settled(home, pg_url)
    stats, versions = tuple_stats(pg_url), row_versions(pg_url)
    assert stats["activities"][0] == N  # the counters do see our writes

    report = exported_and_settled(home, pg_url)
    assert report.cache_unchanged and not any(report.sent.values()) and report.statements <= 8
    assert report.rows["activities"].after == N
    assert tuple_stats(pg_url) == stats
    assert row_versions(pg_url) == versions


def test_one_changed_activity_is_one_row_on_the_server(home: Paths, pg_url: str) -> None:
    exported_and_settled(home, pg_url)
    stats, versions = tuple_stats(pg_url), row_versions(pg_url)
    acts = cache_activities(home)
    target = acts[5]
    save_cache(home, [replace(a, name="renamed", avg_hr=99.0) if a.id == target.id else a for a in acts])

    report = exported_and_settled(home, pg_url)
    assert (report.updated, report.unchanged) == (1, N - 1)
    n_splits = len(target.hr_splits or [])
    assert report.sent == {"activities": 1, "activity_sources": 1, "aliases": 0, "hr_splits": n_splits}
    after = tuple_stats(pg_url)
    assert after["activities"][1] - stats["activities"][1] == 1  # one UPDATE (the upsert)
    assert after["activities"][0] == stats["activities"][0]  # no insert
    assert after["hr_splits"][0] - stats["hr_splits"][0] == n_splits  # its splits replaced
    assert after["hr_splits"][2] - stats["hr_splits"][2] == n_splits
    new_versions = row_versions(pg_url)
    changed_rows = set(new_versions["activities"]) - set(versions["activities"])
    assert len(changed_rows) == 1
    assert q(pg_url, "SELECT name, avg_hr FROM activities WHERE id = %s", (target.id,)) == [("renamed", 99.0)]


def test_batches_use_copy_not_a_round_trip_per_row(home: Paths, pg_url: str) -> None:
    save_cache(home, [make_activity(i) for i in range(60)])
    run(home, pg_url)
    save_cache(home, [replace(a, name="edited") for a in cache_activities(home)])
    report = run(home, pg_url, batch_size=20)
    rows = sum(report.sent.values())
    assert report.updated == 60 and rows > 400
    # A dozen statements per batch of 20 activities (~140 rows), plus a few per export: not one per row.
    assert report.statements <= 12 * 3 + 15 < rows / 8


# ---- orphans, merges ------------------------------------------------------------------


def test_deleted_activity_orphan_then_delete_orphans(home: Paths, pg_url: str) -> None:
    run(home, pg_url)
    victim = cache_activities(home)[6]
    rest = [a for a in cache_activities(home) if a.id != victim.id]
    tomb = Tombstone(id=victim.id, deleted_at="2024-06-01T00:00:00Z", reason="test", source_ids=dict(victim.source_ids))
    save_cache(home, rest, tombstones=[tomb])
    kept = run(home, pg_url)
    assert (kept.orphans, kept.deleted) == (1, 0)
    assert q(pg_url, "SELECT orphaned_at IS NOT NULL FROM activities WHERE id = %s", (victim.id,)) == [(True,)]
    assert q(pg_url, "SELECT SUM(activities) FROM monthly_totals") == [(N - 1,)]
    assert run(home, pg_url).orphans == 1  # reported on every export

    gone = run(home, pg_url, delete_orphans=True)
    assert (gone.orphans, gone.deleted) == (1, 1)
    assert q(pg_url, "SELECT count(*) FROM activities WHERE id = %s", (victim.id,)) == [(0,)]
    assert q(pg_url, "SELECT count(*) FROM hr_splits WHERE activity_id = %s", (victim.id,)) == [(0,)]
    assert gone.rows["activities"].after == N - 1


def test_absorbed_id_resolves_through_aliases(home: Paths, pg_url: str) -> None:
    acts = cache_activities(home)
    sid = "555000222"
    dup = replace(
        acts[2],
        id=f"strava:{sid}",
        source="strava",
        source_ids={"strava": sid},
        aliases=[],
        raw={"strava": {"id": int(sid)}},
    )
    save_cache(home, [*acts, dup])
    run(home, pg_url)
    keeper = acts[2]
    merged = replace(keeper, source_ids={**keeper.source_ids, "strava": sid}, aliases=[*keeper.aliases, dup.id])
    save_cache(home, [merged if a.id == keeper.id else a for a in acts])

    report = run(home, pg_url, batch_size=1)
    assert (report.updated, report.orphans) == (1, 1)
    assert q(pg_url, "SELECT activity_id FROM activity_sources WHERE source_id = %s", (sid,)) == [(keeper.id,)]
    assert q(pg_url, "SELECT activity_id FROM aliases WHERE alias = %s", (dup.id,)) == [(keeper.id,)]
    run(home, pg_url, delete_orphans=True)
    assert q(pg_url, "SELECT count(*) FROM activities WHERE id = %s", (dup.id,)) == [(0,)]
    assert q(pg_url, "SELECT activity_id FROM aliases WHERE alias = %s", (dup.id,)) == [(keeper.id,)]


# ---- full refresh and schema versions -----------------------------------------------------


def test_full_refresh_while_another_connection_reads(home: Paths, pg_url: str) -> None:
    run(home, pg_url)
    save_cache(home, [*cache_activities(home), make_activity(N)])
    seen: list[int] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def keep_reading() -> None:
        try:
            with psycopg.connect(pg_url, autocommit=True) as conn:
                while not done.is_set():
                    seen.append(conn.execute("SELECT count(*) FROM activities").fetchone()[0])  # type: ignore[index]
                    conn.execute("SELECT count(*) FROM weekly_totals").fetchone()
                seen.append(conn.execute("SELECT count(*) FROM activities").fetchone()[0])  # type: ignore[index]
        except BaseException as exc:
            errors.append(exc)

    in_batch: list[int] = []
    probe = psycopg.connect(pg_url, autocommit=True)

    def read_mid_refresh(done_: int, total: int) -> None:
        in_batch.append(probe.execute("SELECT count(*) FROM activities").fetchone()[0])  # type: ignore[index]

    reader = threading.Thread(target=keep_reading)
    reader.start()
    try:
        report = run(home, pg_url, full_refresh=True, batch_size=3, progress=read_mid_refresh)
    finally:
        done.set()
        reader.join(60)
        probe.close()
    assert not errors, errors
    assert report.full_refresh and report.sent["activities"] == N + 1
    assert in_batch and set(in_batch) == {N}  # mid-rebuild, readers see the old tables
    assert seen and set(seen) <= {N, N + 1} and seen[-1] == N + 1  # never empty, never an error
    assert q(pg_url, "SELECT count(*) FROM activities") == [(N + 1,)]
    names = {r[0] for r in q(pg_url, "SELECT relname FROM pg_class WHERE relname LIKE '%%__new%%'")}
    assert not names


def test_schema_version_change_is_detected_and_rebuilt(home: Paths, pg_url: str) -> None:
    run(home, pg_url)
    with psycopg.connect(pg_url) as conn:
        conn.execute("ALTER TABLE activities DROP COLUMN device")
        conn.execute("UPDATE meta SET value = '0' WHERE key = 'schema_version'")
    report = run(home, pg_url)
    assert report.full_refresh and any("schema version 0 is older" in n for n in report.notes)
    cols = {r[0] for r in q(pg_url, "SELECT column_name FROM information_schema.columns WHERE table_name='activities'")}
    assert "device" in cols
    assert run(home, pg_url).cache_unchanged

    with psycopg.connect(pg_url) as conn:
        conn.execute("UPDATE meta SET value = '42' WHERE key = 'schema_version'")
    with pytest.raises(ExportError, match="newer"):
        run(home, pg_url)


def test_dry_run_creates_and_changes_nothing(home: Paths, pg_url: str) -> None:
    report = run(home, pg_url, dry_run=True)
    assert report.dry_run and report.inserted == N
    assert q(pg_url, "SELECT to_regclass('activities')") == [(None,)]
    run(home, pg_url)
    versions = row_versions(pg_url)
    acts = cache_activities(home)
    save_cache(home, [replace(acts[0], name="dry"), *acts[1:]])
    predicted = run(home, pg_url, dry_run=True)
    assert predicted.updated == 1 and predicted.sent["activities"] == 1
    assert row_versions(pg_url) == versions


# ---- failures -----------------------------------------------------------------------------


@pytest.fixture
def changed_after_export(home: Paths, pg_url: str) -> Iterator[tuple[dict[str, Any], str]]:
    run(home, pg_url)
    image = mirror_image(pg_url)
    save_cache(home, [replace(a, name=f"changed {i}") for i, a in enumerate(cache_activities(home))])
    yield image, hashlib.sha256(home.cache.read_bytes()).hexdigest()


def test_unreachable_server_is_named_without_its_password(home: Paths) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"postgresql://athlete:Hunter2-secret@127.0.0.1:{port}/mirror"
    with pytest.raises(ExportError) as info:
        run(home, url)
    text = str(info.value)
    assert "cannot connect" in text and f"127.0.0.1:{port}/mirror" in text and "athlete" in text
    assert "Hunter2-secret" not in text
    result = invoke("export", "postgres", url, "--home", str(home.home))
    assert result.exit_code == 1 and "cannot connect" in result.stderr
    assert "Hunter2-secret" not in result.output


def test_refused_login_is_reported_and_changes_nothing(home: Paths, pg_url: str, changed_after_export) -> None:
    image, cache_digest = changed_after_export
    bad = with_password(pg_url, "definitely-Wrong-pw")
    with pytest.raises(ExportError) as info:
        run(home, bad)
    text = str(info.value)
    assert "password authentication failed" in text and "definitely-Wrong-pw" not in text
    assert mirror_image(pg_url) == image
    assert hashlib.sha256(home.cache.read_bytes()).hexdigest() == cache_digest


def test_server_killing_the_export_mid_way_rolls_back(home: Paths, pg_url: str, changed_after_export) -> None:
    image, cache_digest = changed_after_export
    mirror = PostgresMirror(pg_url)
    killed: list[bool] = []

    def kill_after_first_batch(done: int, total: int) -> None:
        if not killed:
            # The server ends the export's session between two batches (5 s for it to go).
            killed.append(q(pg_url, "SELECT pg_terminate_backend(%s, 5000)", (mirror.backend_pid,))[0][0])

    with pytest.raises(ExportError) as info:
        run(home, pg_url, mirror, batch_size=3, progress=kill_after_first_batch)
    assert killed == [True]
    text = str(info.value)
    assert "lost" in text and "rolled back" in text and mirror.display in text
    assert mirror_image(pg_url) == image
    assert hashlib.sha256(home.cache.read_bytes()).hexdigest() == cache_digest
    assert run(home, pg_url).updated == N  # the next export completes the job


# ---- concurrency ----------------------------------------------------------------------------


def test_two_exports_to_one_database_serialise(home: Paths, pg_url: str, changed_after_export) -> None:
    first_writing = threading.Event()
    second_waiting = threading.Event()
    results: dict[str, Any] = {}

    def first_progress(done: int, total: int) -> None:
        if not first_writing.is_set():
            first_writing.set()
            assert second_waiting.wait(30), "the second export never waited"

    def go(name: str, **kw: Any) -> None:
        try:
            results[name] = run(home, pg_url, **kw)
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
    assert second.cache_unchanged and not any(second.sent.values())
    assert q(pg_url, "SELECT count(*) FROM activities WHERE name LIKE 'changed %%'") == [(N,)]


def test_an_export_that_cannot_get_the_lock_in_time_gives_up(home: Paths, pg_url: str, changed_after_export) -> None:
    image, _digest = changed_after_export
    waited: list[str] = []
    with psycopg.connect(pg_url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        with pytest.raises(ExportError, match="lock") as info:
            run(home, pg_url, lock_wait=0.3, on_lock_wait=waited.append)
    assert info.value.exit_code == 75
    assert waited and "another export" in waited[0]
    assert mirror_image(pg_url) == image


# ---- how the server is named: URL, config, PG* variables, .pgpass -------------------------------


def test_pg_environment_and_pgpass_work_without_a_url(home: Paths, pg_url: str, tmp_path: Path, monkeypatch) -> None:
    p = conninfo_to_dict(pg_url)
    pgpass = tmp_path / "pgpass"
    pgpass.write_text(f"{p['host']}:{p['port']}:{p['dbname']}:{p['user']}:{p['password']}\n")
    pgpass.chmod(0o600)
    for key in ("PGPASSWORD", "PGSERVICE", "HEALTHCACHE_PG_URL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("PGHOST", str(p["host"]))
    monkeypatch.setenv("PGPORT", str(p["port"]))
    monkeypatch.setenv("PGUSER", str(p["user"]))
    monkeypatch.setenv("PGDATABASE", str(p["dbname"]))
    monkeypatch.setenv("PGPASSFILE", str(pgpass))
    result = invoke("export", "postgres", "--home", str(home.home), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["inserted"] == N and str(p["password"]) not in result.output
    assert data["target"] == f"postgresql://{p['user']}@{p['host']}:{p['port']}/{p['dbname']}"
    mirror = Target("postgres", "").open()
    assert describe("") == mirror.display == data["target"]


def test_url_from_the_environment_variable(home: Paths, pg_url: str, monkeypatch) -> None:
    monkeypatch.setenv("HEALTHCACHE_PG_URL", pg_url)
    result = invoke("export", "postgres", "--home", str(home.home))
    assert result.exit_code == 0, result.output
    assert f"processed {N} activities" in result.output
    assert str(conninfo_to_dict(pg_url)["password"]) not in result.output
    assert q(pg_url, "SELECT count(*) FROM activities") == [(N,)]


def test_configured_postgres_target_after_a_save(home: Paths, pg_url: str) -> None:
    bad = with_password(pg_url, "not-the-Password")
    config = Config(export=ExportConfig(targets=("postgres", f"postgres:{bad}"), postgres_url=pg_url))
    good, refused = run_configured_exports(home, config)
    assert good.error is None and good.report is not None and good.report.inserted == N
    assert refused.report is None and "password authentication failed" in (refused.error or "")
    assert "not-the-Password" not in (refused.error or "") + refused.target
    assert q(pg_url, "SELECT count(*) FROM activities") == [(N,)]


def test_describe_never_shows_a_password() -> None:
    assert describe("postgresql://u:pw@db.example:6543/mirror") == "postgresql://u@db.example:6543/mirror"
    assert describe("host=/run/pg port=5433 user=u dbname=d") == "postgresql://u@%2Frun%2Fpg:5433/d"
    assert "pw" not in describe("host=db user=u password=pw dbname=x")
    with pytest.raises(ExportError) as info, PostgresMirror("host=db password='unterminated-secret").open(write=True):
        pass
    assert "unterminated-secret" not in str(info.value)
