"""Merge cost: 100 and 10,000 incoming records into caches of 1k, 10k and 100k activities.

Run from the repository root:

    .venv/bin/python bench/bench_merge.py            # all sizes (about a minute)
    .venv/bin/python bench/bench_merge.py --sizes 1000,10000

Caches hold realistic activities (a Garmin payload and 7 HR splits each; a third
already joined with their Strava copy).  Each batch mixes 40 % new Garmin
activities, 30 % Strava copies of Garmin-only activities (seconds apart, distances
within 1 %, half with an external_id) and 30 % Garmin updates (a renamed
activity).  Only merging is timed: "merge s" is the public ``merge()`` call; its
three parts are timed apart: "index s" is the one O(n) pass indexing every key of
the cache, "records s" places the m records (dict lookups and a bisect each:
O(log n)), "build s" assembles the new sorted cache (in-place replacements and
slice copies); "µs/record" is records s per distinct record (a record given
twice in a batch is placed once).  Each figure is the best of 5 runs (3 for 10k).
"""

from __future__ import annotations

import argparse
import gc
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from healthcache.codec import gc_paused
from healthcache.config import DEFAULT_PREFERENCE
from healthcache.merge import Merger, merge
from healthcache.model.records import SCHEMA_VERSION, Activity, Cache, HRSplit, SourceRecord
from healthcache.timeutil import utc_iso

T0 = datetime(2015, 1, 1, 6, 0, tzinfo=UTC)
NOW = "2026-01-01T00:00:00Z"
STEP = timedelta(hours=7)  # one activity every 7 h; new ones go in between


