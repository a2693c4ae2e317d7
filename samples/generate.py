"""Generate a small, realistic sample set to try healthcache without any account.

    python samples/generate.py samples/data && healthcache import samples/data

Two weeks of one athlete's training, as the services and devices would hand
it over: FIT files written by a FIT encoder (fit-tool), a Garmin account export
zip (summarizedActivities JSON in Garmin's units, and the FIT uploads in a
nested zip), a Strava bulk export zip (activities.csv with its repeated
columns, gzipped FIT copies and a GPX), a GPX hike, a Polar Flow training
session, and an Apple Health export.zip (records, workouts with statistics,
heart rate every 5 s, a workout route).  Several workouts were recorded or
synced by more than one service, so the import shows de-duplication: the 7
files (3 of them account exports) hold 22 records of 8 workouts.

The builders are plain functions so tests can make their own variants.

The package ships this set as healthcache/samples/data, so the demo needs neither
this script nor its FIT encoder (a test dependency). After changing a builder,
regenerate it (zip entries carry a fixed time, so unchanged files stay unchanged):

    python samples/generate.py healthcache/samples/data

tests/test_packaging.py fails while the shipped files differ from this output.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import sys
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

import fitgen  # noqa: E402  (tests/fitgen.py: the FIT encoder helpers)
from fit_tool.profile.profile_type import Sport, SubSport  # noqa: E402

LOCAL = timezone(timedelta(hours=2))  # the athlete lives in UTC+2 (summer)
EMAIL = "sam.ple@example.com"


@dataclass(frozen=True)
class Workout:
    """One real-world workout and who recorded it."""

    key: str
    sport: str  # running | cycling | hiking | treadmill
    start: datetime  # UTC
    km: float
    pace_s_per_km: float
    name: str
    garmin_id: int | None = None
    strava_id: int | None = None
    hr_base: int = 135

    @property
    def seconds(self) -> float:
        return self.km * self.pace_s_per_km

    @property
    def hr_per_km(self) -> tuple[int, ...]:
        n = max(1, int(-(-self.km // 1)))
        return tuple(self.hr_base + round(25 * i / n) for i in range(n))  # drifts up 25 bpm over the workout


WORKOUTS = (
    Workout(
        "easy-run",
        "running",
        datetime(2024, 5, 6, 5, 2, 11, tzinfo=UTC),
        8.0,
        330,
        "Easy run",
        15601001234,
        11502000001,
    ),
    Workout(
        "intervals",
        "running",
        datetime(2024, 5, 8, 16, 30, 5, tzinfo=UTC),
        10.0,
        290,
        "Track intervals",
        15620001234,
        11512000002,
        150,
    ),
    Workout(
        "long-ride",
        "cycling",
        datetime(2024, 5, 11, 7, 15, 0, tzinfo=UTC),
        62.0,
        120,
        "Long ride",
        15640001234,
        11530000003,
        125,
    ),
    Workout(
        "recovery",
        "running",
        datetime(2024, 5, 13, 5, 30, 40, tzinfo=UTC),
        5.0,
        360,
        "Recovery jog",
        15660001234,
        None,
        128,
    ),
    Workout(
        "commute",
        "cycling",
        datetime(2024, 5, 14, 6, 45, 0, tzinfo=UTC),
        12.5,
        150,
        "Morning commute",
        None,
        11550000005,
    ),
    Workout(
        "treadmill", "treadmill", datetime(2024, 5, 15, 17, 0, 0, tzinfo=UTC), 6.0, 320, "Treadmill", None, None, 140
    ),
    Workout("hike", "hiking", datetime(2024, 5, 18, 8, 0, 0, tzinfo=UTC), 9.0, 720, "Hike", None, None, 110),
    Workout(
        "gravel", "cycling", datetime(2024, 5, 19, 9, 10, 0, tzinfo=UTC), 48.0, 135, "Gravel ride", None, None, 130
    ),
)


def fit_bytes(w: Workout) -> bytes:
    """The watch's FIT file of a workout."""
    sport, sub = {
        "running": (Sport.RUNNING, SubSport.GENERIC),
        "treadmill": (Sport.RUNNING, SubSport.TREADMILL),
        "cycling": (Sport.CYCLING, SubSport.ROAD),
    }[w.sport]
    samples = fitgen.constant_pace_run(w.start, w.km, w.pace_s_per_km, w.hr_per_km, step_s=10)
    leg = fitgen.Leg(
        sport=sport, sub_sport=sub, start=w.start, samples=samples, calories=int(w.km * 65), ascent=int(w.km * 4)
    )
    return fitgen.activity([leg], serial=0x51A3F00D, local_offset_s=7200)


