"""Each importer on small hand-made inputs: formats' quirks, units, hostile XML, and pure helpers."""

from __future__ import annotations

import io
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parents[1] / "samples"))

import generate as samples

from healthcache.importers import apple_health, detect, garmin_export, gpx, polar, strava_export, tcx
from healthcache.importers.apple_health import dates, scan
from healthcache.importers.apple_health import normalise as ah_normalise
from healthcache.importers.apple_health.samples import Windows
from healthcache.importers.base import ImportFailed, Limits, NotAnActivity, validated
from healthcache.normalise import from_raw
from healthcache.splits import from_samples as hr_splits

# ---------------------------------------------------------------- detection


@pytest.mark.parametrize(
    ("head", "name", "kind"),
    [
        (b"\x0e\x10\x00\x00\x10\x00\x00\x00.FIT\x00\x00", "x.bin", "fit"),
        (b"\x1f\x8b\x08\x00", "a.fit.gz", "gzip"),
        (b"PK\x03\x04rest", "export.zip", "zip"),
        (b'\xef\xbb\xbf<?xml version="1.0"?>\n<gpx version="1.1">', "a", "gpx"),
        (b'<?xml version="1.0"?><!-- c --><TrainingCenterDatabase xmlns="x">', "a", "tcx"),
        (
            b'<?xml version="1.0"?>\n<!DOCTYPE HealthData [\n<!ELEMENT HealthData (Record)*>\n]>\n<HealthData locale="en">',
            "a",
            "apple_health",
        ),
        (b"<ClinicalDocument/>", "cda.xml", "xml:ClinicalDocument"),
        (b'[{"summarizedActivitiesExport": []}]', "a.json", "json"),
        (b"Activity ID,Activity Date,Activity Name\n1,x,y\n", "activities.csv", "strava_csv"),
        (b"Athlete ID,Email\n", "profile.csv", "other:csv"),
        (b"\xff\xd8\xff\xe0JFIF", "photo.jpg", "other:image"),
        (b"just some notes\n", "notes.txt", "other:text"),
        (b"\x00\x01\x02\x03\xff\xfe\x80\x81" * 20, "blob", "unknown"),
        (b"", "empty.fit", "empty"),
    ],
)
def test_sniff(head: bytes, name: str, kind: str) -> None:
    assert detect.sniff(head, name) == kind


def test_strava_header_with_untranslated_labels_is_recognised() -> None:
    line = b'Activity ID,Activity Date,<span class="translation_missing" title="x">Start Time</span>\n'
    assert detect.sniff(line, "activities.csv") == "strava_csv"
    assert detect.csv_header_cells(line.decode())[2] == "Start Time"


def test_polar_session_id_from_file_name() -> None:
    assert (
        detect.polar_session_id("training-session-2025-02-21-8069454250-37672a75-5c69-4638-b765-17e954ed785f.json")
        == "8069454250"
    )
    assert detect.polar_session_id("export/training-session-2019-05-18-3567564354.json") == "3567564354"
    assert detect.polar_session_id("activity-2019-05-18.json") is None


