"""``healthcache sync`` end to end: smart skip, nothing new, isolation, dry run, reports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec
import pytest

from healthcache import codec
from healthcache.sources.sync_state import update_states_locked
from healthcache.timeutil import utc_iso
from tests.fakes import payloads

if TYPE_CHECKING:
    from tests.fakes.fixtures import Workspace

pytest_plugins = ["tests.fakes.fixtures"]
NOW = datetime.now(UTC)


def seed_both(ws: Workspace, count: int = 6) -> None:
    """Garmin activities, and their Strava copies uploaded by Garmin (external_id names them)."""
    for i, start in enumerate(payloads.spaced_starts(count, NOW, timedelta(hours=9))):
        gid = 14_900_000_000 + i
        ws.garmin.add(payloads.garmin_activity(gid, start))
        ws.strava.add(
            payloads.strava_activity(11_800_000_000 + i, start + timedelta(seconds=1), external_id=f"garmin_ping_{gid}")
        )
    ws.login_garmin()
    ws.login_strava()


def state_files(ws: Workspace) -> dict[str, tuple[int, int]]:
    out = {}
    for path in sorted(ws.paths.sync_state.glob("*.json")):
        st = path.stat()
        out[path.name] = (st.st_ino, st.st_mtime_ns)
    return out


def age_last_success(ws: Workspace, hours: float = 2) -> None:
    """Pretend the last sync was ``hours`` ago (what waiting for the interval would do)."""
    stamp = utc_iso(datetime.now(UTC) - timedelta(hours=hours), micro=True)
    update = {s: (lambda cur: msgspec.structs.replace(cur, last_success=stamp)) for s in ("garmin", "strava")}
    update_states_locked(ws.paths, update)


def test_second_sync_within_the_hour_makes_no_request_and_no_write(ws: Workspace) -> None:
    seed_both(ws)
    first = ws.cli("sync")
    assert first.code == 0, first.err
    assert len(ws.cache().activities) == 6  # each Strava copy merged into its Garmin activity
    requests, cache, states, backups = ws.requests(), ws.cache_stat(), state_files(ws), ws.backups()
    assert requests > 0 and cache is not None

    second = ws.cli("sync")
    assert second.code == 0, second.err
    assert ws.requests() == requests  # the servers' logs: not one request
    assert ws.cache_stat() == cache  # same inode, mtime and size
    assert state_files(ws) == states  # not even the bookkeeping was rewritten
    assert ws.backups() == backups
    assert second.out.count("no request sent") == 2
    assert "synced less than a minute ago (every 2 h: an activity in the last 7 days)" in second.out


def test_skipped_sync_imports_no_client_library(ws: Workspace) -> None:
    seed_both(ws, 2)
    assert ws.cli("sync").code == 0
    code = (
        "import sys; from healthcache.cli import main; rc = main(sys.argv[1:]); "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'stravalib', 'garminconnect', 'requests'})); "
        "sys.exit(rc)"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEALTHCACHE_")}
    done = subprocess.run(
        [sys.executable, "-c", code, "sync", "--home", str(ws.paths.home)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
    assert "skipped" in done.stdout


def test_after_the_hour_nothing_new_touches_only_the_state(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    seed_both(ws)
    assert ws.cli("sync").code == 0
    age_last_success(ws)
    requests, cache, backups = ws.requests(), ws.cache_stat(), ws.backups()
    states_before = state_files(ws)

    def no_parse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the cache was parsed on the nothing-new path")

    monkeypatch.setattr(codec, "decode", no_parse)
    r = ws.cli("sync")
    assert r.code == 0, r.err
    assert ws.requests() > requests  # it did ask both sources
    assert ws.cache_stat() == cache and ws.backups() == backups
    states_after = state_files(ws)
    assert states_after["garmin.json"] != states_before["garmin.json"]
    assert states_after["strava.json"] != states_before["strava.json"]
    assert "unchanged 6" in r.out and "saved the cache" not in r.out
    last = datetime.fromisoformat(ws.state("garmin")["last_success"].replace("Z", "+00:00"))
    assert datetime.now(UTC) - last < timedelta(minutes=1)


def test_a_changed_payload_after_the_hour_is_merged_and_backed_up(ws: Workspace) -> None:
    seed_both(ws, 3)
    assert ws.cli("sync").code == 0
    age_last_success(ws)
    ws.garmin.activities[0]["activityName"] = "Renamed on the watch"
    backups = ws.backups()
    r = ws.cli("sync")
    assert r.code == 0, r.err
    assert "updated 1" in r.out
    renamed = [
        a for a in ws.cache().activities if a.source_ids.get("garmin") == str(ws.garmin.activities[0]["activityId"])
    ]
    assert renamed[0].name == "Renamed on the watch"
    assert renamed[0].raw["garmin"]["activityName"] == "Renamed on the watch"
    assert len(ws.backups()) == len(backups) + 1


def test_one_failing_source_does_not_stop_the_other(ws: Workspace) -> None:
    seed_both(ws, 4)
    ws.garmin.fail("/activitylist-service", 500, {"message": "Internal Server Error"}, times=99)
    r = ws.cli("sync")
    assert r.code == 1
    assert "error: sync failed for garmin" in r.err
    assert "strava" not in r.err.split("sync failed for", 1)[1].splitlines()[0]
    assert {a.source for a in ws.cache().activities} == {"strava"}
    assert len(ws.cache().activities) == 4
    assert "last_success" in ws.state("strava") and "last_success" not in ws.state("garmin")
    # Next run: Strava is skipped (synced), Garmin is asked again and now works.
    ws.garmin.faults.clear()
    r2 = ws.cli("sync")
    assert r2.code == 0, r2.err
    assert {k for a in ws.cache().activities for k in a.source_ids} == {"garmin", "strava"}
    assert len(ws.cache().activities) == 4


def test_unreadable_state_is_a_first_sync_for_that_source(ws: Workspace) -> None:
    seed_both(ws, 2)
    ws.paths.sync_state.mkdir(parents=True)
    ws.paths.state_file("garmin").write_text("{not json")
    r = ws.cli("sync")
    assert r.code == 0, r.err  # a state file is a hint: garmin syncs as on a first sync, and says so
    assert r.err.count("tracking/sync_state/garmin.json could not be read (") == 1
    assert {k for a in ws.cache().activities for k in a.source_ids} == {"garmin", "strava"}
    assert ws.state("garmin")["last_success"]  # rewritten, readable


def test_dry_run_shows_the_changes_and_writes_nothing(ws: Workspace) -> None:
    seed_both(ws, 3)
    r = ws.cli("sync", "--dry-run")
    assert r.code == 0, r.err
    assert r.out.count("would add") == 3
    assert r.out.count("would merge") == 3
    assert "dry run: nothing was written" in r.out
    assert not ws.paths.cache.exists() and not ws.paths.sync_state.exists() and ws.backups() == []
    j = ws.cli("sync", "--dry-run", "--json")
    report = json.loads(j.out)
    assert report["dry_run"] is True
    garmin_step = next(s for s in report["steps"] if s["source"] == "garmin")
    assert garmin_step["new"] == 3 and {c["outcome"] for c in garmin_step["changes"]} == {"new"}
    assert not ws.paths.cache.exists()


def test_json_report_has_every_step_figure(ws: Workspace) -> None:
    seed_both(ws, 2)
    r = ws.cli("sync", "--json")
    assert r.code == 0, r.err
    report = json.loads(r.out)
    assert report["ok"] is True and report["failed"] == []
    for step in report["steps"]:
        for key in ("requests", "seconds", "seen", "new", "updated", "merged", "skipped", "status"):
            assert key in step
    by = {s["source"]: s for s in report["steps"]}
    assert (by["garmin"]["new"], by["strava"]["merged"]) == (2, 2)
    assert by["garmin"]["requests"] == 2 and by["strava"]["requests"] == 1


def test_quiet_prints_nothing_on_success_and_the_error_on_failure(ws: Workspace) -> None:
    seed_both(ws, 2)
    ok = ws.cli("sync", "--quiet")
    assert ok.code == 0 and ok.out == "" and ok.err == ""
    ws.strava.access.clear()
    bad = ws.cli("sync", "--quiet", "--force")
    assert bad.code == 1 and bad.out == ""
    assert "sync failed for strava" in bad.err


def test_sources_without_a_login_are_skipped_unless_named(ws: Workspace) -> None:
    for i, start in enumerate(payloads.spaced_starts(2, NOW, timedelta(hours=5))):
        ws.garmin.add(payloads.garmin_activity(100 + i, start))
    ws.login_garmin()
    r = ws.cli("sync")
    assert r.code == 0, r.err
    assert "not set up; run healthcache auth strava" in r.out
    assert ws.strava.paths() == []
    named = ws.cli("sync", "--source", "strava")
    assert named.code == 1
    assert "no strava login is saved" in named.err and "healthcache auth strava" in named.err


def test_days_must_be_positive(ws: Workspace) -> None:
    r = ws.cli("sync", "--days", "0")
    assert r.code == 2


def test_configured_endpoint_in_the_config_file(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    """The config file alone (no environment variable) points the clients at the servers."""
    monkeypatch.delenv("HEALTHCACHE_GARMIN_API_BASE")
    monkeypatch.delenv("HEALTHCACHE_STRAVA_API_HOST")
    Path(ws.paths.config_file).write_text(
        f'[sync]\ngarmin_api_base = "{ws.garmin.base}"\nstrava_api_host = "{ws.strava.host}"\nmin_interval_minutes = 5\nactive_interval_minutes = 5\n'
    )
    seed_both(ws, 2)
    r = ws.cli("sync")
    assert r.code == 0, r.err
    assert ws.garmin.paths("/activitylist-service") and ws.strava.paths("/api/v3/")
    assert ws.cli("sync").out.count("(every 5 min: an activity in the last 7 days)") == 2


def test_payload_digests_are_kept_only_for_recent_activities(ws: Workspace) -> None:
    """A long window keeps every digest; the next daily run prunes those older than 35 days."""
    for i, start in enumerate(payloads.spaced_starts(20, NOW, timedelta(days=4))):  # 80 days back
        ws.garmin.add(payloads.garmin_activity(300 + i, start))
    ws.login_garmin()
    assert ws.cli("sync", "--source", "garmin", "--days", "90").code == 0
    assert len(ws.state("garmin")["seen"]) == 20
    entry = ws.state("garmin")["seen"]["300"]
    assert entry[1].endswith("Z") and len(entry[0]) == 24  # [digest, start]
    assert ws.cli("sync", "--source", "garmin", "--force").code == 0
    kept = ws.state("garmin")["seen"]
    assert len(kept) == 9  # starts 2, 6, ..., 34 days ago
    assert all(
        datetime.fromisoformat(start.replace("Z", "+00:00")) > NOW - timedelta(days=36) for _, start in kept.values()
    )
    # A run after the hour still takes the nothing-new path for its window.
    cache = ws.cache_stat()
    assert ws.cli("sync", "--source", "garmin", "--force").code == 0
    assert ws.cache_stat() == cache