# ---------------------------------------------------------------- zips

EXPORTED = (2024, 5, 20, 21, 0, 0)  # every zip entry's time: the same bytes on every run


class _Zip(zipfile.ZipFile):
    """A zip whose entries carry a fixed time and mode, so the shipped sample set can be checked byte for byte."""

    def writestr(
        self,
        zinfo_or_arcname: str | zipfile.ZipInfo,
        data: bytes | str,
        compress_type: int | None = None,
        compresslevel: int | None = None,
    ) -> None:
        if isinstance(zinfo_or_arcname, str):
            info = zipfile.ZipInfo(zinfo_or_arcname, date_time=EXPORTED)
            info.create_system = 3  # Unix, whatever machine generates it
            info.compress_type = self.compression
            info.external_attr = (0o40755 << 16 | 0x10) if info.is_dir() else 0o644 << 16
            zinfo_or_arcname = info
        super().writestr(zinfo_or_arcname, data, compress_type, compresslevel)


# ---------------------------------------------------------------- Garmin account export


def garmin_summary(w: Workout) -> dict[str, Any]:
    """One summarizedActivities entry, in the export's own units (cm, ms, kJ, epoch ms)."""
    begin = int(w.start.timestamp() * 1000)
    hrs = w.hr_per_km
    type_key = {"running": "running", "treadmill": "treadmill_running", "cycling": "road_biking"}[w.sport]
    return {
        "activityId": w.garmin_id,
        "name": w.name,
        "activityType": type_key,
        "sportType": "RUNNING" if w.sport != "cycling" else "CYCLING",
        "userProfileId": 90000001,
        "timeZoneId": 124,
        "beginTimestamp": begin,
        "startTimeGmt": float(begin),
        "startTimeLocal": float(begin + 2 * 3600 * 1000),
        "duration": w.seconds * 1000.0,
        "elapsedDuration": w.seconds * 1000.0,
        "movingDuration": w.seconds * 1000.0,
        "distance": w.km * 100000.0,
        "elevationGain": w.km * 400.0,
        "avgSpeed": (1000.0 / w.pace_s_per_km) / 10,
        "avgHr": float(round(sum(hrs) / len(hrs))),
        "maxHr": float(max(hrs)),
        "calories": w.km * 65 * 4.184,
        "deviceId": 3400000001,
        "manufacturer": "GARMIN",
        "lapCount": int(w.km),
        "parent": False,
    }


def garmin_export_zip(workouts: list[Workout]) -> bytes:
    """DI_CONNECT/... as Garmin's data export delivers it, FIT uploads in a nested zip."""
    uploads = io.BytesIO()
    with _Zip(uploads, "w", zipfile.ZIP_DEFLATED) as inner:
        for w in workouts:
            inner.writestr(f"{EMAIL}_{w.garmin_id}.fit", fit_bytes(w))
    out = io.BytesIO()
    with _Zip(out, "w", zipfile.ZIP_DEFLATED) as z:
        summary = [{"summarizedActivitiesExport": [garmin_summary(w) for w in workouts]}]
        z.writestr(f"DI_CONNECT/DI-Connect-Fitness/{EMAIL}_0_summarizedActivities.json", json.dumps(summary))
        z.writestr("DI_CONNECT/DI-Connect-User/user_profile.json", json.dumps({"userName": EMAIL}))
        z.writestr("DI_CONNECT/DI-Connect-Uploaded-Files/UploadedFiles_0-_Part1.zip", uploads.getvalue())
    return out.getvalue()


