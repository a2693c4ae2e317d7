"""Garmin Connect's payloads, read: activities (list entries and single activities) and detail samples.

Pure and cheap to import (``rebuild``, ``show`` and ``unlink`` read stored
payloads with it).  Every era Connect has answered in is read the same way:
the 2018-2021 lists' elapsed time in milliseconds, the single-activity payload
(``summaryDTO``), the detail payloads wrapped in their Java class name.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from healthcache.model.records import SourceRecord
from healthcache.model.sports import garmin_sport
from healthcache.sources.fields import payload_number, payload_text, validate
from healthcache.timeutil import utc_iso

SOURCE = "garmin"


def _garmin_time(text: str, key: str) -> datetime:
    """Garmin writes '2024-05-01 06:30:00' (sometimes with 'T' and '.0')."""
    try:
        return datetime.fromisoformat(text.strip().replace(" ", "T"))
    except ValueError as exc:
        raise ValueError(f"{key}: not a date-time: {text!r}") from exc


def _start(raw: dict[str, Any]) -> str:
    gmt = payload_text(raw, "startTimeGMT")
    if gmt:
        return utc_iso(_garmin_time(gmt, "startTimeGMT").replace(tzinfo=UTC))
    stamp = payload_number(raw, "beginTimestamp")  # milliseconds since the epoch
    if stamp is not None:
        return utc_iso(datetime.fromtimestamp(stamp / 1000, UTC))
    raise ValueError("startTimeGMT: missing (and no beginTimestamp)")


# An elapsed time this many times its neighbours is in milliseconds, not seconds: a
# pause 100 times the moving time does not happen (watches stop recording), while
# Connect's activity lists of 2018-2021 send ``elapsedDuration`` in ms.
MS_RATIO = 100.0


def _span_s(raw: dict[str, Any]) -> float | None:
    """endTimeGMT - startTimeGMT in seconds, when the payload has both (newer lists)."""
    end, start = payload_text(raw, "endTimeGMT"), payload_text(raw, "startTimeGMT")
    if not end or not start:
        return None
    try:
        return (_garmin_time(end, "endTimeGMT") - _garmin_time(start, "startTimeGMT")).total_seconds()
    except ValueError:
        return None


def elapsed_seconds(raw: dict[str, Any]) -> tuple[float | None, str]:
    """The elapsed time in seconds and how it was read.  Pure.

    ``elapsedDuration`` is checked against its neighbours (``duration``,
    ``movingDuration``, the span from ``startTimeGMT`` to ``endTimeGMT``, and
    ``distance / averageSpeed``): real lists of 2018 and 2021 give it in
    milliseconds beside ``duration`` in seconds, which read as seconds made a
    45-minute run last 31 days.
    """
    elapsed = payload_number(raw, "elapsedDuration")
    duration = payload_number(raw, "duration")
    distance, speed = payload_number(raw, "distance"), payload_number(raw, "averageSpeed")
    neighbours = [
        v
        for v in (
            duration,
            payload_number(raw, "movingDuration"),
            _span_s(raw),
            distance / speed if distance and speed and speed > 0 else None,
        )
        if v is not None and v > 0
    ]
    if not elapsed:
        return duration, "duration (no elapsedDuration)"
    if not neighbours:
        return elapsed, "elapsedDuration (nothing to check it against)"
    reference = max(neighbours)
    if elapsed <= reference * MS_RATIO:
        return elapsed, "elapsedDuration, seconds"
    if elapsed / 1000 >= min(neighbours) * 0.5:
        return elapsed / 1000, f"elapsedDuration in milliseconds ({elapsed:.0f} beside {reference:.0f} s)"
    return duration, f"elapsedDuration {elapsed:.0f} fits neither unit; duration used"


# What ``activity-service/activity/{id}`` calls the list's fields: the summary is nested in
# ``summaryDTO`` and the type is ``activityTypeDTO``; its ``elapsedDuration`` is in seconds
# (2018 to 2026 alike) where the lists of 2018-2021 sent milliseconds.
_SUMMARY_NAMES = {
    "averageRunCadence": "averageRunningCadenceInStepsPerMinute",
    "averageBikeCadence": "averageBikingCadenceInRevPerMinute",
    "averageSwimCadence": "averageSwimCadenceInStrokesPerMinute",
    "averagePower": "avgPower",
}


def list_shape(raw: dict[str, Any]) -> dict[str, Any]:
    """An activity payload of either endpoint with the list's field names.  Pure.

    The list payload is returned as it is; an ``activity-service/activity/{id}``
    payload (``summaryDTO``, ``activityTypeDTO``) is flattened onto the list's
    names, so both normalise alike.  The stored raw payload is never this view.
    """
    summary = raw.get("summaryDTO")
    if not isinstance(summary, dict) or "activityType" in raw:
        return raw
    flat = {k: v for k, v in summary.items() if k not in _SUMMARY_NAMES}
    flat.update({new: summary[old] for old, new in _SUMMARY_NAMES.items() if old in summary})
    for key in ("activityId", "activityName", "parentId"):
        if key in raw:
            flat[key] = raw[key]
    flat["activityType"] = raw.get("activityTypeDTO")
    return flat


def normalise_activity(raw: dict[str, Any]) -> SourceRecord:
    """One activity as Garmin sent it: an entry of the activity list (``activitylist-service``)
    or the single-activity payload (``activity-service/activity/{id}``, see ``list_shape``).

    Raises ValueError (or KeyError/TypeError) naming the field when the payload
    is unusable; the record is then skipped and reported, never half-imported.
    """
    if not isinstance(raw, dict):
        raise TypeError(f"expected an activity object, got {type(raw).__name__}")
    stored, raw = raw, list_shape(raw)
    activity_id = raw.get("activityId")
    if isinstance(activity_id, bool) or not isinstance(activity_id, int | str) or not str(activity_id).strip():
        raise ValueError(f"activityId: missing or not an id: {activity_id!r}")
    kind = raw.get("activityType")
    type_key = None
    parent = None
    if kind is not None:
        if not isinstance(kind, dict):
            raise ValueError(f"activityType: expected an object, got {kind!r}")
        type_key = payload_text(kind, "typeKey")
        parent = kind.get("parentTypeId")
    local = payload_text(raw, "startTimeLocal")
    cadence = (
        payload_number(raw, "averageRunningCadenceInStepsPerMinute")
        or payload_number(raw, "averageBikingCadenceInRevPerMinute")
        or payload_number(raw, "averageSwimCadenceInStrokesPerMinute")
    )
    record = SourceRecord(
        source=SOURCE,
        source_id=str(activity_id).strip(),
        start_time=_start(raw),
        sport=garmin_sport(type_key, parent),
        sport_raw=type_key,
        start_time_local=_garmin_time(local, "startTimeLocal").replace(microsecond=0).isoformat() if local else None,
        name=payload_text(raw, "activityName"),
        distance_m=payload_number(raw, "distance"),
        duration_s=elapsed_seconds(raw)[0],  # elapsed, as the cache defines it
        moving_time_s=payload_number(raw, "movingDuration"),
        elevation_gain_m=payload_number(raw, "elevationGain"),
        calories=payload_number(raw, "calories"),
        avg_hr=payload_number(raw, "averageHR"),
        max_hr=payload_number(raw, "maxHR"),
        avg_cadence=cadence,
        avg_power=payload_number(raw, "avgPower"),
        raw=stored,
    )
    return validate(record)


# --------------------------------------------------------------------------- detail samples (HR splits)


# The details payload Connect sent until about 2019 is wrapped in its Java class name
# and says ``measurements``/``metrics`` where today's says ``metricDescriptors``/
# ``activityDetailMetrics``; its ``sumDistance`` is in kilometres (unit "kilometer").
_LEGACY_WRAPPER = "com.garmin.activity.details.json.ActivityDetails"
_METRES_PER_UNIT = {"meter": 1.0, "centimeter": 0.01, "kilometer": 1000.0, "mile": 1609.344, "foot": 0.3048}


def _current_shape(details: dict[str, Any]) -> dict[str, Any]:
    """A details payload of either era in today's shape (descriptors + positional metrics)."""
    inner = details.get(_LEGACY_WRAPPER)
    if isinstance(inner, dict):
        details = inner
    if "metricDescriptors" in details or "activityDetailMetrics" in details:
        return details
    return {"metricDescriptors": details.get("measurements"), "activityDetailMetrics": details.get("metrics")}


