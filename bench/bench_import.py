"""Apple Health import benchmark: healthcache's streaming parse beside bare lxml iterparse.

Generates export.xml files shaped like Apple's (a DTD prolog, Records grouped by
type with and without MetadataEntry children, heart rate every few seconds
during workouts, Workouts with MetadataEntry, WorkoutEvent, WorkoutStatistics
and WorkoutRoute children, ActivitySummary) into a temporary folder, then
measures, each in a fresh subprocess:

* bare lxml iterparse of the file: the usual streaming recipe (every element,
  cleared, earlier siblings deleted, entities and network off), and the
  floor (the same, but lxml yields only Record elements);
* healthcache's Apple Health parse (``apple_health.read_export``): MB/s,
  records/s, workouts found, and the ratio to the bare parse;
* peak RSS (``ru_maxrss``) of each: the files of the first rows hold the same
  workouts (``--workouts``) over more days, so only the size changes; the last
  row has a run every day, the worst case for the parse (its memory grows by
  about 30 KB per workout: the records and their samples, not the file);
* the skip of an unchanged export by ``healthcache import`` (stat + manifest),
  after a first import into a scratch workspace.

Usage: python bench/bench_import.py [--sizes 100,300] [--workouts 75] [--repeat 3] [--keep DIR]
Everything generated is deleted at the end unless --keep is given.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

MB = 1024 * 1024

PROLOG = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE HealthData [
<!-- HealthKit Export Version: 13 -->
<!ELEMENT HealthData (ExportDate,Me,(Record|Correlation|Workout|ActivitySummary|ClinicalRecord|Audiogram|VisionPrescription)*)>
<!ATTLIST HealthData
  locale CDATA #REQUIRED
>
<!ELEMENT ExportDate EMPTY>
<!ATTLIST ExportDate
  value CDATA #REQUIRED
>
<!ELEMENT Me EMPTY>
<!ATTLIST Me
  HKCharacteristicTypeIdentifierDateOfBirth         CDATA #REQUIRED
  HKCharacteristicTypeIdentifierBiologicalSex       CDATA #REQUIRED
  HKCharacteristicTypeIdentifierBloodType           CDATA #REQUIRED
  HKCharacteristicTypeIdentifierFitzpatrickSkinType CDATA #REQUIRED
  HKCharacteristicTypeIdentifierCardioFitnessMedicationsUse CDATA #REQUIRED
>
<!ELEMENT Record ((MetadataEntry|HeartRateVariabilityMetadataList)*)>
<!ATTLIST Record
  type          CDATA #REQUIRED
  unit          CDATA #IMPLIED
  value         CDATA #IMPLIED
  sourceName    CDATA #REQUIRED
  sourceVersion CDATA #IMPLIED
  device        CDATA #IMPLIED
  creationDate  CDATA #IMPLIED
  startDate     CDATA #REQUIRED
  endDate       CDATA #REQUIRED
>
<!ELEMENT Workout ((MetadataEntry|WorkoutEvent|WorkoutRoute|WorkoutStatistics)*)>
<!ATTLIST Workout
  workoutActivityType   CDATA #REQUIRED
  duration              CDATA #IMPLIED
  durationUnit          CDATA #IMPLIED
  sourceName            CDATA #REQUIRED
  sourceVersion         CDATA #IMPLIED
  device                CDATA #IMPLIED
  creationDate          CDATA #IMPLIED
  startDate             CDATA #REQUIRED
  endDate               CDATA #REQUIRED
>
<!ELEMENT MetadataEntry EMPTY>
<!ATTLIST MetadataEntry
  key   CDATA #REQUIRED
  value CDATA #REQUIRED
>
]>
<HealthData locale="en_GB">
 <ExportDate value="2024-06-01 09:00:00 +0200"/>
 <Me HKCharacteristicTypeIdentifierDateOfBirth="1985-04-02" HKCharacteristicTypeIdentifierBiologicalSex="HKBiologicalSexFemale" HKCharacteristicTypeIdentifierBloodType="HKBloodTypeNotSet" HKCharacteristicTypeIdentifierFitzpatrickSkinType="HKFitzpatrickSkinTypeNotSet" HKCharacteristicTypeIdentifierCardioFitnessMedicationsUse="None"/>
"""
WATCH = (
    'sourceName="Anna’s Apple Watch" sourceVersion="10.4" device="&lt;&lt;HKDevice: 0x30236c8c0&gt;, '
    "name:Apple Watch, manufacturer:Apple Inc., model:Watch, hardware:Watch6,1, software:10.4, "
    'creation date:2024-03-12 19:41:07 +0000&gt;"'
)
PHONE = (
    'sourceName="Anna’s iPhone" sourceVersion="17.4.1" device="&lt;&lt;HKDevice: 0x30236e170&gt;, '
    'name:iPhone, manufacturer:Apple Inc., model:iPhone, hardware:iPhone15,2, software:17.4.1&gt;"'
)
DAY0 = datetime(2022, 1, 3)
WORKOUT_MIN = 45