# ---------------------------------------------------------------- Strava bulk export

STRAVA_HEADER = [
    "Activity ID", "Activity Date", "Activity Name", "Activity Type", "Activity Description", "Elapsed Time",
    "Distance", "Max Heart Rate", "Relative Effort", "Commute", "Activity Private Note", "Activity Gear",
    "Filename", "Athlete Weight", "Bike Weight", "Elapsed Time", "Moving Time", "Distance", "Max Speed",
    "Average Speed", "Elevation Gain", "Elevation Loss", "Elevation Low", "Elevation High", "Max Grade",
    "Average Grade", "Average Positive Grade", "Average Negative Grade", "Max Cadence", "Average Cadence",
    "Max Heart Rate", "Average Heart Rate", "Max Watts", "Average Watts", "Calories",
]  # fmt: skip


def strava_row(w: Workout, filename: str) -> list[str]:
    hrs = w.hr_per_km
    row = dict.fromkeys(range(len(STRAVA_HEADER)), "")
    row.update(
        {
            0: str(w.strava_id),
            1: w.start.strftime("%b %-d, %Y, %-I:%M:%S %p"),  # UTC, as Strava writes it
            2: w.name,
            3: "Run" if w.sport != "cycling" else "Ride",
            5: str(int(w.seconds)),
            6: f"{w.km:.2f}",  # display units (km) ...
            7: f"{max(hrs)}.0",
            9: "false",
            12: filename,
            15: f"{w.seconds:.1f}",
            16: f"{w.seconds:.1f}",
            17: f"{w.km * 1000:.1f}",  # ... and metres
            19: f"{1000 / w.pace_s_per_km:.3f}",
            20: f"{w.km * 4:.1f}",
            31: f"{sum(hrs) / len(hrs):.1f}",
            34: f"{w.km * 65:.1f}",
        }
    )
    return [row[i] for i in range(len(STRAVA_HEADER))]


