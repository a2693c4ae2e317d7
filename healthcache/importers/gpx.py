"""GPX recordings (lxml, entities and network off): one record per file, keyed by its sha256.

All tracks of a file make one workout (GPS loggers split a day into several
"ACTIVE LOG" tracks).  A file without a timed track is not a recording:
routes, waypoint lists and planned tracks are skipped with that reason, as are
tracks whose clock was never set and tracks where most points carry no time.
Apple Health's workout-route GPX files belong to their export's workouts and
are skipped here.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
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
from healthcache.model.records import HRSplit, SourceRecord
from healthcache.model.sports import normalise_sport
from healthcache.splits import from_samples as hr_splits
from healthcache.timeutil import parse_utc, utc_iso

# Strava writes its activity type as a number in <trk><type>.
STRAVA_GPX_TYPES = {"1": "Ride", "9": "Run", "10": "Walk", "16": "Swim"}
MOVING_SPEED = 0.3  # m/s; slower than this between two points is standing still
EARTH_R = 6371008.8


def haversine(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_R * math.asin(min(1.0, math.sqrt(a)))


def parse_time(text: str | None) -> datetime | None:
    """An ISO 8601 time as GPX and TCX write it; a time without an offset is UTC."""
    if not text:
        return None
    try:
        dt = datetime.fromisoformat(text.strip().replace("z", "Z"))
    except ValueError:
        return None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def climb(elevations: list[float]) -> float:
    """Elevation gain after a 5-point moving average, which keeps GPS altitude noise out."""
    if len(elevations) < 2:
        return 0.0
    w = 2
    smooth = []
    for i in range(len(elevations)):
        lo, hi = max(0, i - w), min(len(elevations), i + w + 1)
        smooth.append(sum(elevations[lo:hi]) / (hi - lo))
    return sum(max(0.0, b - a) for a, b in itertools.pairwise(smooth))


def _child_text(el: Any, name: str) -> str | None:
    for c in el:
        if local_name(c.tag) == name:
            text: str | None = c.text
            return text
    return None


def _point_hr(pt: Any) -> float | None:
    for c in pt:
        if local_name(c.tag) == "extensions":
            for e in c.iter():
                if local_name(e.tag) in ("hr", "heartrate", "HeartRate", "heart_rate"):
                    hr = heart_rate(e.text)
                    if hr is not None:
                        return hr
    return None


def read(item: Input) -> Extracted:
    """The format registry's entry point (``formats.FORMATS``)."""
    return read_gpx(item.bytes(), item.name, item.limits)


def read_gpx(data: bytes, name: str, limits: Limits | None = None) -> Extracted:
    """One record from all the timed tracks of a GPX document."""
    root = parse_xml(data, limits or Limits())
    creator = _recording_creator(root)
    tracks = [t for t in root if local_name(t.tag) == "trk"]
    walk = _Walk()
    for trk in tracks:
        walk.add_track(trk)
    _check_timed(walk, has_tracks=bool(tracks))
    times = [s[0] for s in walk.samples]
    start, end = min(times), max(times)
    check_start(start)
    if end <= start:
        raise NotAnActivity("every point carries the same time: no duration")
    walk.samples.sort(key=lambda s: s[0])
    splits = hr_splits(((t - start).total_seconds(), d, hr) for t, d, hr in walk.samples)
    hrs = walk.hrs
    raw: dict[str, Any] = {
        "format": "gpx",
        "file": name,
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
        "creator": creator,
        "name": walk.name,
        "type": walk.type,
        "start": utc_iso(start),
        "end": utc_iso(end),
        "points": walk.total_points,
        "timed_points": walk.timed_points,
        "distance_m": round(walk.distance, 1),
        "elevation_gain_m": round(walk.gain, 1),
        "moving_time_s": round(walk.moving, 1),
        "avg_hr": round(sum(hrs) / len(hrs), 1) if hrs else None,
        "max_hr": max(hrs) if hrs else None,
        "hr_splits": [_split_dict(s) for s in splits] if splits else None,
    }
    raw = {k: v for k, v in raw.items() if v is not None}
    return Extracted(records=[validated(normalise_raw(raw))], kind="gpx")


def _recording_creator(root: Any) -> str | None:
    """The document's creator, refusing what is not a GPX or is an Apple Health route (imported with its workout)."""
    if local_name(root.tag) != "gpx":
        raise ImportFailed(f"not a GPX document (root element {local_name(root.tag)})")
    creator = root.get("creator") or None
    if creator and "apple health export" in creator.lower():
        raise NotAnActivity("an Apple Health workout route: imported with the workout in its export.xml")
    return creator


