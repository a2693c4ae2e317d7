"""Real-shaped payloads (Garmin activity JSON, Strava activity JSON, FIT session) and
the records a source's normaliser makes of them, for the merge tests.

The ``normalise_*`` functions mirror what sources/ and importers/ produce, so the
merge tests do not depend on those modules: tests point
``healthcache.normalise.NORMALISERS`` at them (``use_test_normalisers``).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from healthcache import normalise
from healthcache.model.records import SourceRecord
from healthcache.model.sports import normalise_sport

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
T0 = datetime(2024, 5, 1, 6, 30, tzinfo=UTC)


def garmin_payload(
    gid: int,
    start: datetime = T0,
    *,
    distance: float | None = 10_000.0,
    duration: float = 3000.0,
    type_key: str = "running",
    hr: float | None = 150.0,
    power: float | None = None,
    name: str = "Paris Running",
) -> dict[str, Any]:
    """An entry of Garmin Connect's activity list (``get_activities_by_date``)."""
    local = start + timedelta(hours=2)
    return {
        "activityId": gid,
        "activityName": name,
        "startTimeLocal": local.strftime("%Y-%m-%d %H:%M:%S"),
        "startTimeGMT": start.strftime("%Y-%m-%d %H:%M:%S"),
        "activityType": {"typeId": 1, "typeKey": type_key, "parentTypeId": 17, "isHidden": False},
        "eventType": {"typeId": 9, "typeKey": "uncategorized"},
        "distance": distance,
        "duration": duration - 12.0,
        "elapsedDuration": duration,
        "movingDuration": duration - 40.0,
        "elevationGain": 42.0,
        "elevationLoss": 40.0,
        "averageSpeed": (distance or 0.0) / duration,
        "calories": 612.0,
        "averageHR": hr,
        "maxHR": None if hr is None else hr + 24,
        "averageRunningCadenceInStepsPerMinute": 168.0,
        "avgPower": power,
        "deviceId": 3_987_654_321,
        "manufacturer": "GARMIN",
        "timeZoneId": 124,
        "ownerId": 1234,
        "lapCount": 10,
        "hasPolyline": distance is not None,
    }


def normalise_garmin(raw: dict[str, Any]) -> SourceRecord:
    start = datetime.strptime(raw["startTimeGMT"], "%Y-%m-%d %H:%M:%S")
    type_key = raw["activityType"]["typeKey"]
    return SourceRecord(
        source="garmin",
        source_id=str(raw["activityId"]),
        start_time=start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        start_time_local=raw["startTimeLocal"].replace(" ", "T"),
        sport=normalise_sport("garmin", type_key),
        sport_raw=type_key,
        name=raw.get("activityName"),
        distance_m=raw.get("distance"),
        duration_s=raw.get("elapsedDuration"),
        moving_time_s=raw.get("movingDuration"),
        elevation_gain_m=raw.get("elevationGain"),
        calories=raw.get("calories"),
        avg_hr=raw.get("averageHR"),
        max_hr=raw.get("maxHR"),
        avg_cadence=raw.get("averageRunningCadenceInStepsPerMinute"),
        avg_power=raw.get("avgPower"),
        device="Forerunner 965",
        raw=raw,
    )


def strava_payload(
    sid: int,
    start: datetime = T0,
    *,
    distance: float = 10_000.0,
    elapsed: int = 3000,
    sport_type: str = "Run",
    external_id: str | None = None,
    hr: float | None = 150.0,
    watts: float | None = None,
    trainer: bool = False,
    name: str = "Morning Run",
) -> dict[str, Any]:
    """A SummaryActivity of Strava's ``/athlete/activities``."""
    local = start + timedelta(hours=2)
    return {
        "resource_state": 2,
        "athlete": {"id": 2456610, "resource_state": 1},
        "name": name,
        "distance": distance,
        "moving_time": elapsed - 35,
        "elapsed_time": elapsed,
        "total_elevation_gain": 38.4,
        "type": sport_type,
        "sport_type": sport_type,
        "workout_type": None,
        "id": sid,
        "start_date": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "start_date_local": local.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "timezone": "(GMT+01:00) Europe/Paris",
        "utc_offset": 7200.0,
        "trainer": trainer,
        "commute": False,
        "manual": False,
        "average_speed": distance / elapsed,
        "average_cadence": 84.0,
        "average_watts": watts,
        "device_watts": watts is not None,
        "has_heartrate": hr is not None,
        "average_heartrate": hr,
        "max_heartrate": None if hr is None else hr + 22,
        "kudos_count": 3,
        "external_id": external_id,
        "upload_id": 16_000_000_001,
        "device_name": "Garmin Forerunner 965",
    }


def normalise_strava(raw: dict[str, Any]) -> SourceRecord:
    sport = raw.get("sport_type") or raw.get("type")
    cadence = raw.get("average_cadence")
    if cadence is not None and sport in ("Run", "TrailRun", "VirtualRun"):
        cadence *= 2  # Strava counts one foot
    return SourceRecord(
        source="strava",
        source_id=str(raw["id"]),
        start_time=raw["start_date"],
        start_time_local=raw["start_date_local"].removesuffix("Z"),
        timezone=raw["timezone"].split(" ", 1)[-1],
        sport=normalise_sport("strava", "VirtualRun" if sport == "Run" and raw.get("trainer") else sport),
        sport_raw=sport,
        name=raw.get("name"),
        distance_m=raw.get("distance"),
        duration_s=raw.get("elapsed_time"),
        moving_time_s=raw.get("moving_time"),
        elevation_gain_m=raw.get("total_elevation_gain"),
        avg_hr=raw.get("average_heartrate"),
        max_hr=raw.get("max_heartrate"),
        avg_cadence=cadence,
        avg_power=raw.get("average_watts"),
        device=raw.get("device_name"),
        external_id=raw.get("external_id"),
        raw=raw,
    )


