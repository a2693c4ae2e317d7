"""Builders of realistic cache content for tests and benchmarks."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from healthcache.model.records import SCHEMA_VERSION, Activity, Cache, HRSplit
from healthcache.timeutil import utc_iso

T0 = datetime(2020, 1, 1, 6, 0, tzinfo=UTC)


def garmin_payload(gid: int, start: datetime, dist: float, dur: float, hr: float | None) -> dict[str, Any]:
    """Shaped like a Garmin Connect activity-list entry (trimmed to the common keys)."""
    local = start + timedelta(hours=1)
    return {
        "activityId": gid,
        "activityName": "Morning Run",
        "startTimeLocal": local.strftime("%Y-%m-%d %H:%M:%S"),
        "startTimeGMT": start.strftime("%Y-%m-%d %H:%M:%S"),
        "activityType": {"typeId": 1, "typeKey": "running", "parentTypeId": 17, "isHidden": False},
        "distance": dist,
        "duration": dur,
        "elapsedDuration": dur + 20.0,
        "movingDuration": dur - 15.0,
        "elevationGain": 42.0,
        "elevationLoss": 40.0,
        "averageSpeed": dist / dur,
        "calories": 512.0,
        "averageHR": hr,
        "maxHR": None if hr is None else hr + 25,
        "averageRunningCadenceInStepsPerMinute": 168.0,
        "deviceId": 3_987_654_321,
        "manufacturer": "GARMIN",
        "ownerId": 1234,
        "lapCount": 5,
        "hasPolyline": True,
    }


def activity(i: int, *, seed: int = 0, hr: bool = True, source: str = "garmin") -> Activity:
    r = random.Random(seed * 1_000_003 + i)
    start = T0 + timedelta(hours=7 * i, minutes=r.randint(0, 59))
    dist = round(r.uniform(3000, 21000), 1)
    dur = round(dist / r.uniform(2.6, 3.9), 1)
    gid = 9_000_000_000 + i
    avg = float(r.randint(125, 165)) if hr else None
    splits = (
        [
            HRSplit(km=k + 1, duration_s=round(dur / (dist / 1000), 1), avg_hr=avg, max_hr=(avg or 0) + 10)
            for k in range(min(7, int(dist // 1000)))
        ]
        if hr
        else None
    )
    stamp = utc_iso(start)
    return Activity(
        id=f"{source}:{gid}",
        source=source,
        source_ids={source: str(gid)},
        start_time=stamp,
        start_time_local=(start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S"),
        timezone="Europe/Amsterdam",
        sport="running",
        sport_raw={source: "running"},
        name="Morning Run",
        distance_m=dist,
        duration_s=dur + 20.0,
        moving_time_s=dur - 15.0,
        elevation_gain_m=42.0,
        calories=512.0,
        avg_hr=avg,
        max_hr=None if avg is None else avg + 25,
        avg_cadence=168.0,
        device="Forerunner 965",
        hr_splits=splits,
        raw={source: garmin_payload(gid, start, dist, dur, avg)},
        first_seen_at=stamp,
        updated_at=stamp,
    )


def cache(n: int, *, seed: int = 0, start: int = 0) -> Cache:
    acts = [activity(i, seed=seed) for i in range(start, start + n)]
    return Cache(schema_version=SCHEMA_VERSION, generator="tests", updated_at=utc_iso(T0), activities=acts)


def with_new(cache_: Cache, tag: str, n: int = 3, *, start: int = 5_000) -> Cache:
    """``cache_`` plus ``n`` new activities whose ids (``garmin:{tag}{i}``) no other call with another tag makes."""
    extra = [
        msgspec.structs.replace(a, id=f"garmin:{tag}{i}", source_ids={"garmin": f"{tag}{i}"})
        for i, a in enumerate(cache(n, start=start).activities)
    ]
    return msgspec.structs.replace(cache_, activities=[*cache_.activities, *extra])
