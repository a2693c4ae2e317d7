"""Shared by the export tests and bench: real cache files, and a real PostgreSQL server.

Caches are built through the store (``tx.save``), so they are real cache files
with a real cache index.  The server is the one named by
``HEALTHCACHE_TEST_PG_URL``; when that is unset, ``.ci/start-postgres.sh`` starts
a throwaway cluster for the session.  When neither works the tests FAIL: a
mirror tested against no database is not tested.
"""

from __future__ import annotations

import os
import random
import secrets
import subprocess
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest

from healthcache import GENERATOR
from healthcache.config import Config, Paths
from healthcache.model.records import SCHEMA_VERSION, Activity, Cache, HRSplit, Tombstone
from healthcache.store import SaveResult, Store
from healthcache.timeutil import utc_iso

REPO = Path(__file__).resolve().parents[1]
START_SCRIPT = REPO / ".ci" / "start-postgres.sh"
EPOCH = datetime(2024, 1, 1, 6, 0, tzinfo=UTC)
SPORTS = ("running", "cycling", "swimming", "walking", "hiking", "strength")


def make_activity(i: int, *, splits: int = 5, rng: random.Random | None = None, **changes: Any) -> Activity:
    """A realistic activity: Garmin id, a Strava twin on every third, a raw payload, per-km HR."""
    r = rng or random.Random(i)
    start = EPOCH + timedelta(hours=7 * i, minutes=r.randint(0, 50))
    sport = SPORTS[i % len(SPORTS)]
    gid = str(10_000_000_000 + i)
    source_ids = {"garmin": gid}
    aliases: list[str] = []
    raw: dict[str, Any] = {
        "garmin": {
            "activityId": int(gid),
            "activityName": f"Morning {sport} {i}",
            "activityType": {"typeKey": sport, "typeId": 1 + i % 6},
            "startTimeGMT": start.strftime("%Y-%m-%d %H:%M:%S"),
            "distance": round(r.uniform(2000, 42000), 1),
            "duration": round(r.uniform(900, 14000), 1),
            "averageHR": r.randint(110, 170),
            "maxHR": r.randint(170, 195),
            "deviceId": 3_900_000_000 + i % 3,
            "summaryDTO": {"trainingEffect": round(r.uniform(1, 5), 1), "vO2MaxValue": r.randint(40, 60)},
        }
    }
    if i % 3 == 0:
        sid = str(9_000_000_000 + i)
        source_ids["strava"] = sid
        aliases.append(f"strava:{sid}")
        raw["strava"] = {"id": int(sid), "name": f"Morning {sport}", "external_id": f"garmin_push_{gid}"}
    distance = raw["garmin"]["distance"]
    hr = [
        HRSplit(
            km=k + 1, duration_s=round(r.uniform(240, 420), 1), avg_hr=r.randint(120, 170), max_hr=r.randint(170, 190)
        )
        for k in range(splits)
    ]
    fields: dict[str, Any] = {
        "id": f"garmin:{gid}",
        "source": "garmin",
        "source_ids": source_ids,
        "aliases": aliases,
        "start_time": utc_iso(start),
        "start_time_local": (start + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S"),
        "timezone": "Europe/Paris",
        "sport": sport,
        "sport_raw": {"garmin": sport},
        "name": f"Morning {sport} {i}",
        "distance_m": distance,
        "duration_s": raw["garmin"]["duration"],
        "moving_time_s": round(raw["garmin"]["duration"] * 0.95, 1),
        "elevation_gain_m": round(r.uniform(0, 800), 1),
        "calories": float(r.randint(100, 2000)),
        "avg_hr": float(raw["garmin"]["averageHR"]),
        "max_hr": float(raw["garmin"]["maxHR"]),
        "avg_cadence": float(r.randint(80, 180)),
        "avg_power": float(r.randint(150, 300)) if sport == "cycling" else None,
        "device": "Forerunner 965",
        "hr_splits": hr or None,
        "raw": raw,
        "first_seen_at": utc_iso(start + timedelta(hours=3)),
        "updated_at": utc_iso(start + timedelta(hours=3)),
    }
    fields.update(changes)
    return Activity(**fields)


def make_home(root: Path) -> Paths:
    paths = Paths(root)
    paths.tracking.mkdir(parents=True, exist_ok=True)
    return paths


def save_cache(
    paths: Paths, activities: Sequence[Activity], *, tombstones: Sequence[Tombstone] = (), force: str | None = None
) -> SaveResult:
    """Save through the guarded store, as every command does."""
    store = Store(paths, Config())
    with store.transaction(lock_timeout=0) as tx:
        new = Cache(
            schema_version=SCHEMA_VERSION,
            generator=GENERATOR,
            updated_at=utc_iso(datetime.now(UTC)),
            activities=list(activities),
            tombstones=list(tombstones) or list(tx.cache.tombstones),
            links=list(tx.cache.links),
        )
        return tx.save(new, force_reason=force)


def cache_activities(paths: Paths) -> list[Activity]:
    return list(Store(paths, Config()).read().cache.activities)


def replace(act: Activity, **changes: Any) -> Activity:
    return msgspec.structs.replace(act, **changes)


# ---- PostgreSQL -------------------------------------------------------------


def start_cluster() -> tuple[str, str]:
    """Start a throwaway cluster with the CI script; (url, its folder)."""
    proc = subprocess.run(["bash", str(START_SCRIPT)], capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        pytest.fail(f"PostgreSQL could not be started by {START_SCRIPT}:\n{proc.stderr}", pytrace=False)
    env: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        if line.startswith("export ") and "=" in line:
            key, _, value = line.removeprefix("export ").partition("=")
            env[key] = subprocess.run(["bash", "-c", f"printf %s {value}"], capture_output=True, text=True).stdout
    return env["HEALTHCACHE_TEST_PG_URL"], env["HEALTHCACHE_TEST_PG_DIR"]


def stop_cluster(folder: str) -> None:
    subprocess.run(["bash", str(START_SCRIPT), "--stop", folder], capture_output=True, timeout=120)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """The URL of a server where we may create databases (fails, never skips, without one)."""
    url = os.environ.get("HEALTHCACHE_TEST_PG_URL")
    folder = None
    if not url:
        url, folder = start_cluster()
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=10) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        pytest.fail(f"the test PostgreSQL server is unreachable: {exc}", pytrace=False)
    try:
        yield url
    finally:
        if folder:
            stop_cluster(folder)


def url_for_db(url: str, dbname: str) -> str:
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = conninfo_to_dict(url)
    params["dbname"] = dbname
    return make_conninfo(**params)


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A fresh, empty database for one test, dropped afterwards."""
    import psycopg

    name = "hc_test_" + secrets.token_hex(6)
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url_for_db(pg_server, name)
    finally:
        with psycopg.connect(pg_server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
