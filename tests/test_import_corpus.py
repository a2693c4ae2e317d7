"""Every file of the real-device corpus (../shared/corpus) through ``healthcache import``.

The corpus is imported once (module fixture); the tests then check that every
file has a line in the report with the expected outcome, compare the FIT
imports with what a second decoder (Garmin's own FIT SDK) reads from the same
files, and spot-check values read off the files by other means (the corpus
README, regular expressions over the XML, the CSV module).
"""

from __future__ import annotations

import csv
import re
import sys
import warnings
from datetime import UTC
from pathlib import Path
from typing import Any

import msgspec
import pytest

from healthcache.config import Paths
from healthcache.importers.run import ImportReport, run_import
from healthcache.model.records import Activity, SourceRecord
from healthcache.model.sports import normalise_sport
from healthcache.store import Store

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason="the shared device corpus is not present")

FAILED = {
    "ericwolter__apple-healthkit-csv__Exportieren.xml",  # malformed XML (attribute names with spaces)
    "sports-alliance__sports-lib__empty-sessions.fit",  # 0 bytes
}
SKIPPED = {
    # valid FIT files that are not activities
    "dtcooper__python-fitparse__MonitoringFile.fit": "not an activity",
    "dtcooper__python-fitparse__Settings.fit": "not an activity",
    "dtcooper__python-fitparse__Settings2.fit": "not an activity",
    "dtcooper__python-fitparse__WeightScaleMultiUser.fit": "not an activity",
    "dtcooper__python-fitparse__WeightScaleSingleUser.fit": "not an activity",
    "dtcooper__python-fitparse__WorkoutCustomTargetValues.fit": "not an activity",
    "dtcooper__python-fitparse__WorkoutIndividualSteps.fit": "not an activity",
    "dtcooper__python-fitparse__WorkoutRepeatGreaterThanStep.fit": "not an activity",
    "dtcooper__python-fitparse__WorkoutRepeatSteps.fit": "not an activity",
    "dtcooper__python-fitparse__DeveloperData.fit": "no session and no timed records",
    "dtcooper__python-fitparse__antfs-dump.63.fit": "relative to the device's power-on",
    "dtcooper__python-fitparse__compressed-speed-distance.fit": "relative to the device's power-on",
    # GPX files that hold no recording
    "tkrajina__gpxpy__route.gpx": "no track",
    "tkrajina__gpxpy__gpx_with_garmin_extension.gpx": "no track",
    "tkrajina__gpxpy__unicode_with_bom.gpx": "no track",
    "firefly-cpp__sport-activities-features__test.gpx": "no times",
    "tkrajina__gpxpy__Mojstrovka.gpx": "not plausible",
    "tkrajina__gpxpy__cerknicko-without-times.gpx": "only 5 of 296 points",
    "route_2019-06-11_3.00pm.gpx": "Apple Health workout route",
    # an Apple Health export of records only, and the corpus' own README
    "ericwolter__apple-healthkit-csv__export.xml": "no workouts",
    "README.md": "not an activity file",
}


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, ImportReport, list[Activity]]:
    home = tmp_path_factory.mktemp("corpus-home")
    store = Store(Paths(home))
    report = run_import(store, [CORPUS])
    return store, report, store.read().cache.activities


def _by_name(report: ImportReport) -> dict[str, Any]:
    return {Path(f.path).name: f for f in report.files if not f.member}


def _records_of(activities: list[Activity], source: str, source_id: str) -> Activity:
    key = f"{source}:{source_id}"
    hits = [a for a in activities if key in a.record_keys()]
    assert len(hits) == 1, key
    return hits[0]


def _record_for_file(store: Store, report: ImportReport, name: str) -> SourceRecord:
    """The record a file gave, rebuilt from the raw payload kept in the cache."""
    from healthcache.importers.manifest import Manifests
    from healthcache.normalise import from_raw

    f = _by_name(report)[name]
    assert f.status == "imported", (name, f.reason)
    entry = Manifests(store.paths).lookup(f.path)
    assert entry is not None and len(entry.keys) == 1
    source, source_id = entry.keys[0].split(":", 1)
    act = _records_of(store.read().cache.activities, source, source_id)
    return from_raw(source, act.raw[source])