# ---------------------------------------------------------------- hostile and broken XML

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE {root} [
 <!ENTITY a "aaaaaaaaaa">
 <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
 <!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
]>
<{root}><x>&c;</x></{root}>
"""
EXTERNAL = b"""<?xml version="1.0"?>
<!DOCTYPE {root} [<!ENTITY % p SYSTEM "http://127.0.0.1:9/evil.dtd"> %p; <!ENTITY x SYSTEM "file:///etc/hostname">]>
<{root}><x>&x;</x></{root}>
"""


@pytest.mark.parametrize("template", [BILLION_LAUGHS, EXTERNAL])
@pytest.mark.parametrize("root", ["gpx", "TrainingCenterDatabase", "HealthData"])
def test_documents_declaring_entities_are_refused(template: bytes, root: str) -> None:
    data = template.replace(b"{root}", root.encode())
    with pytest.raises(ImportFailed, match="declares entities"):
        if root == "gpx":
            gpx.read_gpx(data, "a.gpx")
        elif root == "HealthData":
            apple_health.read_export(lambda: io.BytesIO(data), len(data), "export.xml")
        else:
            tcx.read_tcx(data, "a.tcx")


def test_an_endless_prolog_is_refused() -> None:
    data = b"<?xml version='1.0'?>" + b"<!-- padding -->" * 100_000 + b"<gpx/>"
    with pytest.raises(ImportFailed, match="no XML root element"):
        detect.sniff(data[: 2 * 1024 * 1024], "a.gpx", Limits(max_prolog_bytes=64 * 1024))


def test_truncated_apple_export_fails_cleanly() -> None:
    data = samples.apple_export_xml([samples.WORKOUTS[1]])
    cut = data[: len(data) - 700]  # inside the workout, before </HealthData>
    with pytest.raises(ImportFailed, match="malformed or truncated"):
        apple_health.read_export(lambda: io.BytesIO(cut), len(cut), "export.xml")


# ---------------------------------------------------------------- Apple Health


@settings(max_examples=200, deadline=None)
@given(
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2035, 12, 31)),
    st.sampled_from([-600, -420, -240, 0, 60, 120, 330, 345, 600, 780]),
    st.booleans(),
)
def test_epoch_matches_datetime(dt: datetime, offset_min: int, compact: bool) -> None:
    tz = timezone(timedelta(minutes=offset_min))
    aware = dt.replace(microsecond=0, tzinfo=tz)
    text = aware.strftime("%Y%m%d%H%M%S%z") if compact else aware.strftime("%Y-%m-%d %H:%M:%S %z")
    assert dates.epoch(text) == int(aware.timestamp())


def test_workout_without_statistics_gets_hr_and_splits_from_the_samples() -> None:
    w = samples.WORKOUTS[1]  # 10 km at 4:50/km, HR rising each km
    data = samples.apple_export_xml([w], statistics=False)
    ex = apple_health.read_export(lambda: io.BytesIO(data), len(data), "export.xml")
    (rec,) = ex.records
    assert rec.source == "apple_health" and rec.sport == "running"
    assert rec.start_time == w.start.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert rec.timezone == "Europe/Ljubljana" and rec.start_time_local == "2024-05-08T18:30:05"
    assert rec.avg_hr is not None and min(w.hr_per_km) <= rec.avg_hr <= max(w.hr_per_km)
    assert rec.max_hr == max(w.hr_per_km)
    assert rec.hr_splits is not None and len(rec.hr_splits) == 10
    assert [s.avg_hr for s in rec.hr_splits] == pytest.approx([float(h) for h in w.hr_per_km], abs=0.6)
    assert all(s.duration_s == pytest.approx(w.pace_s_per_km, abs=6) for s in rec.hr_splits)
    assert rec.elevation_gain_m == pytest.approx(40.0)  # HKElevationAscended "4000 cm"
    assert validated(ah_normalise.normalise_raw(rec.raw)) == rec


def test_statistics_and_units_of_older_exports() -> None:
    doc = b"""<?xml version="1.0" encoding="UTF-8"?>
<HealthData locale="de_DE">
 <ExportDate value="20151107171924+0100"/>
 <Record type="HKQuantityTypeIdentifierHeartRate" sourceName="Watch" unit="count/min" startDate="20151103080500+0100" endDate="20151103080500+0100" value="150"/>
 <Record type="HKQuantityTypeIdentifierHeartRate" sourceName="Watch" unit="count/min" startDate="20151103081000+0100" endDate="20151103081000+0100" value="170"/>
 <Record type="HKQuantityTypeIdentifierHeartRate" sourceName="Watch" unit="count/min" startDate="20151103120000+0100" endDate="20151103120000+0100" value="60"/>
 <Workout workoutActivityType="HKWorkoutActivityTypeCycling" duration="0.5" durationUnit="hr" totalDistance="10" totalDistanceUnit="mi" totalEnergyBurned="1000" totalEnergyBurnedUnit="kJ" sourceName="Watch" startDate="20151103080000+0100" endDate="20151103083500+0100"/>
