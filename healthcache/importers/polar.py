"""Polar Flow training sessions (account data export, one JSON file per session).

The session id is in the file name (``training-session-<date>-<id>-<uuid>.json``),
so the orchestrator decides which sessions are new before opening any file.
Times in the file are the watch's wall clock; ``timeZoneOffset`` (minutes east
of UTC) turns them into UTC.  A session with several exercises (a triathlon)
is one multisport workout.  The raw payload keeps the summary, never the
samples.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from healthcache.importers.base import (
    Extracted,
    ImportFailed,
    Input,
    NotAnActivity,
    check_start,
    heart_rate,
    local_iso,
    nonneg,
    num,
    positive,
    rounded,
    validated,
)
from healthcache.importers.detect import json_kind, polar_session_id
from healthcache.model.records import HRSplit, SourceRecord
from healthcache.model.sports import normalise_sport
from healthcache.splits import from_samples as hr_splits
from healthcache.timeutil import utc_iso

_DURATION = re.compile(r"^P(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$")
EXERCISE_KEYS = (
    "sport",
    "startTime",
    "stopTime",
    "timezoneOffset",
    "duration",
    "distance",
    "kiloCalories",
    "ascent",
    "descent",
    "heartRate",
    "speed",
    "cadence",
    "power",
)


def iso_duration(text: Any) -> float | None:
    """Seconds in an ISO 8601 duration such as PT4819.500S or PT1H2M3S."""
    if isinstance(text, (int, float)):
        return float(text)
    if not isinstance(text, str):
        return None
    m = _DURATION.match(text.strip())
    if not m:
        return None
    d, h, mi, s = (float(x) if x else 0.0 for x in m.groups())
    return d * 86400 + h * 3600 + mi * 60 + s


def _local(text: Any) -> tuple[datetime, bool] | None:
    """A Polar time: wall clock without offset (False) or an explicit instant (True)."""
    if not isinstance(text, str) or not text:
        return None
    try:
        dt = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return (dt, dt.tzinfo is not None)


def _offset_minutes(*candidates: Any) -> int | None:
    for c in candidates:
        f = num(c)
        if f is not None and abs(f) <= 14 * 60:
            return int(f)
    return None


def read(item: Input) -> Extracted:
    """The format registry's entry point (``formats.FORMATS``)."""
    return read_polar(item.bytes(), item.name)


def read_polar(data: bytes, name: str) -> Extracted:
    try:
        doc = msgspec.json.decode(data)
    except msgspec.DecodeError as exc:
        raise ImportFailed(f"malformed or truncated JSON: {exc}") from exc
    if json_kind(doc) != "polar":
        raise NotAnActivity("not a Polar training session")
    session_id = polar_session_id(name)
    if session_id is None:
        ident = doc.get("identifier")
        session_id = str(ident.get("id")) if isinstance(ident, dict) and ident.get("id") else None
    if session_id is None:
        session_id = hashlib.sha256(data).hexdigest()[:20]
    exercises = [e for e in doc.get("exercises", []) if isinstance(e, dict)]
    warns: list[str] = []
    offset = _offset_minutes(doc.get("timeZoneOffset"), *(e.get("timezoneOffset") for e in exercises))
    start_local = _local(doc.get("startTime"))
    if start_local is None:
        raise ImportFailed("the session has no readable startTime")
    if not start_local[1] and offset is None:
        warns.append("no time-zone offset in the session; its wall-clock start was taken as UTC")

    splits = None
    if len(exercises) == 1:
        splits = _splits(exercises[0])
    raw: dict[str, Any] = {
        "format": "polar",
        "session_id": session_id,
        "file": name,
        "name": doc.get("name"),
        "startTime": doc.get("startTime"),
        "stopTime": doc.get("stopTime"),
        "timeZoneOffset": offset,
        "duration": doc.get("duration"),
        "distance": doc.get("distance"),
        "kiloCalories": doc.get("kiloCalories"),
        "sport": doc.get("sport"),
        "exercises": [{k: e[k] for k in EXERCISE_KEYS if e.get(k) is not None} for e in exercises],
        "hr_splits": [{"km": s.km, "duration_s": s.duration_s, "avg_hr": s.avg_hr, "max_hr": s.max_hr} for s in splits]
        if splits
        else None,
    }
    raw = {k: v for k, v in raw.items() if v is not None}
    return Extracted(records=[validated(normalise_raw(raw))], warnings=warns, kind="polar")


