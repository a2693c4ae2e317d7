"""TCX (Garmin Training Center) recordings: one record per file, keyed by its sha256.

Parsed with lxml with entity resolution and network access off.  The laps are
the device's own summary (timer time, distance, calories, heart rate), as a FIT
session is; trackpoints fill what the laps lack (heart rate only in the
trackpoints, elevation) and give the per-km splits.  A file holding only
courses (planned routes) is skipped.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from healthcache.importers.base import (
    Extracted,
    ImportFailed,
    Input,
    Limits,
    NotAnActivity,
    check_start,
    heart_rate,
    local_name,
    nonneg,
    num,
    parse_xml,
    positive,
    rounded,
    validated,
)
from healthcache.importers.gpx import climb, haversine, parse_time
from healthcache.model.records import HRSplit, SourceRecord
from healthcache.model.sports import normalise_sport
from healthcache.splits import from_samples as hr_splits
from healthcache.timeutil import parse_utc, utc_iso

TCX_SPORTS = {"running": "running", "biking": "cycling", "other": "other"}


def _kids(el: Any, name: str) -> list[Any]:
    return [c for c in el if local_name(c.tag) == name]


def _kid(el: Any, name: str) -> Any:
    for c in el:
        if local_name(c.tag) == name:
            return c
    return None


def _text(el: Any, *path: str) -> str | None:
    for name in path:
        if el is None:
            return None
        el = _kid(el, name)
    return el.text.strip() if el is not None and el.text else None


def read(item: Input) -> Extracted:
    """The format registry's entry point (``formats.FORMATS``)."""
    return read_tcx(item.bytes(), item.name, item.limits)


def read_tcx(data: bytes, name: str, limits: Limits | None = None) -> Extracted:
    """One record from a TCX document: the laps' summary, filled and split from the trackpoints."""
    seen = _Seen()
    for act in _activities(parse_xml(data, limits or Limits())):
        seen.add_activity(act)
    warns: list[str] = []
    start, end = _span(seen, warns)
    check_start(start)
    points = seen.points
    if not any(p[1] is not None for p in points) and any(p[3] > 0 for p in points):
        points = [(t, pd, hr, pd) for t, _, hr, pd in points]  # no distances written: measure the positions
    raw: dict[str, Any] = {
        "format": "tcx",
        "file": name,
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
        "sport": seen.sports[0] if len(set(seen.sports)) == 1 else "MultiSport",
        "creator": seen.creator,
        "start": utc_iso(start),
        "end": utc_iso(end),
        "laps": [{k: v for k, v in lap.items() if v is not None} for lap in seen.laps],
        **_from_trackpoints(points, seen.alts),
    }
    raw = {k: v for k, v in raw.items() if v is not None}
    return Extracted(records=[validated(normalise_raw(raw))], warnings=warns, kind="tcx")


def _activities(root: Any) -> list[Any]:
    """The document's Activity elements, those inside multisport sessions included."""
    if local_name(root.tag) != "TrainingCenterDatabase":
        raise ImportFailed(f"not a TCX document (root element {local_name(root.tag)})")
    activities = []
    for group in _kids(root, "Activities"):
        activities.extend(_kids(group, "Activity"))
        for multi in _kids(group, "MultiSportSession"):
            for part in multi.iter():
                if local_name(part.tag) == "Activity":
                    activities.append(part)
    if not activities:
        raise NotAnActivity("no activity (a TCX of courses or workouts only)")
    return activities


# A trackpoint as kept: time, the distance the device wrote, heart rate, distance measured from the positions.
_Point = tuple[datetime, float | None, float | None, float]


@dataclass
class _Seen:
    """What one pass over the activities keeps: sports, ids, laps, timed trackpoints, altitudes."""

    sports: list[str] = field(default_factory=list)
    laps: list[dict[str, Any]] = field(default_factory=list)
    points: list[_Point] = field(default_factory=list)
    alts: list[float] = field(default_factory=list)
    creator: str | None = None
    ids: list[datetime] = field(default_factory=list)

    def add_activity(self, act: Any) -> None:
        self.sports.append(act.get("Sport") or "Other")
        t = parse_time(_text(act, "Id"))
        if t:
            self.ids.append(t)
        self.creator = self.creator or _text(act, "Creator", "Name")
        pos = _Positions()  # the positions' distance runs on across an activity's laps
        for lap in _kids(act, "Lap"):
            self.laps.append(_lap_summary(lap))
            for track in _kids(lap, "Track"):
                for tp in _kids(track, "Trackpoint"):
                    self.add_trackpoint(tp, pos)

    def add_trackpoint(self, tp: Any, pos: _Positions) -> None:
        tt = parse_time(_text(tp, "Time"))
        d = num(_text(tp, "DistanceMeters"))
        pos.move(num(_text(tp, "Position", "LatitudeDegrees")), num(_text(tp, "Position", "LongitudeDegrees")))
        alt = num(_text(tp, "AltitudeMeters"))
        if alt is not None:
            self.alts.append(alt)
        if tt is not None:
            self.points.append((tt, d, heart_rate(_text(tp, "HeartRateBpm", "Value")), pos.distance))