def fit_session(
    start: datetime = T0,
    *,
    sport: str = "running",
    sub_sport: str = "generic",
    distance: float | None = 10_000.0,
    elapsed: float = 3000.0,
    hr: int | None = 150,
    power: int | None = None,
    file_bytes: bytes | None = None,
) -> dict[str, Any]:
    """The summary a FIT importer keeps: the session message's fields plus the file's hash."""
    session = {
        "start_time": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "sport": sport,
        "sub_sport": sub_sport,
        "total_distance": distance,
        "total_elapsed_time": elapsed,
        "total_timer_time": elapsed - 20.0,
        "total_ascent": 40,
        "total_calories": 600,
        "avg_heart_rate": hr,
        "max_heart_rate": None if hr is None else hr + 20,
        "avg_cadence": 84,
        "avg_power": power,
        "manufacturer": "garmin",
        "product": "fr965",
    }
    data = file_bytes if file_bytes is not None else repr(sorted(session.items())).encode()
    return {"sha256": hashlib.sha256(data).hexdigest(), "session": session}


def normalise_fit(raw: dict[str, Any]) -> SourceRecord:
    s = raw["session"]
    cadence = s.get("avg_cadence")
    if cadence is not None and s["sport"] == "running":
        cadence *= 2  # FIT running cadence is strides per minute
    return SourceRecord(
        source="fit",
        source_id=raw["sha256"],
        start_time=s["start_time"],
        sport=normalise_sport("fit", f"{s['sport']}/{s['sub_sport']}"),
        sport_raw=f"{s['sport']}/{s['sub_sport']}",
        distance_m=s.get("total_distance"),
        duration_s=s.get("total_elapsed_time"),
        moving_time_s=s.get("total_timer_time"),
        elevation_gain_m=s.get("total_ascent"),
        calories=s.get("total_calories"),
        avg_hr=s.get("avg_heart_rate"),
        max_hr=s.get("max_heart_rate"),
        avg_cadence=cadence,
        avg_power=s.get("avg_power"),
        device=f"{s.get('manufacturer')} {s.get('product')}",
        raw=raw,
    )


def fit_session_from_file(path: Path) -> dict[str, Any]:
    """The FIT importer's summary of a real file (first session), read with fitdecode."""
    import fitdecode

    data = path.read_bytes()
    with fitdecode.FitReader(path) as reader:
        for frame in reader:
            if isinstance(frame, fitdecode.FitDataMessage) and frame.name == "session":
                values = {f.name: f.value for f in frame.fields}
                start = values["start_time"]
                return {
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "session": {
                        "start_time": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "sport": values.get("sport"),
                        "sub_sport": values.get("sub_sport") or "generic",
                        "total_distance": values.get("total_distance"),
                        "total_elapsed_time": values.get("total_elapsed_time"),
                        "total_timer_time": values.get("total_timer_time"),
                        "total_ascent": values.get("total_ascent"),
                        "total_calories": values.get("total_calories"),
                        "avg_heart_rate": values.get("avg_heart_rate"),
                        "max_heart_rate": values.get("max_heart_rate"),
                        "avg_cadence": values.get("avg_cadence"),
                        "avg_power": values.get("avg_power"),
                        "manufacturer": values.get("manufacturer"),
                        "product": values.get("garmin_product") or values.get("product"),
                    },
                }
    raise AssertionError(f"{path} has no session")


NORMALISE = {"garmin": normalise_garmin, "strava": normalise_strava, "fit": normalise_fit}


def garmin(gid: int, start: datetime = T0, **kw: Any) -> SourceRecord:
    return normalise_garmin(garmin_payload(gid, start, **kw))


def strava(sid: int, start: datetime = T0, **kw: Any) -> SourceRecord:
    return normalise_strava(strava_payload(sid, start, **kw))


def fit(start: datetime = T0, **kw: Any) -> SourceRecord:
    return normalise_fit(fit_session(start, **kw))


def broken(raw: Any) -> SourceRecord:
    raise ValueError("this payload cannot be read")


@pytest.fixture
def use_test_normalisers(monkeypatch: pytest.MonkeyPatch) -> None:
    for source in NORMALISE:
        monkeypatch.setitem(normalise.NORMALISERS, source, f"tests.test_merge_payloads:normalise_{source}")


def test_builders_round_trip_through_the_registry(use_test_normalisers: None) -> None:
    """The payloads re-derive, through healthcache.normalise, to the records the tests merge."""
    for rec in (garmin(1), strava(2, external_id="garmin_push_1"), fit()):
        assert normalise.from_raw(rec.source, rec.raw) == rec


def test_real_fit_session_reads() -> None:
    path = CORPUS / "fit" / "dtcooper__python-fitparse__2013-02-06-12-11-14.fit"
    if not path.exists():
        pytest.skip("corpus not present")
    rec = normalise_fit(fit_session_from_file(path))
    assert (rec.start_time, rec.sport, rec.avg_hr) == ("2013-02-06T12:11:14Z", "running", 147)
    assert rec.distance_m == pytest.approx(4835.38)