def _splits(ex: dict[str, Any]) -> list[HRSplit] | None:
    samples = ex.get("samples")
    if not isinstance(samples, dict):
        return None
    by_time: dict[str, list[Any]] = {}
    for key, slot in (("heartRate", 0), ("distance", 1)):
        for s in samples.get(key) or []:
            if isinstance(s, dict) and isinstance(s.get("dateTime"), str):
                by_time.setdefault(s["dateTime"], [None, None])[slot] = s.get("value")
    rows = []
    for t, (hr, d) in by_time.items():
        parsed = _local(t)
        if parsed is not None:
            rows.append((parsed[0].replace(tzinfo=None), nonneg(d), heart_rate(hr)))
    if len(rows) < 2:
        return None
    rows.sort(key=lambda r: r[0])
    t0 = rows[0][0]
    return hr_splits(((t - t0).total_seconds(), d, hr) for t, d, hr in rows)


def normalise_raw(raw: dict[str, Any]) -> SourceRecord:
    """The Polar record from its stored summary (pure: also used by unlink and rebuild)."""
    parsed = _local(raw.get("startTime"))
    if parsed is None:
        raise ValueError("a Polar payload without startTime")
    wall, explicit = parsed
    offset = raw.get("timeZoneOffset")
    if explicit:
        start = wall.astimezone(UTC)
        local = wall
    else:
        start = (wall - timedelta(minutes=offset or 0)).replace(tzinfo=UTC)
        local = wall
    check_start(start)
    exercises = raw.get("exercises") or []
    sports = [str(e.get("sport")) for e in exercises if e.get("sport")]
    sport_raw: str | None
    if len(set(sports)) > 1:
        sport, sport_raw = "multisport", "+".join(sports)
    else:
        sport_raw = sports[0] if sports else (raw.get("sport") or None)
        sport = normalise_sport("polar", sport_raw.lower() if sport_raw else None)

    def total(key: str) -> float | None:
        vals = [nonneg(e.get(key)) for e in exercises]
        present = [v for v in vals if v is not None]
        return sum(present) if present else None

    duration = iso_duration(raw.get("duration"))
    if duration is None:
        durs = [iso_duration(e.get("duration")) for e in exercises]
        duration = sum(d for d in durs if d is not None) if any(d is not None for d in durs) else None
    hrs = [e.get("heartRate") for e in exercises if isinstance(e.get("heartRate"), dict)]
    avgs = [
        (heart_rate(h.get("avg")), iso_duration(e.get("duration")) or 0.0) for e, h in zip(exercises, hrs, strict=False)
    ]
    avgs = [(a, w) for a, w in avgs if a is not None]
    if avgs and sum(w for _, w in avgs) > 0:
        avg_hr: float | None = sum((a or 0.0) * w for a, w in avgs) / sum(w for _, w in avgs)
    elif avgs:
        avg_hr = avgs[0][0]
    else:
        avg_hr = None
    max_hr = max((m for m in (heart_rate(h.get("max")) for h in hrs) if m is not None), default=None)
    single = exercises[0] if len(exercises) == 1 else {}
    cadence = _dict(single.get("cadence"))
    power = _dict(single.get("power"))
    splits = raw.get("hr_splits")
    return SourceRecord(
        source="polar",
        source_id=str(raw["session_id"]),
        start_time=utc_iso(start),
        sport=sport,
        sport_raw=sport_raw,
        start_time_local=local_iso(local),
        name=raw.get("name") or None,
        distance_m=rounded(positive(raw.get("distance")) or positive(total("distance"))),
        duration_s=rounded(nonneg(duration)),
        elevation_gain_m=rounded(total("ascent"), 1),
        calories=rounded(positive(raw.get("kiloCalories")) or positive(total("kiloCalories"))),
        avg_hr=rounded(avg_hr, 1),
        max_hr=max_hr,
        avg_cadence=rounded(positive(cadence.get("avg"))),
        avg_power=rounded(positive(power.get("avg"))),
        hr_splits=[HRSplit(**s) for s in splits] if splits else None,
        raw=raw,
    )


def _dict(value: Any) -> dict[str, Any]:
    """A nested summary object, or an empty one where the export has none (or something else)."""
    return value if isinstance(value, dict) else {}