def _unit_key(descriptor: Any) -> str | None:
    unit = descriptor.get("unit") if isinstance(descriptor, dict) else None
    if isinstance(unit, dict):
        unit = unit.get("key")
    return unit.lower() if isinstance(unit, str) else None


def detail_series(
    details: Any, parse: Callable[[dict[str, Any]], list[dict[str, Any]]]
) -> tuple[list[Any], list[Any], list[Any]]:
    """(seconds, metres, bpm) from an activity details payload of any era.  Pure.

    ``parse`` is garminconnect's ``parse_activity_detail_metrics``; distances are
    scaled to metres from the ``sumDistance`` descriptor's unit (kilometres in
    the 2018 payloads, which read as metres never reached a first kilometre).
    """
    if not isinstance(details, dict):
        return [], [], []
    shaped = _current_shape(details)
    descriptors = shaped.get("metricDescriptors")
    if not isinstance(descriptors, list) or not isinstance(shaped.get("activityDetailMetrics"), list):
        return [], [], []
    times, metres, bpm = _series(parse(shaped))
    unit = next((_unit_key(d) for d in descriptors if isinstance(d, dict) and d.get("key") == "sumDistance"), None)
    scale = _METRES_PER_UNIT.get(unit or "meter")
    if scale is None:
        return [], [], []  # a distance unit we cannot convert: no splits rather than wrong ones
    if scale != 1.0:
        metres = [m * scale if isinstance(m, int | float) and not isinstance(m, bool) else m for m in metres]
    return times, metres, bpm


def _series(samples: list[dict[str, Any]]) -> tuple[list[Any], list[Any], list[Any]]:
    """(seconds, metres, bpm) from parsed detail samples; the time key varies by device."""
    times: list[Any] = []
    for key, scale, relative in (
        ("sumElapsedDuration", 1.0, False),
        ("sumDuration", 1.0, False),
        ("directTimestamp", 0.001, True),
    ):
        if any(isinstance(s.get(key), int | float) for s in samples):
            values = [s.get(key) for s in samples]
            numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
            origin = min(numbers) if relative and numbers else 0.0
            times = [
                (v - origin) * scale if isinstance(v, int | float) and not isinstance(v, bool) else None for v in values
            ]
            break
    if not times:
        return [], [], []
    return times, [s.get("sumDistance") for s in samples], [s.get("directHeartRate") for s in samples]