def _tz(day: datetime) -> timezone:
    return timezone(timedelta(hours=2 if 3 <= day.month <= 10 else 1))


def _fmt(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%d %H:%M:%S %z")


def _workout_start(day: datetime) -> datetime:
    return day.replace(hour=7, minute=0, second=0, tzinfo=_tz(day)) + timedelta(minutes=(day.toordinal() * 7) % 50)


def _rec(kind: str, src: str, unit: str, value: str, start: datetime, end: datetime, meta: str = "") -> str:
    head = (
        f' <Record type="{kind}" {src} unit="{unit}" creationDate="{_fmt(end + timedelta(seconds=30))}" '
        f'startDate="{_fmt(start)}" endDate="{_fmt(end)}" value="{value}"'
    )
    return f"{head}>\n{meta} </Record>\n" if meta else f"{head}/>\n"


def _hr_records(day: datetime, rng: random.Random, active: bool) -> list[str]:
    out = []
    tz = _tz(day)
    ws = _workout_start(day)
    t = day.replace(tzinfo=tz)
    end_of_day = t + timedelta(days=1)
    while t < end_of_day:
        if active and ws <= t < ws + timedelta(minutes=WORKOUT_MIN):
            minute = (t - ws).total_seconds() / 60
            bpm = int(120 + minute * 1.1 + rng.randint(-3, 3))
            step = 5
            ctx = "2"
        else:
            bpm = rng.randint(55, 85)
            step = 420 + rng.randint(-60, 60)
            ctx = "1"
        meta = f'  <MetadataEntry key="HKMetadataKeyHeartRateMotionContext" value="{ctx}"/>\n'
        out.append(_rec("HKQuantityTypeIdentifierHeartRate", WATCH, "count/min", str(bpm), t, t, meta))
        t += timedelta(seconds=step)
    return out


def _distance_records(day: datetime, rng: random.Random, active: bool) -> list[str]:
    out = []
    tz = _tz(day)
    ws = _workout_start(day)
    for i in range(100):  # the phone counts walking all day
        s = day.replace(hour=8, tzinfo=tz) + timedelta(minutes=8 * i)
        out.append(
            _rec(
                "HKQuantityTypeIdentifierDistanceWalkingRunning",
                PHONE,
                "km",
                f"{rng.uniform(0.01, 0.2):.6f}",
                s,
                s + timedelta(minutes=3),
            )
        )
    t = ws
    while active and t < ws + timedelta(minutes=WORKOUT_MIN):  # the watch during the run: 3 m/s
        out.append(
            _rec(
                "HKQuantityTypeIdentifierDistanceWalkingRunning", WATCH, "km", "0.030000", t, t + timedelta(seconds=10)
            )
        )
        t += timedelta(seconds=10)
    return out


def _simple(kind: str, unit: str, per_day: int, lo: float, hi: float, workout_every_s: int = 0) -> object:
    """A type sampled evenly over the day, and (active energy) every few seconds during the workout."""

    def gen(day: datetime, rng: random.Random, active: bool) -> list[str]:
        tz = _tz(day)
        out = []
        ws = _workout_start(day)
        times = [day.replace(tzinfo=tz) + timedelta(seconds=i * 86400 // per_day) for i in range(per_day)]
        if workout_every_s and active:
            times += [ws + timedelta(seconds=k) for k in range(0, WORKOUT_MIN * 60, workout_every_s)]
            times.sort()
        for i, s in enumerate(times):
            src = WATCH if i % 2 else PHONE
            out.append(_rec(kind, src, unit, f"{rng.uniform(lo, hi):.3f}", s, s + timedelta(seconds=60)))
        return out

    return gen


def _workout(day: datetime) -> str:
    ws = _workout_start(day)
    we = ws + timedelta(minutes=WORKOUT_MIN)
    km = WORKOUT_MIN * 60 * 3 / 1000
    return (
        f' <Workout workoutActivityType="HKWorkoutActivityTypeRunning" duration="{WORKOUT_MIN}" durationUnit="min" '
        f'{WATCH} creationDate="{_fmt(we + timedelta(seconds=40))}" startDate="{_fmt(ws)}" endDate="{_fmt(we)}">\n'
        '  <MetadataEntry key="HKIndoorWorkout" value="0"/>\n'
        '  <MetadataEntry key="HKTimeZone" value="Europe/Berlin"/>\n'
        '  <MetadataEntry key="HKElevationAscended" value="4210 cm"/>\n'
        '  <MetadataEntry key="HKWeatherTemperature" value="61.2 degF"/>\n'
        f'  <WorkoutEvent type="HKWorkoutEventTypeSegment" date="{_fmt(ws)}" duration="22.5" durationUnit="min"/>\n'
        f'  <WorkoutEvent type="HKWorkoutEventTypeSegment" date="{_fmt(ws + timedelta(minutes=22.5))}" duration="22.5" durationUnit="min"/>\n'
        f'  <WorkoutStatistics type="HKQuantityTypeIdentifierActiveEnergyBurned" startDate="{_fmt(ws)}" endDate="{_fmt(we)}" sum="512.4" unit="kcal"/>\n'
        f'  <WorkoutStatistics type="HKQuantityTypeIdentifierDistanceWalkingRunning" startDate="{_fmt(ws)}" endDate="{_fmt(we)}" sum="{km:.3f}" unit="km"/>\n'
        f'  <WorkoutStatistics type="HKQuantityTypeIdentifierHeartRate" startDate="{_fmt(ws)}" endDate="{_fmt(we)}" average="144.7" minimum="112" maximum="171" unit="count/min"/>\n'
        f'  <WorkoutRoute {WATCH} creationDate="{_fmt(we)}" startDate="{_fmt(ws)}" endDate="{_fmt(we)}">\n'
        f'   <FileReference path="/workout-routes/route_{ws:%Y-%m-%d_%H.%M}.gpx"/>\n'
        "  </WorkoutRoute>\n"
        " </Workout>\n"
    )


# Per simulated day, as an Apple Watch wearer with a daily 45-minute run writes them: heart rate
# every ~7 min and every 5 s while running (with motion-context metadata), active energy every
# minute and every 5 s while running, basal energy, steps, distance from phone and watch,
# exercise and stand minutes.
GENERATORS = (
    (
        "HKQuantityTypeIdentifierActiveEnergyBurned",
        _simple("HKQuantityTypeIdentifierActiveEnergyBurned", "Cal", 600, 0.05, 3, 5),
    ),
    (
        "HKQuantityTypeIdentifierAppleExerciseTime",
        _simple("HKQuantityTypeIdentifierAppleExerciseTime", "min", 60, 0, 1),
    ),
    ("HKQuantityTypeIdentifierAppleStandTime", _simple("HKQuantityTypeIdentifierAppleStandTime", "min", 50, 0, 5)),
    (
        "HKQuantityTypeIdentifierBasalEnergyBurned",
        _simple("HKQuantityTypeIdentifierBasalEnergyBurned", "Cal", 500, 0.5, 1.5),
    ),
    ("HKQuantityTypeIdentifierDistanceWalkingRunning", _distance_records),
    ("HKQuantityTypeIdentifierHeartRate", _hr_records),
    ("HKQuantityTypeIdentifierStepCount", _simple("HKQuantityTypeIdentifierStepCount", "count", 200, 5, 400)),
)


def _day_bytes(active: bool) -> int:
    rng = random.Random(0)
    return sum(len("".join(gen(DAY0, rng, active))) for _, gen in GENERATORS)  # type: ignore[operator]


def write_export(path: Path, target_bytes: int, workouts: int | None = None, seed: int = 7) -> dict[str, int]:
    """An export.xml of about ``target_bytes``, written in a stream; returns what it holds.

    ``workouts`` spreads that many runs evenly over the days (None: one every day).
    """
    busy, quiet = _day_bytes(True), _day_bytes(False)
    if workouts is None:
        days = max(1, target_bytes // busy)
        active_days = set(range(days))
    else:
        days = max(workouts, (target_bytes - workouts * (busy - quiet)) // quiet)
        active_days = {d * days // workouts for d in range(workouts)}
    records = 0
    with open(path, "w", encoding="utf-8") as f:  # a scratch benchmark file, not healthcache state
        f.write(PROLOG)
        for kind, gen in GENERATORS:  # Apple groups records by type, each in date order
            for d in range(days):
                day = DAY0 + timedelta(days=d)
                rng = random.Random(f"{seed}-{kind}-{d}")
                lines = gen(day, rng, d in active_days)  # type: ignore[operator]
                records += len(lines)
                f.write("".join(lines))
        for d in sorted(active_days):
            f.write(_workout(DAY0 + timedelta(days=d)))
        for d in range(days):
            day = DAY0 + timedelta(days=d)
            f.write(
                f' <ActivitySummary dateComponents="{day:%Y-%m-%d}" activeEnergyBurned="612.3" activeEnergyBurnedGoal="600" '
                'activeEnergyBurnedUnit="Cal" appleMoveTime="0" appleMoveTimeGoal="0" appleExerciseTime="52" '
                'appleExerciseTimeGoal="30" appleStandHours="12" appleStandHoursGoal="12"/>\n'
            )
        f.write("</HealthData>\n")
    return {"days": days, "workouts": len(active_days), "records": records, "bytes": path.stat().st_size}


# ---------------------------------------------------------------- measured children

CHILD_BARE = """
import resource, sys, time
from lxml import etree
path = sys.argv[1]
t = time.perf_counter(); n = 0
with open(path, "rb") as f:
    for _, el in etree.iterparse(f, events=("end",), resolve_entities=False, no_network=True, huge_tree=True):
        if el.tag == "Record":
            n += 1
        el.clear()
        while el.getprevious() is not None:
            del el.getparent()[0]
dt = time.perf_counter() - t
print(dt, time.process_time(), n, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""

CHILD_FLOOR = """
import resource, sys, time
from lxml import etree
path = sys.argv[1]
t = time.perf_counter(); n = 0
with open(path, "rb") as f:
    for _, el in etree.iterparse(f, events=("end",), tag=("Record",), resolve_entities=False,
                                 no_network=True, load_dtd=False, huge_tree=True):
        n += 1
        el.clear()
        parent = el.getparent()
        while el.getprevious() is not None:
            del parent[0]
dt = time.perf_counter() - t
print(dt, time.process_time(), n, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""

CHILD_HEALTHCACHE = """
import os, resource, sys, time
from healthcache.importers import apple_health
path = sys.argv[1]
t = time.perf_counter()
ex = apple_health.read_export(lambda: open(path, "rb"), os.path.getsize(path), "export.xml")
dt = time.perf_counter() - t
splits = sum(1 for r in ex.records if r.hr_splits)
print(dt, time.process_time(), len(ex.records), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, splits)
"""

CHILD_BASELINE_RSS = """
import resource
from healthcache.importers import apple_health  # noqa: F401
from lxml import etree  # noqa: F401
print(0, 0, 0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""

CHILD_SKIP = """
import sys, time
from pathlib import Path
from healthcache.config import Paths
from healthcache.store import Store
from healthcache.importers.run import run_import
home, path = Path(sys.argv[1]), Path(sys.argv[2])
store = Store(Paths(home))
t = time.perf_counter()
first = run_import(store, [path])
t_first = time.perf_counter() - t
t = time.perf_counter()
second = run_import(store, [path])
t_second = time.perf_counter() - t
assert second.counts()["unchanged"] == 1 and second.counts()["opened"] == 0, second.counts()
print(t_first, t_second, first.counts()["records"])
"""


def _child(code: str, *args: str) -> list[float]:
    out = subprocess.run([sys.executable, "-c", code, *args], check=True, capture_output=True, text=True)
    return [float(x) for x in out.stdout.split()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="100,300", help="file sizes in MB (default 100,300)")
    ap.add_argument(
        "--workouts", type=int, default=75, help="workouts in each file, so only the size changes (default 75)"
    )
    ap.add_argument("--repeat", type=int, default=3, help="runs of each measurement; the fastest counts (default 3)")
    ap.add_argument("--keep", help="generate into this folder and keep the files")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="hc-bench-import-"))
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    try:
        base_rss = _child(CHILD_BASELINE_RSS)[3] / 1024
        # Same workouts, growing files; then the largest with a run every day (the worst case).
        plan = [(size, args.workouts) for size in sizes] + [(max(sizes), None)]
        for size, n_workouts in plan:
            path = work / f"export-{size}MB.xml"
            t = time.perf_counter()
            info = write_export(path, size * MB, n_workouts)
            gen_s = time.perf_counter() - t
            mb = info["bytes"] / MB
            best: dict[str, list[float]] = {}
            for _ in range(args.repeat):  # interleaved, so a busy moment hurts all three alike
                for key, code in (("bare", CHILD_BARE), ("floor", CHILD_FLOOR), ("hc", CHILD_HEALTHCACHE)):
                    r = _child(code, str(path))
                    if key not in best or r[0] < best[key][0]:
                        best[key] = r
            bare, floor, hc = best["bare"], best["floor"], best["hc"]
            assert int(hc[2]) == info["workouts"], (hc, info)
            rows.append(
                {
                    "file_MB": round(mb, 1),
                    "days": info["days"],
                    "records": info["records"],
                    "workouts": info["workouts"],
                    "generate_s": round(gen_s, 1),
                    "bare_s": round(bare[0], 2),
                    "floor_s": round(floor[0], 2),
                    "healthcache_s": round(hc[0], 2),
                    "ratio_vs_bare": round(hc[0] / bare[0], 2),
                    "ratio_vs_floor": round(hc[0] / floor[0], 2),
                    "cpu_ratio_vs_bare": round(hc[1] / bare[1], 2),
                    "healthcache_MB_s": round(mb / hc[0], 1),
                    "healthcache_records_s": round(info["records"] / hc[0]),
                    "bare_rss_MB": round(bare[3] / 1024, 1),
                    "healthcache_rss_MB": round(hc[3] / 1024, 1),
                    "workouts_with_splits": int(hc[4]),
                }
            )
            path.unlink()  # one big file on disk at a time
        biggest = work / f"export-{max(sizes)}MB.xml"
        write_export(biggest, max(sizes) * MB, args.workouts)
        home = work / "home"
        home.mkdir()
        first_s, skip_s, n_records = _child(CHILD_SKIP, str(home), str(biggest))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    cols = list(rows[0])
    print(f"python + lxml + healthcache imported, nothing parsed: {base_rss:.1f} MB RSS")
    print(" | ".join(cols))
    for r in rows:
        print(" | ".join(str(r[c]) for c in cols))
    print(
        f"import of the {max(sizes)} MB export into an empty workspace: {first_s:.2f} s ({int(n_records)} records); "
        f"second import of the unchanged export: {skip_s * 1000:.1f} ms (no file opened)"
    )
    print(json.dumps({"rows": rows, "first_import_s": first_s, "unchanged_skip_ms": skip_s * 1000}))
    if os.environ.get("BENCH_STRICT"):
        assert all(r["ratio_vs_bare"] <= 1.5 for r in rows)
        assert abs(rows[1]["healthcache_rss_MB"] - rows[0]["healthcache_rss_MB"]) < 5
        assert skip_s < 0.05


if __name__ == "__main__":
    main()
