"""Strava's payloads, read: SummaryActivity objects and activity streams.  Pure.

What is stored under ``raw["strava"]`` is the SummaryActivity JSON object
exactly as Strava sent it in ``GET /athlete/activities`` (see ``client``);
``normalise_activity`` reads that JSON.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from healthcache.model.records import SourceRecord
from healthcache.model.sports import family, normalise_sport
from healthcache.sources.fields import payload_number, payload_text, validate
from healthcache.timeutil import utc_iso

SOURCE = "strava"
FOOT_FAMILIES = frozenset({"running", "walking"})


def _timezone(value: str | None) -> str | None:
    """'(GMT-08:00) America/Los_Angeles' -> 'America/Los_Angeles'."""
    if not value:
        return None
    name = value.rsplit(")", 1)[-1].strip()
    return name or None


def normalise_activity(raw: dict[str, Any]) -> SourceRecord:
    """One SummaryActivity JSON object as Strava sent it.

    Strava's running (and walking) cadence counts one foot (strides per
    minute); it is doubled to steps per minute, the unit Garmin and FIT use.
    """
    if not isinstance(raw, dict):
        raise TypeError(f"expected an activity object, got {type(raw).__name__}")
    activity_id = raw.get("id")
    if isinstance(activity_id, bool) or not isinstance(activity_id, int | str) or not str(activity_id).strip():
        raise ValueError(f"id: missing or not an id: {activity_id!r}")
    start = payload_text(raw, "start_date")
    if not start:
        raise ValueError("start_date: missing")
    try:
        started = datetime.fromisoformat(start)
    except ValueError as exc:
        raise ValueError(f"start_date: not a date-time: {start!r}") from exc
    if started.tzinfo is None:
        started = started.replace(tzinfo=UTC)
    local = payload_text(raw, "start_date_local")
    if local:
        try:
            local = datetime.fromisoformat(local.rstrip("Z")).replace(tzinfo=None).isoformat()
        except ValueError as exc:
            raise ValueError(f"start_date_local: not a date-time: {local!r}") from exc
    sport_raw = payload_text(raw, "sport_type") or payload_text(raw, "type")
    sport = normalise_sport(SOURCE, sport_raw)
    cadence = payload_number(raw, "average_cadence")
    if cadence is not None and family(sport) in FOOT_FAMILIES:
        cadence *= 2
    external = raw.get("external_id")
    record = SourceRecord(
        source=SOURCE,
        source_id=str(activity_id).strip(),
        start_time=utc_iso(started),
        sport=sport,
        sport_raw=sport_raw,
        start_time_local=local,
        timezone=_timezone(payload_text(raw, "timezone")),
        name=payload_text(raw, "name"),
        distance_m=payload_number(raw, "distance"),
        duration_s=payload_number(raw, "elapsed_time"),
        moving_time_s=payload_number(raw, "moving_time"),
        elevation_gain_m=payload_number(raw, "total_elevation_gain"),
        calories=payload_number(raw, "calories"),
        avg_hr=payload_number(raw, "average_heartrate"),
        max_hr=payload_number(raw, "max_heartrate"),
        avg_cadence=cadence,
        avg_power=payload_number(raw, "average_watts"),
        device=payload_text(raw, "device_name"),
        external_id=str(external) if isinstance(external, str | int) and not isinstance(external, bool) else None,
        raw=raw,
    )
    return validate(record)


def stream_series(streams: Any) -> tuple[list[Any], list[Any], list[Any]]:
    """(seconds, metres, bpm) from a streams answer of either shape.  Pure.

    With ``key_by_type=true`` Strava answers ``{"time": {"data": [...]}, ...}``;
    without it (as recorded in 2014) a list of ``{"type": "time", "data": [...]}``.
    A stream that is missing gives an empty series (and so no splits).
    """
    if isinstance(streams, list):
        streams = {s.get("type"): s for s in streams if isinstance(s, dict) and isinstance(s.get("type"), str)}
    if not isinstance(streams, dict):
        return [], [], []

    def data(kind: str) -> list[Any]:
        stream = streams.get(kind)
        values = stream.get("data") if isinstance(stream, dict) else None
        return values if isinstance(values, list) else []

    return data("time"), data("distance"), data("heartrate")