</HealthData>
"""
    ex = apple_health.read_export(lambda: io.BytesIO(doc), len(doc), "Export.xml")
    (rec,) = ex.records
    assert rec.start_time == "2015-11-03T07:00:00Z" and rec.sport == "cycling"
    assert rec.distance_m == pytest.approx(16093.4, abs=0.1)
    assert rec.calories == pytest.approx(1000 / 4.184, abs=0.1)
    assert rec.moving_time_s == 1800.0 and rec.duration_s == 2100.0
    assert (rec.avg_hr, rec.max_hr) == (160.0, 170.0)  # the 12:00 reading is outside the workout


def test_only_samples_inside_workouts_are_kept() -> None:
    w = samples.WORKOUTS[0]
    data = samples.apple_export_xml([w])
    workouts, _ = scan.read_workouts(lambda: io.BytesIO(data))
    windows = Windows(workouts)
    kept, n = scan.read_samples(lambda: io.BytesIO(data), windows, len(data), "x", None)
    start, end = w.start.timestamp(), w.start.timestamp() + w.seconds
    assert kept.hr_t and all(start <= t <= end for t in kept.hr_t)
    assert len(kept.hr_t) == int(w.seconds) // 5 + 1  # every 5 s sample of the run, nothing else
    assert kept.d_start and all(start <= t <= end for t in kept.d_start)
    assert n > len(kept.hr_t) + len(kept.d_start)  # steps and the like were read and dropped


def test_workouts_written_before_the_records_are_still_found() -> None:
    w1, w2 = samples.WORKOUTS[0], samples.WORKOUTS[1]
    data = samples.apple_export_xml([w1, w2]).decode()
    first = data.index(" <Workout ")
    block = data[first : data.index("</Workout>", first) + len("</Workout>\n")]
    moved = data.replace(block, "").replace(" <Record ", block + " <Record ", 1).encode()  # w1 before every record
    assert moved.index(b"<Workout ") < moved.index(b"<Record ")
    recs = sorted(
        apple_health.read_export(lambda: io.BytesIO(moved), len(moved), "export.xml").records,
        key=lambda r: r.start_time,
    )
    assert [r.start_time for r in recs] == [
        w1.start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        w2.start.strftime("%Y-%m-%dT%H:%M:%SZ"),
    ]
    assert all(r.hr_splits for r in recs)  # the samples of both were kept on the second pass


def test_records_only_export_is_not_an_activity() -> None:
    doc = b'<HealthData locale="en"><Record type="HKQuantityTypeIdentifierStepCount" sourceName="p" startDate="2020-01-01 10:00:00 +0000" endDate="2020-01-01 10:01:00 +0000" value="5"/></HealthData>'
    with pytest.raises(NotAnActivity, match="no workouts"):
        apple_health.read_export(lambda: io.BytesIO(doc), len(doc), "export.xml")


# ---------------------------------------------------------------- Garmin export


def test_garmin_export_units_become_the_apis() -> None:
    w = samples.WORKOUTS[2]
    api = garmin_export.to_api_activity(samples.garmin_summary(w))
    assert api["activityId"] == w.garmin_id and api["activityName"] == w.name
    assert api["startTimeGMT"] == "2024-05-11 07:15:00" and api["startTimeLocal"] == "2024-05-11 09:15:00"
    assert api["distance"] == pytest.approx(62000.0) and api["duration"] == pytest.approx(7440.0)
    assert api["elevationGain"] == pytest.approx(248.0) and api["averageSpeed"] == pytest.approx(1000 / 120, abs=1e-3)
    assert api["calories"] == pytest.approx(62 * 65, abs=0.01)
    assert api["activityType"] == {"typeKey": "road_biking"}
    own = from_raw("garmin", api)  # the export's records are the API normaliser's, whatever the path
    registered = garmin_export.to_record(api)
    for field in ("source", "source_id", "start_time", "sport", "distance_m", "duration_s", "avg_hr", "max_hr"):
        assert getattr(own, field) == pytest.approx(getattr(registered, field)), field
    assert registered.source_id == str(w.garmin_id) and registered.sport == "cycling"


# ---------------------------------------------------------------- Strava export


def _csv(header: list[str], rows: list[list[str]]) -> bytes:
    import csv

    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue().encode()


def test_strava_repeated_columns_take_metres_and_the_filled_heart_rate() -> None:
    w = samples.WORKOUTS[0]
    row = samples.strava_row(w, "activities/1.fit.gz")
    ex = strava_export.read_activities_csv(_csv(samples.STRAVA_HEADER, [row]), "activities.csv")
    (rec,) = ex.records
    assert rec.source == "strava" and rec.source_id == str(w.strava_id)
    assert rec.start_time == w.start.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert rec.distance_m == pytest.approx(8000.0)  # not 8.0 (the display-unit column)
    assert rec.max_hr == max(w.hr_per_km)
    assert rec.external_id is None  # Strava's file name never names the Garmin activity
    assert rec.raw["export_filename"] == "activities/1.fit.gz"


def test_strava_translated_headers_fall_back_to_positions() -> None:
    header = [
        "Aktivitäts-ID",
        "Datum der Aktivität",
        "Name der Aktivität",
        "Aktivitätsart",
        "Beschreibung",
        "Verstrichene Zeit",
    ]
    data = _csv(header, [["42", "2024-05-01 06:30:00", "Morgenlauf", "Run", "", "1800"]])
    assert detect.sniff(data, "activities.csv") == "strava_csv"  # by its name and its numeric first column
    assert detect.sniff(data, "other.csv") == "other:csv"
    ex = strava_export.read_activities_csv(data, "activities.csv")
    (rec,) = ex.records
    assert (rec.source_id, rec.start_time, rec.sport, rec.duration_s) == (
        "42",
        "2024-05-01T06:30:00Z",
        "running",
        1800.0,
    )
    assert any("by position" in w for w in ex.warnings)


def test_strava_single_distance_column_is_kilometres_and_bad_rows_are_reported() -> None:
    header = [
        "Activity ID",
        "Activity Date",
        "Activity Name",
        "Activity Type",
        "Activity Description",
        "Elapsed Time",
        "Distance",
    ]
    rows = [
        ["7", "Jun 1, 2015, 7:00:00 AM", "Ride", "Ride", "", "3600", "30.5"],
        ["8", "not a date", "x", "Run", "", "1", "1"],
    ]
    ex = strava_export.read_activities_csv(_csv(header, rows), "activities.csv")
    (rec,) = ex.records
    assert rec.distance_m == pytest.approx(30500.0)
    assert any("unreadable Activity Date" in w for w in ex.warnings)


# ---------------------------------------------------------------- Polar


def test_polar_session_times_offsets_and_splits() -> None:
    w = samples.WORKOUTS[7]
    name, data = samples.polar_session(w, 987654)
    (rec,) = polar.read_polar(data, name).records
    assert rec.source == "polar" and rec.source_id == "987654"
    assert rec.start_time == w.start.strftime("%Y-%m-%dT%H:%M:%SZ")  # wall clock minus timeZoneOffset
    assert rec.start_time_local == "2024-05-19T11:10:00"
    assert rec.sport == "cycling" and rec.distance_m == 48000.0 and rec.duration_s == pytest.approx(w.seconds)
    assert rec.hr_splits is not None and len(rec.hr_splits) == 48
    assert validated(polar.normalise_raw(rec.raw)) == rec


def test_polar_without_offset_is_taken_as_utc_with_a_warning() -> None:
    doc = {
        "startTime": "2020-02-02T10:00:00.000",
        "duration": "PT1H",
        "exercises": [{"sport": "RUNNING", "distance": 10000}],
    }
    ex = polar.read_polar(msgspec.json.encode(doc), "session.json")
    assert ex.records[0].start_time == "2020-02-02T10:00:00Z" and ex.records[0].duration_s == 3600.0
    assert any("taken as UTC" in x for x in ex.warnings)
    assert len(ex.records[0].source_id) == 20  # no id in the name or the file: a content hash


# ---------------------------------------------------------------- GPX and TCX


def test_gpx_all_tracks_make_one_workout_and_strava_types_are_read() -> None:
    w = samples.WORKOUTS[4]
    one = samples.gpx_bytes(w, type_="1").decode()
    body = one[one.index("<trk>") : one.index("</trk>") + 6]
    later = body.replace("2024-05-14T06", "2024-05-14T08")
    doc = one.replace(body, body + later).encode()
    (rec,) = gpx.read_gpx(doc, "ride.gpx").records
    assert rec.sport == "cycling" and rec.sport_raw == "1"
    assert rec.start_time == "2024-05-14T06:45:00Z"
    assert rec.distance_m == pytest.approx(2 * 12500, rel=0.01)
    assert rec.moving_time_s == pytest.approx(2 * w.seconds, abs=20)
    assert validated(gpx.normalise_raw(rec.raw)) == rec


def test_tcx_of_courses_only_is_not_an_activity() -> None:
    doc = b'<?xml version="1.0"?><TrainingCenterDatabase xmlns="http://www.garmin.com/xmlschemas/TrainingCenterDatabase/v2"><Courses><Course><Name>Loop</Name></Course></Courses></TrainingCenterDatabase>'
    with pytest.raises(NotAnActivity, match="courses"):
        tcx.read_tcx(doc, "course.tcx")


def test_tcx_heart_rate_only_in_trackpoints() -> None:
    points = "".join(
        f"<Trackpoint><Time>2020-01-01T10:{m:02d}:00Z</Time><DistanceMeters>{m * 250}</DistanceMeters>"
        f"<HeartRateBpm><Value>{140 + m}</Value></HeartRateBpm></Trackpoint>"
        for m in range(0, 21)
    )
    doc = (
        '<TrainingCenterDatabase><Activities><Activity Sport="Running"><Id>2020-01-01T10:00:00Z</Id>'
        '<Lap StartTime="2020-01-01T10:00:00Z"><TotalTimeSeconds>1200</TotalTimeSeconds><DistanceMeters>5000</DistanceMeters>'
        f"<Track>{points}</Track></Lap></Activity></Activities></TrainingCenterDatabase>"
    ).encode()
    (rec,) = tcx.read_tcx(doc, "a.tcx").records
    assert rec.avg_hr == pytest.approx(150.0) and rec.max_hr == 160
    assert rec.distance_m == 5000.0 and rec.hr_splits is not None and len(rec.hr_splits) == 5
    assert [s.duration_s for s in rec.hr_splits] == [240.0] * 5


# ---------------------------------------------------------------- splits


@settings(max_examples=100, deadline=None)
@given(
    st.floats(min_value=1.2, max_value=30.0),
    st.floats(min_value=150.0, max_value=600.0),
    st.integers(min_value=1, max_value=10),
)
def test_splits_of_a_steady_effort(km: float, pace: float, step: int) -> None:
    total = km * pace
    samples_ = [(t, min(t / pace * 1000, km * 1000), 140.0 + (t / pace)) for t in range(0, int(total) + 1, step)]
    samples_.append((total, km * 1000, 140.0 + km))
    out = hr_splits(samples_)
    assert out is not None
    full = int(km)
    partial = km * 1000 - full * 1000
    assert len(out) == full + (1 if partial >= 50 else 0)
    for s in out[:full]:
        assert s.duration_s == pytest.approx(pace, abs=0.11)
        assert s.avg_hr is not None and 140.0 + s.km - 1 - 1e-6 <= s.avg_hr <= 140.0 + s.km + 1e-6
    assert sum(s.duration_s for s in out) == pytest.approx(
        total if partial >= 50 else full * pace, abs=0.1 * len(out) + 0.2
    )


def test_splits_need_heart_rate_and_distance() -> None:
    assert hr_splits([(0, 0.0, None), (600, 2000.0, None)]) is None
    assert hr_splits([(0, None, 120.0), (600, None, 130.0)]) is None
    resumed = hr_splits([(0, 5000.0, 120.0), (300, 6000.0, 130.0), (600, 7000.0, 140.0)])
    assert resumed is not None and [s.km for s in resumed] == [1, 2]


# ---------------------------------------------------------------- splits along distance intervals (Apple Health)


def _readings(until: int, bpm: float = 150.0, every: int = 10) -> list[tuple[float, float]]:
    return [(float(t), bpm) for t in range(every, until + 1, every)]


@pytest.mark.parametrize(
    ("intervals", "kms", "km_seconds"),
    [
        ([(0.0, 300.0, 1000.0), (300.0, 600.0, 1000.0)], [1, 2], [300.0, 300.0]),
        # a sample overlapping what the recorder already counted is dropped, not counted twice
        ([(0.0, 300.0, 1000.0), (100.0, 200.0, 500.0), (300.0, 600.0, 1000.0)], [1, 2], [300.0, 300.0]),
        # a steady 2 km in one interval: the readings are placed by interpolation
        ([(0.0, 600.0, 2000.0)], [1, 2], [300.0, 300.0]),
    ],
)
def test_splits_along_distance_intervals(
    intervals: list[tuple[float, float, float]], kms: list[int], km_seconds: list[float]
) -> None:
    from healthcache.splits import along_distance

    splits = along_distance(0.0, _readings(600), intervals)
    assert splits is not None
    assert [s.km for s in splits] == kms
    assert [s.duration_s for s in splits] == pytest.approx(km_seconds, abs=10.0)
    assert all(s.avg_hr == 150.0 for s in splits)


def test_splits_along_distance_need_both_series() -> None:
    from healthcache.splits import along_distance

    assert along_distance(0.0, [], [(0.0, 600.0, 2000.0)]) is None
    assert along_distance(0.0, _readings(600), []) is None
    assert along_distance(0.0, _readings(600), [(-5.0, -1.0, 10.0)]) is None  # distance only before the start