def test_every_corpus_file_is_reported_with_the_expected_outcome(imported: Any) -> None:
    _, report, _ = imported
    lines = _by_name(report)
    on_disk = {p.name for p in CORPUS.rglob("*") if p.is_file()}
    assert len(on_disk) == 95  # 94 corpus files and the README
    assert set(lines) == on_disk
    for name, line in lines.items():
        assert "unexpected error" not in (line.reason or ""), (name, line.reason)
        if name in FAILED:
            assert line.status == "failed", (name, line.status, line.reason)
        elif name in SKIPPED:
            assert line.status == "skipped", (name, line.status, line.reason)
            assert SKIPPED[name] in (line.reason or ""), (name, line.reason)
        else:
            assert line.status == "imported", (name, line.status, line.reason)
            assert line.records >= 1
    assert {Path(f.path).name for f in report.failures} == FAILED
    assert "malformed" in lines["ericwolter__apple-healthkit-csv__Exportieren.xml"].reason


def test_fit_imports_agree_with_garmins_own_fit_sdk(imported: Any) -> None:
    """Start, sport, distance and heart rate as the Garmin FIT SDK decodes each file's sessions."""
    from garmin_fit_sdk import Decoder, Stream

    store, report, _ = imported
    checked = 0
    for path in sorted((CORPUS / "fit").iterdir()):
        line = _by_name(report)[path.name]
        if line.status != "imported":
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            messages, _errors = Decoder(Stream.from_file(str(path))).read()
        sessions = [s for s in messages.get("session_mesgs", []) if s.get("start_time") is not None]
        if not sessions:
            continue  # summarised from records: checked by the spot checks below
        rec = _record_for_file(store, report, path.name)
        unique = {(s["start_time"], s.get("total_distance")) for s in sessions}
        first = min(s["start_time"] for s in sessions)
        assert rec.start_time == first.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), path.name
        dists = {d for _, d in unique if d}
        if dists:
            assert rec.distance_m == pytest.approx(sum(d for _, d in unique if d), abs=0.01), path.name
        if len(unique) == 1:
            s = sessions[0]
            raw_sport = (
                s["sport"]
                if not s.get("sub_sport") or s["sub_sport"] == "generic"
                else f"{s['sport']}/{s['sub_sport']}"
            )
            assert rec.sport == normalise_sport("fit", str(raw_sport)), path.name
            if s.get("avg_heart_rate"):
                assert rec.avg_hr == pytest.approx(s["avg_heart_rate"]), path.name
                assert rec.max_hr == pytest.approx(s["max_heart_rate"]), path.name
        else:
            assert rec.sport == "multisport", path.name
        checked += 1
    assert checked >= 35