def _check_timed(walk: _Walk, has_tracks: bool) -> None:
    """Refuse, with the reason, a document that is not a recording: no track, no times, or too few times."""
    if not has_tracks or walk.total_points == 0:
        raise NotAnActivity("no track (a route or waypoints only), not a recorded activity")
    if walk.timed_points == 0:
        raise NotAnActivity("the track has no times (a planned route, not a recording)")
    if walk.timed_points * 2 < walk.total_points:
        raise NotAnActivity(
            f"only {walk.timed_points} of {walk.total_points} points carry a time: no reliable start or duration"
        )


@dataclass
class _Walk:
    """One pass along every track's points: distance, climb, moving time, and the timed samples with heart rate."""

    name: str | None = None
    type: str | None = None
    total_points: int = 0
    timed_points: int = 0
    distance: float = 0.0
    gain: float = 0.0
    moving: float = 0.0
    samples: list[tuple[datetime, float, float | None]] = field(default_factory=list)
    hrs: list[float] = field(default_factory=list)

    def add_track(self, trk: Any) -> None:
        self.name = self.name or (_child_text(trk, "name") or "").strip() or None
        self.type = self.type or (_child_text(trk, "type") or "").strip() or None
        for seg in trk:
            if local_name(seg.tag) == "trkseg":
                self.add_segment(seg)

    def add_segment(self, seg: Any) -> None:
        """A segment's points: distance runs on across segments, moving time and climb do not."""
        prev: tuple[float, float] | None = None
        prev_t: datetime | None = None
        prev_d = self.distance
        eles: list[float] = []
        for pt in seg:
            if local_name(pt.tag) != "trkpt":
                continue
            lat, lon = num(pt.get("lat")), num(pt.get("lon"))
            if lat is None or lon is None or abs(lat) > 90 or abs(lon) > 180:
                continue
            self.total_points += 1
            if prev is not None:
                self.distance += haversine(prev[0], prev[1], lat, lon)
            prev = (lat, lon)
            ele = num(_child_text(pt, "ele"))
            if ele is not None:
                eles.append(ele)
            t = parse_time(_child_text(pt, "time"))
            if t is None:
                continue
            self.timed_points += 1
            hr = _point_hr(pt)
            if hr is not None:
                self.hrs.append(hr)
            if prev_t is not None:
                dt = (t - prev_t).total_seconds()
                if dt > 0 and (self.distance - prev_d) / dt >= MOVING_SPEED:
                    self.moving += dt
            prev_t, prev_d = t, self.distance
            self.samples.append((t, self.distance, hr))
        self.gain += climb(eles)


def _split_dict(s: HRSplit) -> dict[str, Any]:
    return {
        k: v
        for k, v in (("km", s.km), ("duration_s", s.duration_s), ("avg_hr", s.avg_hr), ("max_hr", s.max_hr))
        if v is not None
    }


def track_sport(source: str, raw_type: str | None) -> str:
    """A track's type through the source's table, then Garmin's (Garmin Connect writes its typeKeys)."""
    if not raw_type:
        return "other"
    sport = normalise_sport(source, STRAVA_GPX_TYPES.get(raw_type, raw_type))
    return sport if sport != "other" else normalise_sport("garmin", raw_type)


def normalise_raw(raw: dict[str, Any]) -> SourceRecord:
    """The GPX record from its stored summary (pure: also used by unlink and rebuild)."""
    start, end = parse_utc(raw["start"]), parse_utc(raw["end"])
    check_start(start)
    splits = raw.get("hr_splits")
    return SourceRecord(
        source="gpx",
        source_id=raw["sha256"],
        start_time=raw["start"],
        sport=track_sport("gpx", raw.get("type")),
        sport_raw=raw.get("type"),
        name=raw.get("name"),
        distance_m=rounded(positive(raw.get("distance_m")), 1),
        duration_s=rounded(nonneg((end - start).total_seconds()), 1),
        moving_time_s=rounded(positive(raw.get("moving_time_s")), 1),
        elevation_gain_m=rounded(nonneg(raw.get("elevation_gain_m")), 1),
        avg_hr=heart_rate(raw.get("avg_hr")),
        max_hr=heart_rate(raw.get("max_hr")),
        device=raw.get("creator"),
        hr_splits=[HRSplit(**s) for s in splits] if splits else None,
        raw=raw,
    )
