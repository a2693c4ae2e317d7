"""Payloads shaped like the real APIs' (field names, types and nesting as they send them).

Garmin: the activity list of ``activitylist-service/activities/search/activities``,
``activity-service/activity/{id}/details`` (positional metrics with descriptors)
and ``.../splits`` (``lapDTOs``).  Strava: ``SummaryActivity`` as in Strava's
swagger example (``GET /athlete/activities``) and ``StreamSet`` keyed by type.
Everything is deterministic for a given id, so a test can rebuild what the
server sent.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

GARMIN_TYPES = {
    "running": (1, 17),
    "cycling": (2, 17),
    "trail_running": (6, 1),
    "lap_swimming": (27, 26),
    "strength_training": (13, 29),
    "walking": (9, 17),
}
STRAVA_TYPES = {"Run": "Run", "Ride": "Ride", "TrailRun": "Run", "Swim": "Swim", "WeightTraining": "WeightTraining"}


def _speed(sport: str) -> float:
    return {"cycling": 7.5, "Ride": 7.5, "lap_swimming": 0.9, "Swim": 0.9}.get(sport, 3.2)


def garmin_activity(
    activity_id: int,
    start: datetime,
    *,
    type_key: str = "running",
    duration: float = 3012.4,
    avg_hr: float | None = 148.0,
    max_hr: float | None = 171.0,
    tz_hours: int = 2,
    name: str | None = None,
) -> dict[str, Any]:
    start = start.astimezone(UTC).replace(microsecond=0)
    local = start + timedelta(hours=tz_hours)
    distance = round(duration * _speed(type_key), 1)
    type_id, parent = GARMIN_TYPES.get(type_key, (4, 17))
    item: dict[str, Any] = {
        "activityId": activity_id,
        "activityName": name or f"Lyon {type_key.replace('_', ' ').title()}",
        "description": None,
        "startTimeLocal": local.strftime("%Y-%m-%d %H:%M:%S"),
        "startTimeGMT": start.strftime("%Y-%m-%d %H:%M:%S"),
        "activityType": {
            "typeId": type_id,
            "typeKey": type_key,
            "parentTypeId": parent,
            "isHidden": False,
            "restricted": False,
            "trimmable": True,
        },
        "eventType": {"typeId": 9, "typeKey": "uncategorized", "sortOrder": 10},
        "distance": distance,
        "duration": duration,
        "elapsedDuration": duration + 14.0,
        "movingDuration": duration - 31.0,
        "elevationGain": 41.0,
        "elevationLoss": 39.0,
        "averageSpeed": round(distance / duration, 3),
        "maxSpeed": 4.37,
        "startLatitude": 45.7597,
        "startLongitude": 4.8422,
        "hasPolyline": True,
        "hasImages": False,
        "ownerId": 81234567,
        "ownerDisplayName": "a1b2c3d4-e5f6",
        "ownerFullName": "Test Runner",
        "calories": 642.0,
        "bmrCalories": 71.0,
        "averageHR": avg_hr,
        "maxHR": max_hr,
        "steps": 8431,
        "privacy": {"typeId": 2, "typeKey": "private"},
        "userPro": False,
        "hasVideo": False,
        "timeZoneId": 124,
        "beginTimestamp": int(start.timestamp() * 1000),
        "sportTypeId": 1,
        "aerobicTrainingEffect": 3.2,
        "anaerobicTrainingEffect": 0.4,
        "deviceId": 3442975400,
        "manufacturer": "GARMIN",
        "lapCount": max(1, int(distance // 1000) + 1),
        "waterEstimated": 781.0,
        "trainingEffectLabel": "AEROBIC_BASE",
        "activityTrainingLoad": 110.3,
        "minActivityLapDuration": 296.0,
        "hasSplits": True,
        "moderateIntensityMinutes": 20,
        "vigorousIntensityMinutes": 29,
        "pr": False,
        "manualActivity": False,
        "autoCalcCalories": False,
        "elevationCorrected": False,
        "atpActivity": False,
        "favorite": False,
        "decoDive": False,
        "parent": False,
        "purposeful": False,
        "summarizedDiveInfo": {"summarizedDiveGases": []},
    }
    if type_key in ("running", "trail_running", "walking"):
        item["averageRunningCadenceInStepsPerMinute"] = 168.4
        item["maxRunningCadenceInStepsPerMinute"] = 182.0
    if type_key == "cycling":
        item["averageBikingCadenceInRevPerMinute"] = 86.0
        item["avgPower"] = 201.0
    return item


def hr_at(second: float) -> float:
    """A plausible heart-rate curve: warm-up, drift, oscillation."""
    return round(118 + 30 * (1 - math.exp(-second / 300)) + second / 300 + 4 * math.sin(second / 97), 0)


def samples(duration: float, speed: float, step: float = 5.0) -> list[tuple[float, float, float]]:
    """(elapsed seconds, cumulative metres, bpm) every ``step`` seconds."""
    out = []
    t = 0.0
    while t <= duration:
        out.append((t, round(t * speed, 1), hr_at(t)))
        t += step
    return out


def garmin_details(activity: dict[str, Any], step: float = 5.0) -> dict[str, Any]:
    """``activity-service/activity/{id}/details``: positional metrics plus descriptors."""
    begin = activity["beginTimestamp"]
    rows = samples(activity["duration"], activity["distance"] / activity["duration"], step)
    descriptors = [
        {"metricsIndex": 0, "key": "directTimestamp", "unit": {"id": 120, "key": "gmt", "factor": 0.0}},
        {"metricsIndex": 1, "key": "sumDistance", "unit": {"id": 1, "key": "meter", "factor": 100.0}},
        {"metricsIndex": 2, "key": "directHeartRate", "unit": {"id": 100, "key": "bpm", "factor": 1.0}},
        {"metricsIndex": 3, "key": "sumElapsedDuration", "unit": {"id": 40, "key": "second", "factor": 1000.0}},
        {"metricsIndex": 4, "key": "directSpeed", "unit": {"id": 20, "key": "mps", "factor": 10.0}},
    ]
    metrics = [
        {"metrics": [float(begin + t * 1000), d, h, t, round(activity["distance"] / activity["duration"], 2)]}
        for t, d, h in rows
    ]
    return {
        "activityId": activity["activityId"],
        "measurementCount": len(descriptors),
        "metricsCount": len(metrics),
        "totalMetricsCount": len(metrics),
        "metricDescriptors": descriptors,
        "activityDetailMetrics": metrics,
        "geoPolylineDTO": {"startPoint": None, "endPoint": None, "minLat": None, "polyline": []},
        "heartRateDTOs": None,
        "pendingData": None,
        "detailsAvailable": True,
    }


def garmin_laps(activity: dict[str, Any], lap_m: float = 1000.0) -> dict[str, Any]:
    """``activity-service/activity/{id}/splits``: the device's laps (here: auto-lap every ``lap_m``)."""
    speed = activity["distance"] / activity["duration"]
    laps = []
    done = 0.0
    index = 1
    while done < activity["distance"] - 0.5:
        dist = min(lap_m, activity["distance"] - done)
        dur = dist / speed
        mid = (done + dist / 2) / speed
        laps.append(
            {
                "startTimeGMT": activity["startTimeGMT"].replace(" ", "T") + ".0",
                "distance": round(dist, 1),
                "duration": round(dur, 1),
                "movingDuration": round(dur, 1),
                "elapsedDuration": round(dur, 1),
                "averageHR": hr_at(mid),
                "maxHR": hr_at(mid) + 6,
                "lapIndex": index,
                "intensityType": "ACTIVE",
                "messageIndex": index - 1,
            }
        )
        done += dist
        index += 1
    return {"activityId": activity["activityId"], "lapDTOs": laps, "eventDTOs": []}