def gpx_bytes(w: Workout, creator: str = "StravaGPX", type_: str = "1", hr: bool = True) -> bytes:
    """A GPS track along a straight line north, one point every 10 s."""
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<gpx creator="{creator}" version="1.1" xmlns="http://www.topografix.com/GPX/1/1" '
        'xmlns:gpxtpx="http://www.garmin.com/xmlschemas/TrackPointExtension/v1">',
        f"  <metadata><time>{w.start:%Y-%m-%dT%H:%M:%SZ}</time></metadata>",
        f"  <trk><name>{w.name}</name><type>{type_}</type><trkseg>",
    ]
    step = 10
    n = int(w.seconds // step)
    metres_per_deg = 111_194.9
    for i in range(n + 1):
        t = w.start + timedelta(seconds=i * step)
        d = min(w.km * 1000, i * step * 1000 / w.pace_s_per_km)
        lat = 46.0 + d / metres_per_deg
        km = min(int(d // 1000), len(w.hr_per_km) - 1)
        ext = (
            f"<extensions><gpxtpx:TrackPointExtension><gpxtpx:hr>{w.hr_per_km[km]}</gpxtpx:hr>"
            "</gpxtpx:TrackPointExtension></extensions>"
            if hr
            else ""
        )
        lines.append(
            f'    <trkpt lat="{lat:.7f}" lon="14.5000000"><ele>{300 + (i % 20)}</ele><time>{t:%Y-%m-%dT%H:%M:%SZ}</time>{ext}</trkpt>'
        )
    lines.append("  </trkseg></trk>\n</gpx>\n")
    return "\n".join(lines).encode()


def strava_export_zip(with_fit: list[Workout], with_gpx: list[Workout]) -> bytes:
    out = io.BytesIO()
    rows = []
    with _Zip(out, "w", zipfile.ZIP_DEFLATED) as z:
        for w in with_fit:
            name = f"activities/{w.strava_id}.fit.gz"
            z.writestr(name, gzip.compress(fit_bytes(w), mtime=0))  # Strava keeps the uploaded file, gzipped
            rows.append(strava_row(w, name))
        for w in with_gpx:
            name = f"activities/{w.strava_id}.gpx"
            z.writestr(name, gpx_bytes(w))
            rows.append(strava_row(w, name))
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(STRAVA_HEADER)
        writer.writerows(rows)
        z.writestr("activities.csv", buf.getvalue())
        z.writestr("profile.csv", "Athlete ID,Email Address\n123,sam.ple@example.com\n")
        z.writestr("media/", b"")
    return out.getvalue()


# ---------------------------------------------------------------- Polar Flow


def polar_session(w: Workout, session_id: int) -> tuple[str, bytes]:
    """A training-session JSON file of Polar's account data export (times are the watch's wall clock)."""
    local = w.start.astimezone(LOCAL).replace(tzinfo=None)
    stop = local + timedelta(seconds=w.seconds)
    samples_hr, samples_d = [], []
    for i in range(0, int(w.seconds) + 1, 5):
        d = min(w.km * 1000, i * 1000 / w.pace_s_per_km)
        t = (local + timedelta(seconds=i)).isoformat(timespec="milliseconds")
        samples_hr.append({"dateTime": t, "value": w.hr_per_km[min(int(d // 1000), len(w.hr_per_km) - 1)]})
        samples_d.append({"dateTime": t, "value": round(d, 1)})
    hrs = w.hr_per_km
    doc = {
        "exportVersion": "1.6",
        "identifier": {"id": str(session_id)},
        "name": w.name,
        "startTime": local.isoformat(timespec="milliseconds"),
        "stopTime": stop.isoformat(timespec="milliseconds"),
        "timeZoneOffset": 120,
        "distance": w.km * 1000,
        "duration": f"PT{w.seconds:.3f}S",
        "kiloCalories": int(w.km * 30),
        "exercises": [
            {
                "startTime": local.isoformat(timespec="milliseconds"),
                "stopTime": stop.isoformat(timespec="milliseconds"),
                "timezoneOffset": 120,
                "duration": f"PT{w.seconds:.3f}S",
                "distance": w.km * 1000,
                "sport": "ROAD_BIKING" if w.sport == "cycling" else "RUNNING",
                "kiloCalories": int(w.km * 30),
                "ascent": w.km * 5,
                "heartRate": {"min": min(hrs) - 20, "avg": round(sum(hrs) / len(hrs)), "max": max(hrs)},
                "samples": {"heartRate": samples_hr, "distance": samples_d},
            }
        ],
    }
    name = f"training-session-{local:%Y-%m-%d}-{session_id}-5f0e8a3c-1b2d-4e5f-9a8b-7c6d5e4f3a2b.json"
    return name, json.dumps(doc).encode()


# ---------------------------------------------------------------- Apple Health

APPLE_PROLOG = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE HealthData [
<!ELEMENT HealthData (ExportDate,Me,(Record|Correlation|Workout|ActivitySummary)*)>
<!ATTLIST HealthData locale CDATA #REQUIRED>
<!ELEMENT Record ((MetadataEntry)*)>
<!ATTLIST Record type CDATA #REQUIRED unit CDATA #IMPLIED value CDATA #IMPLIED sourceName CDATA #REQUIRED startDate CDATA #REQUIRED endDate CDATA #REQUIRED>
]>
<HealthData locale="en_GB">
 <ExportDate value="2024-05-20 21:00:00 +0200"/>
 <Me HKCharacteristicTypeIdentifierDateOfBirth="1990-03-04" HKCharacteristicTypeIdentifierBiologicalSex="HKBiologicalSexMale" HKCharacteristicTypeIdentifierBloodType="HKBloodTypeNotSet" HKCharacteristicTypeIdentifierFitzpatrickSkinType="HKFitzpatrickSkinTypeNotSet"/>
"""
WATCH = 'sourceName="Sam’s Apple Watch" sourceVersion="10.4"'


def _adate(dt: datetime) -> str:
    return dt.astimezone(LOCAL).strftime("%Y-%m-%d %H:%M:%S %z")


def apple_export_xml(workouts: list[Workout], *, statistics: bool = True) -> bytes:
    """export.xml: steps, heart rate (every 5 s in workouts, with motion metadata), watch distance, workouts."""
    out = [APPLE_PROLOG]
    day = datetime(2024, 5, 6, tzinfo=UTC)
    for i in range(40):  # steps from the phone, no metadata
        s = day + timedelta(hours=3 * i)
        out.append(
            f' <Record type="HKQuantityTypeIdentifierStepCount" sourceName="Sam’s iPhone" unit="count" '
            f'creationDate="{_adate(s)}" startDate="{_adate(s)}" endDate="{_adate(s + timedelta(minutes=10))}" value="{300 + i}"/>\n'
        )
    for w in workouts:
        for i in range(0, int(w.seconds) + 1, 5):
            t = w.start + timedelta(seconds=i)
            km = min(int((i * 1000 / w.pace_s_per_km) // 1000), len(w.hr_per_km) - 1)
            out.append(
                f' <Record type="HKQuantityTypeIdentifierHeartRate" {WATCH} unit="count/min" creationDate="{_adate(t)}" '
                f'startDate="{_adate(t)}" endDate="{_adate(t)}" value="{w.hr_per_km[km]}">\n'
                '  <MetadataEntry key="HKMetadataKeyHeartRateMotionContext" value="2"/>\n </Record>\n'
            )
    for w in workouts:
        kind = (
            "HKQuantityTypeIdentifierDistanceCycling"
            if w.sport == "cycling"
            else "HKQuantityTypeIdentifierDistanceWalkingRunning"
        )
        for i in range(0, int(w.seconds), 10):
            t = w.start + timedelta(seconds=i)
            out.append(
                f' <Record type="{kind}" {WATCH} unit="m" creationDate="{_adate(t)}" startDate="{_adate(t)}" '
                f'endDate="{_adate(t + timedelta(seconds=10))}" value="{10 * 1000 / w.pace_s_per_km:.4f}"/>\n'
            )
    for w in workouts:
        end = w.start + timedelta(seconds=w.seconds)
        kind = {"cycling": "Cycling", "hiking": "Hiking"}.get(w.sport, "Running")
        dist_type = (
            "HKQuantityTypeIdentifierDistanceCycling"
            if w.sport == "cycling"
            else "HKQuantityTypeIdentifierDistanceWalkingRunning"
        )
        hrs = w.hr_per_km
        out.append(
            f' <Workout workoutActivityType="HKWorkoutActivityType{kind}" duration="{w.seconds / 60:.4f}" durationUnit="min" '
            f'{WATCH} creationDate="{_adate(end)}" startDate="{_adate(w.start)}" endDate="{_adate(end)}">\n'
            '  <MetadataEntry key="HKIndoorWorkout" value="0"/>\n'
            '  <MetadataEntry key="HKTimeZone" value="Europe/Ljubljana"/>\n'
            f'  <MetadataEntry key="HKElevationAscended" value="{w.km * 400:.0f} cm"/>\n'
        )
        if statistics:
            out.append(
                f'  <WorkoutStatistics type="HKQuantityTypeIdentifierActiveEnergyBurned" startDate="{_adate(w.start)}" endDate="{_adate(end)}" sum="{w.km * 60:.1f}" unit="kcal"/>\n'
                f'  <WorkoutStatistics type="{dist_type}" startDate="{_adate(w.start)}" endDate="{_adate(end)}" sum="{w.km:.3f}" unit="km"/>\n'
                f'  <WorkoutStatistics type="HKQuantityTypeIdentifierHeartRate" startDate="{_adate(w.start)}" endDate="{_adate(end)}" average="{sum(hrs) / len(hrs):.1f}" minimum="{min(hrs) - 15}" maximum="{max(hrs)}" unit="count/min"/>\n'
            )
        out.append(
            f'  <WorkoutRoute {WATCH} creationDate="{_adate(end)}" startDate="{_adate(w.start)}" endDate="{_adate(end)}">\n'
            f'   <FileReference path="/workout-routes/route_{w.start.astimezone(LOCAL):%Y-%m-%d_%H.%M}.gpx"/>\n'
            "  </WorkoutRoute>\n </Workout>\n"
        )
    out.append(
        ' <ActivitySummary dateComponents="2024-05-19" activeEnergyBurned="812" activeEnergyBurnedGoal="600" activeEnergyBurnedUnit="Cal"/>\n'
    )
    out.append("</HealthData>\n")
    return "".join(out).encode()


def apple_export_zip(workouts: list[Workout]) -> bytes:
    out = io.BytesIO()
    with _Zip(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("apple_health_export/export.xml", apple_export_xml(workouts))
        z.writestr(
            "apple_health_export/export_cda.xml", '<?xml version="1.0"?>\n<ClinicalDocument xmlns="urn:hl7-org:v3"/>\n'
        )
        for w in workouts:
            z.writestr(
                f"apple_health_export/workout-routes/route_{w.start.astimezone(LOCAL):%Y-%m-%d_%H.%M}.gpx",
                gpx_bytes(w, creator="Apple Health Export", type_="", hr=False),
            )
    return out.getvalue()


# ---------------------------------------------------------------- the sample set


def generate(dest: Path) -> dict[str, Any]:
    """Write the sample set into ``dest``; return what importing it must give."""
    w = {x.key: x for x in WORKOUTS}
    dest.mkdir(parents=True, exist_ok=True)
    files = {
        "garmin/garmin-export.zip": garmin_export_zip([w["easy-run"], w["intervals"], w["long-ride"], w["recovery"]]),
        "strava/strava-export.zip": strava_export_zip([w["easy-run"], w["intervals"], w["long-ride"]], [w["commute"]]),
        "watch/treadmill.fit": fit_bytes(w["treadmill"]),
        "watch/recovery.fit": fit_bytes(w["recovery"]),  # the same file Garmin's export holds
        "gpx/hike.gpx": gpx_bytes(w["hike"], creator="Garmin Connect", type_="hiking"),
        "apple/export.zip": apple_export_zip([w["intervals"], w["gravel"]]),
    }
    name, data = polar_session(w["gravel"], 7300112233)
    files[f"polar/{name}"] = data
    for rel, data in files.items():
        path = dest / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)  # sample inputs, not healthcache state: plain writes are right here
    return {
        "files": sorted(files),
        "workouts": len(WORKOUTS),
        "groups": {
            "easy-run": {"garmin", "strava", "fit"},
            "intervals": {"garmin", "strava", "fit", "apple_health"},
            "long-ride": {"garmin", "strava", "fit"},
            "recovery": {"garmin", "fit"},
            "commute": {"strava", "gpx"},
            "treadmill": {"fit"},
            "hike": {"gpx"},
            "gravel": {"polar", "apple_health"},
        },
        "starts": {k: x.start.strftime("%Y-%m-%dT%H:%M:%SZ") for k, x in w.items()},
    }


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[1] in ("-h", "--help"):
        print(__doc__)
        return 2
    dest = Path(argv[1])
    info = generate(dest)
    print(f"wrote {len(info['files'])} files of {info['workouts']} workouts to {dest}")
    print(f"next: healthcache import {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