@dataclass
class _Positions:
    """The distance walked along the positions so far (for files that write positions but no distances)."""

    last: tuple[float, float] | None = None
    distance: float = 0.0

    def move(self, lat: float | None, lon: float | None) -> None:
        if lat is None or lon is None:
            return
        if self.last is not None:
            self.distance += haversine(self.last[0], self.last[1], lat, lon)
        self.last = (lat, lon)


def _lap_summary(lap: Any) -> dict[str, Any]:
    return {
        "start": lap.get("StartTime"),
        "total_time_s": num(_text(lap, "TotalTimeSeconds")),
        "distance_m": num(_text(lap, "DistanceMeters")),
        "calories": num(_text(lap, "Calories")),
        "avg_hr": num(_text(lap, "AverageHeartRateBpm", "Value")),
        "max_hr": num(_text(lap, "MaximumHeartRateBpm", "Value")),
    }


def _span(seen: _Seen, warns: list[str]) -> tuple[datetime, datetime]:
    """Start and end: from the ids and laps when there are any (trackpoints only extend them when they agree)."""
    seen.points.sort(key=lambda p: p[0])
    points = seen.points
    starts = [t for t in (parse_time(lap["start"]) for lap in seen.laps) if t]
    if not (seen.ids or starts):
        if not points:
            raise NotAnActivity("the activity carries no times")
        return points[0][0], points[-1][0]
    start = min(seen.ids + starts)
    lap_ends = [
        ls + timedelta(seconds=lap["total_time_s"])
        for lap, ls in ((lap, parse_time(lap["start"])) for lap in seen.laps)
        if ls is not None and lap["total_time_s"] is not None
    ]
    if points and (points[0][0] > max([*lap_ends, start]) + timedelta(hours=1) or points[-1][0] < start):
        warns.append("the trackpoint times lie outside the laps' (an edited file); the summary comes from the laps")
        return start, max([*lap_ends, start])
    return start, max(lap_ends + ([points[-1][0]] if points else []) + [start])


def _from_trackpoints(points: list[_Point], alts: list[float]) -> dict[str, Any]:
    """The trackpoints' part of the payload (in the payload's key order): distance, heart rate, climb, splits."""
    track_d = [p[1] for p in points if p[1] is not None]
    hrs = [p[2] for p in points if p[2] is not None]
    splits = None
    if track_d:
        t0 = points[0][0]
        splits = hr_splits(((t - t0).total_seconds(), d, hr) for t, d, hr, _ in points)
    return {
        "track_distance_m": round(max(track_d) - min(track_d), 2) if track_d else None,
        "trackpoint_hr": {"avg": round(sum(hrs) / len(hrs), 1), "max": max(hrs), "n": len(hrs)} if hrs else None,
        "elevation_gain_m": round(climb(alts), 1) if alts else None,
        "hr_splits": [{"km": s.km, "duration_s": s.duration_s, "avg_hr": s.avg_hr, "max_hr": s.max_hr} for s in splits]
        if splits
        else None,
    }


def normalise_raw(raw: dict[str, Any]) -> SourceRecord:
    """The TCX record from its stored summary (pure: also used by unlink and rebuild)."""
    start, end = parse_utc(raw["start"]), parse_utc(raw["end"])
    check_start(start)
    laps = raw.get("laps", [])

    def lap_sum(key: str) -> float | None:
        vals = [nonneg(lap.get(key)) for lap in laps]
        present = [v for v in vals if v is not None]
        return sum(present) if present else None

    # Laps undercount when some are missing (Movescount), tracks when samples are sparse
    # or reset (pool swims): the larger of the two is the workout.
    candidates = [d for d in (positive(lap_sum("distance_m")), positive(raw.get("track_distance_m"))) if d]
    distance = max(candidates) if candidates else None
    weighted = [
        (heart_rate(lap.get("avg_hr")), nonneg(lap.get("total_time_s")) or 0.0)
        for lap in laps
        if heart_rate(lap.get("avg_hr")) is not None
    ]
    tp = raw.get("trackpoint_hr") or {}
    total_w = sum(w for _, w in weighted)
    if weighted and total_w > 0:
        avg_hr: float | None = sum((h or 0.0) * w for h, w in weighted) / total_w
    else:
        avg_hr = heart_rate(tp.get("avg"))
    maxes = [heart_rate(lap.get("max_hr")) for lap in laps] + [heart_rate(tp.get("max"))]
    max_hr = max((m for m in maxes if m is not None), default=None)
    sport_raw = raw.get("sport") or "Other"
    sport = normalise_sport("tcx", TCX_SPORTS.get(sport_raw.lower(), sport_raw))
    splits = raw.get("hr_splits")
    return SourceRecord(
        source="tcx",
        source_id=raw["sha256"],
        start_time=raw["start"],
        sport=sport,
        sport_raw=sport_raw,
        distance_m=rounded(positive(distance)),
        duration_s=rounded(nonneg((end - start).total_seconds())),
        moving_time_s=rounded(positive(lap_sum("total_time_s"))),
        elevation_gain_m=rounded(nonneg(raw.get("elevation_gain_m")), 1),
        calories=rounded(positive(lap_sum("calories"))),
        avg_hr=rounded(avg_hr, 1),
        max_hr=max_hr,
        device=raw.get("creator"),
        hr_splits=[HRSplit(**s) for s in splits] if splits else None,
        raw=raw,
    )