def strava_activity(
    activity_id: int,
    start: datetime,
    *,
    sport_type: str = "Run",
    elapsed: int = 3012,
    avg_hr: float | None = 146.2,
    max_hr: float | None = 175.0,
    external_id: str | None = None,
    tz: str = "(GMT+01:00) Europe/Paris",
    offset_s: int = 3600,
    name: str | None = None,
) -> dict[str, Any]:
    start = start.astimezone(UTC).replace(microsecond=0)
    local = start + timedelta(seconds=offset_s)
    distance = round(elapsed * _speed(sport_type), 1)
    item: dict[str, Any] = {
        "resource_state": 2,
        "athlete": {"id": 134815, "resource_state": 1},
        "name": name or f"Morning {sport_type}",
        "distance": distance,
        "moving_time": elapsed - 25,
        "elapsed_time": elapsed,
        "total_elevation_gain": 38.0,
        "type": STRAVA_TYPES.get(sport_type, sport_type),
        "sport_type": sport_type,
        "workout_type": None,
        "id": activity_id,
        "external_id": external_id or f"{activity_id}.fit",
        "upload_id": activity_id * 7,
        "start_date": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "start_date_local": local.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "timezone": tz,
        "utc_offset": float(offset_s),
        "start_latlng": [45.76, 4.84],
        "end_latlng": [45.77, 4.85],
        "location_city": None,
        "location_state": None,
        "location_country": "France",
        "achievement_count": 0,
        "kudos_count": 3,
        "comment_count": 1,
        "athlete_count": 1,
        "photo_count": 0,
        "map": {
            "id": f"a{activity_id}",
            "summary_polyline": "ki{eFvqfiVqAWQIGEEKAYJgBVqDJ{BHa@jAkNJw@",
            "resource_state": 2,
        },
        "device_name": "Garmin Forerunner 965",
        "trainer": False,
        "commute": False,
        "manual": False,
        "private": False,
        "visibility": "everyone",
        "flagged": False,
        "gear_id": "g12345678",
        "from_accepted_tag": False,
        "average_speed": round(distance / elapsed, 3),
        "max_speed": 4.6,
        "average_cadence": 84.2 if sport_type != "Ride" else 86.0,
        "has_heartrate": avg_hr is not None,
        "average_heartrate": avg_hr,
        "max_heartrate": max_hr,
        "heartrate_opt_out": False,
        "display_hide_heartrate_option": True,
        "elev_high": 212.4,
        "elev_low": 170.2,
        "pr_count": 0,
        "total_photo_count": 0,
        "has_kudoed": False,
        "suffer_score": 82.0,
    }
    if avg_hr is None:
        del item["average_heartrate"], item["max_heartrate"]
    if sport_type == "Ride":
        item.update(average_watts=175.3, weighted_average_watts=210, kilojoules=788.7, device_watts=True, max_watts=406)
    return item


def strava_streams(activity: dict[str, Any], step: float = 3.0) -> dict[str, Any]:
    """``GET /activities/{id}/streams?keys=time,distance,heartrate&key_by_type=true``."""
    rows = samples(activity["elapsed_time"], activity["distance"] / activity["elapsed_time"], step)
    n = len(rows)
    out: dict[str, Any] = {
        "time": {"data": [int(t) for t, _, _ in rows], "series_type": "distance", "original_size": n},
        "distance": {"data": [d for _, d, _ in rows], "series_type": "distance", "original_size": n},
    }
    if activity.get("has_heartrate"):
        out["heartrate"] = {"data": [int(h) for _, _, h in rows], "series_type": "distance", "original_size": n}
    for stream in out.values():
        stream["resolution"] = "high"
    return out


def spaced_starts(count: int, end: datetime, every: timedelta) -> list[datetime]:
    """``count`` start times, the last at ``end`` - ``every``/2, going back by ``every``."""
    first = end - every / 2
    return [first - every * i for i in range(count)]