def test_fit_spot_checks(imported: Any) -> None:
    store, report, _ = imported

    def rec(name: str) -> SourceRecord:
        return _record_for_file(store, report, name)

    ride = rec("dtcooper__python-fitparse__sample-activity.fit")  # README: Edge 500 ride, 89 km, heart rate
    assert (ride.start_time, ride.sport, ride.distance_m) == ("2011-06-26T21:18:39Z", "cycling", 88797.21)
    assert (ride.avg_hr, ride.max_hr) == (166, 191)
    assert ride.hr_splits is not None and len(ride.hr_splits) == 89

    run = rec("dtcooper__python-fitparse__2013-02-06-12-11-14.fit")  # Forerunner 110 run with heart rate
    assert (run.start_time, run.sport, run.distance_m, run.avg_hr, run.max_hr) == (
        "2013-02-06T12:11:14Z",
        "running",
        4835.38,
        147,
        171,
    )
    assert run.hr_splits is not None and [s.km for s in run.hr_splits] == [1, 2, 3, 4, 5]
    assert sum(s.duration_s for s in run.hr_splits) == pytest.approx(run.duration_s, abs=30)

    tri = rec("dtcooper__python-fitparse__sample_mulitple_header.fit")  # 920XT triathlon: 4 chained files, 5 sessions
    assert tri.sport == "multisport" and len(tri.raw["sessions"]) == 5
    assert tri.distance_m == pytest.approx(1644.71 + 141.7 + 40909.42 + 31.93 + 9805.92, abs=0.02)

    fenix = rec("dtcooper__python-fitparse__activity-large-fenxi2-multisport.fit")  # 7 sessions incl. transitions
    assert fenix.sport == "multisport" and len(fenix.raw["sessions"]) == 7

    cut = rec("dtcooper__python-fitparse__nick.fit")  # Sigma recording cut off mid-file: records only
    assert cut.raw.get("from_records") and cut.sport == "cycling"
    assert cut.start_time == "2020-09-12T12:23:38Z" and cut.distance_m == pytest.approx(113550.87)

    zwift = rec("sports-alliance__sports-lib__empty-activities.fit")  # header declares 0 data bytes
    assert zwift.start_time == "2016-01-16T14:33:51Z" and zwift.avg_hr is not None

    swim = rec("dtcooper__python-fitparse__event_timestamp.fit")  # 5 chained files, one pool swim
    assert (swim.sport, swim.distance_m, swim.avg_hr) == ("pool_swimming", 2606.04, 142)


def test_gpx_and_tcx_spot_checks(imported: Any) -> None:
    store, report, _ = imported
    gpx = CORPUS / "gpx" / "sports-alliance__sports-lib__garmin.gpx"  # Garmin Connect GPX run with heart rate
    rec = _record_for_file(store, report, gpx.name)
    text = gpx.read_text()
    first_pt = re.search(r"<trkpt[^>]*>.*?<time>([^<]+)</time>", text, re.S)
    assert first_pt and rec.start_time == first_pt.group(1).replace(".000Z", "Z")
    hrs = [int(x) for x in re.findall(r"<ns3:hr>(\d+)</ns3:hr>", text)]
    assert rec.sport == "running"
    assert rec.avg_hr == pytest.approx(round(sum(hrs) / len(hrs), 1))
    assert rec.max_hr == max(hrs)

    strava_swim = _record_for_file(store, report, "sports-alliance__sports-lib__4623204522-1.gpx")  # track type 16
    assert strava_swim.sport == "swimming" and strava_swim.start_time == "2018-10-13T17:05:01Z"

    tcx = CORPUS / "tcx" / "vkurup__python-tcxparser__test.tcx"  # Forerunner 410 run, 3 laps, heart rate
    rec = _record_for_file(store, report, tcx.name)
    body = tcx.read_text()
    laps = re.findall(
        r"<Lap StartTime=\"([^\"]+)\">\s*<TotalTimeSeconds>([^<]+)</TotalTimeSeconds>\s*<DistanceMeters>([^<]+)", body
    )
    assert len(laps) == 3
    assert rec.start_time == "2012-12-26T21:29:53Z" and rec.sport == "running"
    assert rec.distance_m == pytest.approx(sum(float(d) for _, _, d in laps), abs=0.01)
    assert rec.moving_time_s == pytest.approx(sum(float(t) for _, t, _ in laps), abs=0.01)
    assert rec.avg_hr is not None and rec.max_hr == max(
        int(x) for x in re.findall(r"<MaximumHeartRateBpm>\s*<Value>(\d+)", body)
    )


def test_same_workout_from_two_files_is_one_activity(imported: Any) -> None:
    _, _, activities = imported
    for number, other in (("2067489619", "gpx"), ("6688025408", "tcx")):
        groups = [
            a
            for a in activities
            if "fit" in a.source_ids
            and other in a.source_ids
            and a.raw["fit"]["file"].startswith(f"sports-alliance__sports-lib__{number}")
        ]
        assert len(groups) == 1, number


