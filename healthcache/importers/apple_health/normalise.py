"""An Apple Health workout as a record: the stored payload (workout, sample summary, splits) and its normaliser."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from healthcache.importers.apple_health.dates import aware, epoch
from healthcache.importers.apple_health.samples import DISTANCE_TYPES, HR_TYPE, METRES, Samples, one_recorder
from healthcache.importers.base import check_start, heart_rate, local_iso, nonneg, num, positive, rounded
from healthcache.model.records import HRSplit, SourceRecord
from healthcache.model.sports import normalise_sport
from healthcache.splits import along_distance
from healthcache.timeutil import utc_iso

ENERGY_TYPES = ("HKQuantityTypeIdentifierActiveEnergyBurned",)
KCAL = {"kcal": 1.0, "Cal": 1.0, "kJ": 1 / 4.184, "cal": 0.001, "J": 1 / 4184}
SECONDS = {"s": 1.0, "min": 60.0, "hr": 3600.0, "h": 3600.0, "ms": 0.001, "d": 86400.0}


def _quantity(text: str | None) -> tuple[float, str] | None:
    """``"2500 cm"`` -> (2500.0, "cm")."""
    if not text:
        return None
    parts = text.strip().split()
    if not parts:
        return None
    value = num(parts[0])
    if value is None:
        return None
    return value, (parts[1] if len(parts) > 1 else "")


def workout_id(w: dict[str, Any]) -> str:
    """Stable across re-exports: type, UTC start and recording app, not the export's date format."""
    start = utc_iso(datetime.fromtimestamp(epoch(w["startDate"]), tz=UTC))
    key = f"{w.get('workoutActivityType')}|{start}|{w.get('sourceName', '')}"
    return hashlib.sha256(key.encode()).hexdigest()[:20]


def payload(w: dict[str, Any], kept: Samples, export_name: str) -> dict[str, Any]:
    s, e = epoch(w["startDate"]), epoch(w["endDate"])
    window_hr = [(t, v) for t, v in kept.heart_rate(s, e) if 20.0 <= v <= 250.0]
    raw: dict[str, Any] = {"format": "apple_health", "id": workout_id(w), "export": export_name}
    raw.update({k: v for k, v in w.items() if isinstance(v, (str, dict, list))})
    if window_hr:
        values = [v for _, v in window_hr]
        raw["heart_rate_samples"] = {"n": len(values), "avg": round(sum(values) / len(values), 1), "max": max(values)}
    splits = along_distance(s, window_hr, one_recorder(w, kept.distance(s - 1, e + 1)))
    if splits:
        raw["hr_splits"] = [
            {"km": x.km, "duration_s": x.duration_s, "avg_hr": x.avg_hr, "max_hr": x.max_hr} for x in splits
        ]
    return raw


def _stat(raw: dict[str, Any], type_name: str) -> dict[str, str]:
    stats = raw.get("statistics") or {}
    return stats.get(type_name) or {}


def _with_unit(value: Any, unit: Any, table: dict[str, float]) -> float | None:
    v = num(value)
    if v is None:
        return None
    return v * table.get(str(unit or ""), 1.0)


def normalise_raw(raw: dict[str, Any]) -> SourceRecord:
    """The Apple Health record from its stored workout (pure: also used by unlink and rebuild)."""
    start_dt, end_dt = aware(raw["startDate"]), aware(raw["endDate"])
    start = check_start(start_dt.astimezone(UTC))
    meta = raw.get("metadata") or {}
    tz_name = meta.get("HKTimeZone")
    local = start_dt
    if tz_name:
        try:
            from zoneinfo import ZoneInfo

            local = start.astimezone(ZoneInfo(tz_name))
        except (KeyError, ValueError, OSError):
            tz_name = None
    distance = None
    for t in DISTANCE_TYPES:
        st = _stat(raw, t)
        if st.get("sum"):
            distance = _with_unit(st["sum"], st.get("unit"), METRES)
            break
    if distance is None:
        distance = _with_unit(raw.get("totalDistance"), raw.get("totalDistanceUnit"), METRES)
    energy = None
    for t in ENERGY_TYPES:
        st = _stat(raw, t)
        if st.get("sum"):
            energy = _with_unit(st["sum"], st.get("unit"), KCAL)
    if energy is None:
        energy = _with_unit(raw.get("totalEnergyBurned"), raw.get("totalEnergyBurnedUnit"), KCAL)
    hr_stat = _stat(raw, HR_TYPE)
    samples = raw.get("heart_rate_samples") or {}
    avg_hr = heart_rate(hr_stat.get("average")) or heart_rate(samples.get("avg"))
    max_hr = heart_rate(hr_stat.get("maximum")) or heart_rate(samples.get("max"))
    active = _with_unit(raw.get("duration"), raw.get("durationUnit") or "min", SECONDS)
    ascent = _quantity(meta.get("HKElevationAscended"))
    gain = ascent[0] * METRES.get(ascent[1], 1.0) if ascent else None
    activity_type = raw.get("workoutActivityType")
    splits = raw.get("hr_splits")
    return SourceRecord(
        source="apple_health",
        source_id=raw["id"],
        start_time=utc_iso(start),
        sport=normalise_sport("apple_health", activity_type),
        sport_raw=activity_type,
        start_time_local=local_iso(local),
        timezone=tz_name,
        distance_m=rounded(positive(distance), 1),
        duration_s=rounded(nonneg((end_dt - start_dt).total_seconds()), 1),
        moving_time_s=rounded(positive(active), 1),
        elevation_gain_m=rounded(nonneg(gain), 1),
        calories=rounded(positive(energy), 1),
        avg_hr=rounded(avg_hr, 1),
        max_hr=rounded(max_hr, 1),
        device=raw.get("sourceName") or None,
        hr_splits=[HRSplit(**x) for x in splits] if splits else None,
        raw=raw,
    )
