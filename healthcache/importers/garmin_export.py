"""Garmin account export (``DI-Connect-Fitness/*_summarizedActivities.json``) as ``garmin`` records.

The export describes the same activities as the Connect API, under the same
activity ids, but in other units: distance, elevation and stride in
centimetres, durations in milliseconds, speeds in tens of metres per second,
calories in kilojoules, and times as epoch milliseconds (``startTimeLocal``
being the local wall clock written as if it were UTC).  Each activity is
converted to the shape of the API's activity JSON (``activityId``,
``startTimeGMT``, ``distance`` in metres, ...) and stored as the ``garmin`` raw
payload, so a later ``sync`` of the same activity merges onto it by id.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec

from healthcache.importers.base import (
    Extracted,
    ImportFailed,
    Input,
    NotAnActivity,
    num,
    validated,
)
from healthcache.importers.detect import json_kind
from healthcache.model.records import SourceRecord
from healthcache.normalise import normaliser

KJ_PER_KCAL = 4.184
# export key -> (API key, factor applied to the export's value)
_SCALED: dict[str, tuple[str, float]] = {
    "distance": ("distance", 0.01),
    "duration": ("duration", 0.001),
    "elapsedDuration": ("elapsedDuration", 0.001),
    "movingDuration": ("movingDuration", 0.001),
    "elevationGain": ("elevationGain", 0.01),
    "elevationLoss": ("elevationLoss", 0.01),
    "minElevation": ("minElevation", 0.01),
    "maxElevation": ("maxElevation", 0.01),
    "avgSpeed": ("averageSpeed", 10.0),
    "maxSpeed": ("maxSpeed", 10.0),
    "avgStrideLength": ("avgStrideLength", 1.0),  # already centimetres in both
    "calories": ("calories", 1 / KJ_PER_KCAL),
    "bmrCalories": ("bmrCalories", 1 / KJ_PER_KCAL),
}
_RENAMED: dict[str, str] = {
    "activityId": "activityId",
    "name": "activityName",
    "description": "description",
    "avgHr": "averageHR",
    "maxHr": "maxHR",
    "minHr": "minHR",
    "avgPower": "avgPower",
    "maxPower": "maxPower",
    "normPower": "normPower",
    "avgBikeCadence": "averageBikingCadenceInRevPerMinute",
    "maxBikeCadence": "maxBikingCadenceInRevPerMinute",
    "steps": "steps",
    "deviceId": "deviceId",
    "manufacturer": "manufacturer",
    "timeZoneId": "timeZoneId",
    "beginTimestamp": "beginTimestamp",
    "lapCount": "lapCount",
    "startLatitude": "startLatitude",
    "startLongitude": "startLongitude",
    "endLatitude": "endLatitude",
    "endLongitude": "endLongitude",
    "locationName": "locationName",
    "parent": "parent",
    "parentId": "parentId",
    "favorite": "favorite",
    "pr": "pr",
    "purposeful": "purposeful",
    "autoCalcCalories": "autoCalcCalories",
    "elevationCorrected": "elevationCorrected",
    "atpActivity": "atpActivity",
    "aerobicTrainingEffect": "aerobicTrainingEffect",
    "anaerobicTrainingEffect": "anaerobicTrainingEffect",
    "activityTrainingLoad": "activityTrainingLoad",
    "vO2MaxValue": "vO2MaxValue",
    "eventTypeId": "eventTypeId",
}


def _gmt_text(ms: Any) -> str | None:
    f = num(ms)
    if f is None:
        return None
    return datetime.fromtimestamp(f / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def to_api_activity(exp: dict[str, Any]) -> dict[str, Any]:
    """One export activity in the shape (names and units) of the Connect API's activity JSON."""
    api: dict[str, Any] = {}
    for key, target in _RENAMED.items():
        if exp.get(key) is not None:
            api[target] = exp[key]
    for key, (target, factor) in _SCALED.items():
        f = num(exp.get(key))
        if f is not None:
            api[target] = round(f * factor, 3)
    api["startTimeGMT"] = _gmt_text(
        exp.get("startTimeGmt") if exp.get("startTimeGmt") is not None else exp.get("beginTimestamp")
    )
    api["startTimeLocal"] = _gmt_text(exp.get("startTimeLocal"))  # local wall clock stored as if UTC
    type_key = exp.get("activityType")
    if isinstance(type_key, dict):
        type_key = type_key.get("typeKey")
    if type_key:
        api["activityType"] = {"typeKey": str(type_key)}
    # The export counts one leg's steps per minute; the API reports both legs.
    double = num(exp.get("avgDoubleCadence"))
    run = num(exp.get("avgRunCadence"))
    if double is not None or run is not None:
        api["averageRunningCadenceInStepsPerMinute"] = double if double is not None else (run or 0.0) * 2
    maxd = num(exp.get("maxDoubleCadence"))
    if maxd is not None:
        api["maxRunningCadenceInStepsPerMinute"] = maxd
    return {k: v for k, v in api.items() if v is not None}


def _local_from_text(text: str | None) -> str | None:
    if not text:
        return None
    return text.replace(" ", "T")


def read(item: Input) -> Extracted:
    """The format registry's entry point (``formats.FORMATS``)."""
    return read_summarized(item.bytes(), item.name)


def read_summarized(data: bytes, name: str) -> Extracted:
    """A summarizedActivities JSON file: one ``garmin`` record per activity."""
    try:
        doc = msgspec.json.decode(data)
    except msgspec.DecodeError as exc:
        raise ImportFailed(f"malformed or truncated JSON: {exc}") from exc
    if json_kind(doc) != "garmin_export":
        raise NotAnActivity("not a Garmin summarizedActivities export")
    chunks = doc if isinstance(doc, list) else [doc]
    activities: list[dict[str, Any]] = []
    for chunk in chunks:
        if isinstance(chunk, dict):
            activities.extend(a for a in chunk.get("summarizedActivitiesExport") or [] if isinstance(a, dict))
    out = Extracted(kind="garmin_export")
    skipped = 0
    for exp in activities:
        if exp.get("activityId") is None:
            out.warnings.append("an activity without activityId was skipped")
            continue
        try:
            out.records.append(validated(to_record(to_api_activity(exp))))
        except (ImportFailed, NotAnActivity) as exc:
            skipped += 1
            if skipped <= 5:
                out.warnings.append(f"activity {exp.get('activityId')} skipped: {exc}")
    if skipped > 5:
        out.warnings.append(f"... {skipped - 5} more activities skipped")
    if not out.records and activities:
        raise ImportFailed("no activity of the export could be read")
    if not activities:
        raise NotAnActivity("the export lists no activities")
    return out


def to_record(api: dict[str, Any]) -> SourceRecord:
    try:
        return normaliser("garmin")(api)
    except (KeyError, TypeError, ValueError) as exc:
        raise ImportFailed(str(exc)) from exc