def garmin_payload(gid: int, start: datetime, dist: float, dur: float, hr: float, name: str) -> dict[str, Any]:
    return {
        "activityId": gid,
        "activityName": name,
        "startTimeLocal": (start + timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S"),
        "startTimeGMT": start.strftime("%Y-%m-%d %H:%M:%S"),
        "activityType": {"typeId": 1, "typeKey": "running", "parentTypeId": 17, "isHidden": False},
        "distance": dist,
        "duration": dur,
        "elapsedDuration": dur + 20.0,
        "movingDuration": dur - 15.0,
        "elevationGain": 42.0,
        "calories": 512.0,
        "averageHR": hr,
        "maxHR": hr + 25,
        "averageRunningCadenceInStepsPerMinute": 168.0,
        "deviceId": 3_987_654_321,
        "manufacturer": "GARMIN",
        "lapCount": 5,
    }


def strava_payload(sid: int, start: datetime, dist: float, dur: float, hr: float, ext: str | None) -> dict[str, Any]:
    return {
        "id": sid,
        "name": "Morning Run",
        "distance": dist,
        "moving_time": int(dur - 20),
        "elapsed_time": int(dur),
        "sport_type": "Run",
        "start_date": utc_iso(start),
        "average_heartrate": hr,
        "max_heartrate": hr + 22,
        "external_id": ext,
        "kudos_count": 2,
    }


class Shape:
    """The i-th workout of a cache, reproducible."""

    def __init__(self, i: int) -> None:
        r = random.Random(i)
        self.i = i
        self.start = T0 + STEP * i + timedelta(minutes=r.randint(0, 59))
        self.dist = round(r.uniform(3000, 21000), 1)
        self.dur = round(self.dist / r.uniform(2.6, 3.9), 1)
        self.hr = float(r.randint(125, 165))
        self.gid = 9_000_000_000 + i
        self.sid = 12_000_000_000 + i


def garmin_record(s: Shape, *, name: str = "Morning Run", start: datetime | None = None) -> SourceRecord:
    start = start or s.start
    return SourceRecord(
        source="garmin",
        source_id=str(s.gid),
        start_time=utc_iso(start),
        sport="running",
        sport_raw="running",
        name=name,
        distance_m=s.dist,
        duration_s=s.dur + 20.0,
        moving_time_s=s.dur - 15.0,
        elevation_gain_m=42.0,
        calories=512.0,
        avg_hr=s.hr,
        max_hr=s.hr + 25,
        avg_cadence=168.0,
        device="Forerunner 965",
        raw=garmin_payload(s.gid, start, s.dist, s.dur, s.hr, name),
    )


def strava_record(s: Shape, *, with_external_id: bool) -> SourceRecord:
    r = random.Random(-s.i)
    start = s.start + timedelta(seconds=r.randint(2, 40))
    dist = round(s.dist * r.uniform(0.99, 1.01), 1)
    ext = f"garmin_push_{s.gid}" if with_external_id else None
    return SourceRecord(
        source="strava",
        source_id=str(s.sid),
        start_time=utc_iso(start),
        sport="running",
        sport_raw="Run",
        name="Morning Run",
        distance_m=dist,
        duration_s=s.dur,
        moving_time_s=s.dur - 20,
        avg_hr=s.hr,
        max_hr=s.hr + 22,
        external_id=ext,
        raw=strava_payload(s.sid, start, dist, s.dur, s.hr, ext),
    )


def activity(s: Shape) -> Activity:
    rec = garmin_record(s)
    splits = [HRSplit(km=k + 1, duration_s=300.0, avg_hr=s.hr, max_hr=s.hr + 10) for k in range(7)]
    source_ids = {"garmin": str(s.gid)}
    raw: dict[str, Any] = {"garmin": rec.raw}
    if s.i % 3 == 0:  # a third already joined with their Strava copy
        st = strava_record(s, with_external_id=True)
        source_ids["strava"] = st.source_id
        raw["strava"] = st.raw
    return Activity(
        id=rec.key,
        source="garmin",
        source_ids=source_ids,
        start_time=rec.start_time,
        sport="running",
        sport_raw={"garmin": "running"},
        name=rec.name,
        distance_m=rec.distance_m,
        duration_s=rec.duration_s,
        moving_time_s=rec.moving_time_s,
        elevation_gain_m=42.0,
        calories=512.0,
        avg_hr=rec.avg_hr,
        max_hr=rec.max_hr,
        avg_cadence=168.0,
        device="Forerunner 965",
        hr_splits=splits,
        raw=raw,
        first_seen_at=rec.start_time,
        updated_at=rec.start_time,
    )


def build_cache(n: int) -> Cache:
    acts = [activity(Shape(i)) for i in range(n)]
    return Cache(schema_version=SCHEMA_VERSION, generator="bench", updated_at=NOW, activities=acts)


def batch(n: int, m: int, seed: int) -> list[SourceRecord]:
    """m records: 40 % new, 30 % strava copies of garmin-only activities, 30 % updates."""
    r = random.Random(seed)
    out: list[SourceRecord] = []
    garmin_only = [i for i in range(n) if i % 3]
    for k in range(m):
        kind = k % 10
        if kind < 4:  # new: a workout 3.5 h after an existing one (no overlap)
            s = Shape(n + k)
            out.append(garmin_record(s, start=T0 + STEP * r.randrange(n) + timedelta(hours=3, minutes=30)))
        elif kind < 7:
            out.append(strava_record(Shape(r.choice(garmin_only)), with_external_id=bool(k % 2)))
        else:
            out.append(garmin_record(Shape(r.randrange(n)), name=f"Renamed {k}"))
    return out


def timed(cache: Cache, records: list[SourceRecord]) -> tuple[float, dict[str, int]]:
    t = time.perf_counter()
    _, report = merge(cache, records, now=NOW)
    return time.perf_counter() - t, report.summary()


def phases(cache: Cache, records: list[SourceRecord]) -> tuple[float, float, float]:
    """The three parts of a merge: index the cache, place each record, build the new cache."""
    records = list({r.key: r for r in records}.values())  # merge() skips a record superseded in its batch
    with gc_paused():
        t0 = time.perf_counter()
        m = Merger(cache, now=NOW, preference=DEFAULT_PREFERENCE)
        t1 = time.perf_counter()
        for rec in records:
            m.place(rec)
        t2 = time.perf_counter()
        m.result()
        t3 = time.perf_counter()
    return t1 - t0, t2 - t1, t3 - t2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--batches", default="100,10000")
    args = parser.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    batches = [int(x) for x in args.batches.split(",")]
    print(
        f"{'cache n':>8} {'records m':>9} {'merge s':>8} {'index s':>8} {'records s':>9} {'µs/record':>9} {'build s':>8}  outcomes"
    )
    for n in sizes:
        t = time.perf_counter()
        cache = build_cache(n)
        made = time.perf_counter() - t
        gc.collect()
        for m in batches:
            records = batch(n, m, seed=n + m)
            runs = 5 if m <= 1000 else 3
            total, summary = min((timed(cache, records) for _ in range(runs)), key=lambda x: x[0])
            samples = [phases(cache, records) for _ in range(runs)]
            index, place, build = (min(s[i] for s in samples) for i in range(3))
            counts = ", ".join(f"{v} {k}" for k, v in summary.items() if v)
            print(
                f"{n:>8} {m:>9} {total:>8.3f} {index:>8.3f} {place:>9.3f} {place / len({r.key for r in records}) * 1e6:>9.1f} {build:>8.3f}  {counts}"
            )
        print(f"{'':>8} (built the {n} cache in {made:.1f} s)")
        del cache
        gc.collect()


if __name__ == "__main__":
    main()