def test_account_exports(imported: Any) -> None:
    _, report, activities = imported
    lines = _by_name(report)
    garmin_rows = msgspec.json.decode(
        (CORPUS / "garmin_export" / "blue-az__HRM-Dash__summarizedActivities.json").read_bytes()
    )
    assert (
        lines["blue-az__HRM-Dash__summarizedActivities.json"].records
        == len(garmin_rows[0]["summarizedActivitiesExport"])
        == 194
    )
    ride = _records_of(activities, "garmin", "17212401273")  # Navajo County Cycling
    assert ride.start_time == "2024-10-05T15:29:36Z" and ride.sport == "cycling"
    assert ride.distance_m == pytest.approx(62120.69, abs=0.01)  # 6212069.14 cm
    assert ride.duration_s == pytest.approx(21626.04, abs=0.01)  # 21626041 ms
    assert ride.calories == pytest.approx(14803.34 / 4.184, abs=0.1)  # kilojoules in the export
    assert (ride.avg_hr, ride.max_hr) == (156, 183)
    assert (
        ride.raw["garmin"]["activityId"] == 17212401273 and ride.raw["garmin"]["startTimeGMT"] == "2024-10-05 15:29:36"
    )

    for name in ("JoBoSo__Strava-Activity-Map__activities.csv", "TheNewThinkTank__strava-insights__activities.csv"):
        with open(CORPUS / "strava_export" / name, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))[1:]
        assert lines[name].records == len(rows)
    rec = _records_of(activities, "strava", "4689591795")  # "Afternoon Ride", Jan 27, 2021, 1:57:47 PM (UTC)
    assert rec.start_time == "2021-01-27T13:57:47Z" and rec.sport == "cycling"
    assert rec.raw["strava"]["distance"] == pytest.approx(5612.4, abs=0.01)  # the metres column, not the 5.61 km one
    hr = _records_of(activities, "strava", "6995887727")  # HR in the first "Max Heart Rate" column only
    assert (hr.raw["strava"]["max_heartrate"], round(hr.raw["strava"]["average_heartrate"], 1)) == (169.0, 150.1)


def test_apple_health_export_folder_and_file(imported: Any) -> None:
    _, report, activities = imported
    apple = [a for a in activities if "apple_health" in a.source_ids]
    assert len(apple) == 1  # the trimmed export.xml and the export folder hold the same run
    run = apple[0]
    assert run.start_time == "2016-11-14T14:25:41Z" and run.sport == "running"
    assert run.timezone == "America/Los_Angeles" and run.start_time_local == "2016-11-14T06:25:41"
    assert run.distance_m == pytest.approx(0.4971749504535062 * 1609.344, abs=0.1)  # miles in the export
    assert run.duration_s == 311.0 and run.calories == pytest.approx(48.7, abs=0.05)
    lines = _by_name(report)
    assert lines["export.xml"].status == lines["dogsheep__healthkit-to-sqlite__export.xml"].status == "imported"


def test_second_import_of_the_corpus_opens_no_file_and_writes_nothing(imported: Any) -> None:
    store, _, _ = imported
    cache = store.paths.cache
    before = (cache.stat().st_ino, cache.stat().st_mtime_ns)
    states = {p.name: p.stat().st_mtime_ns for p in store.paths.sync_state.iterdir()}
    opened: list[str] = []

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event == "open" and args and isinstance(args[0], (str, bytes, Path)):
            opened.append(str(args[0]))

    sys.addaudithook(hook)  # audit hooks cannot be removed; this one only appends to a list
    report = run_import(store, [CORPUS])
    seen = {p for p in opened if str(CORPUS) in p}
    # Only the files that failed are read again (a failure is never remembered as done); they fail again.
    failed = {f.path for f in report.failures if not f.member}
    assert seen == failed and all(str(CORPUS / "README.md") != p for p in seen)
    assert report.counts()["opened"] == len(failed) and report.counts()["unopened"] == 95 - len(failed)
    assert report.merge is None and report.save is None
    assert (cache.stat().st_ino, cache.stat().st_mtime_ns) == before
    assert {p.name: p.stat().st_mtime_ns for p in store.paths.sync_state.iterdir()} == states
    # The hook does see opens: reading a corpus file now is recorded.
    (CORPUS / "README.md").read_bytes()
    assert any(p.endswith("README.md") for p in opened)
