"""What is kept of the samples: workout time windows, and the HR and distance samples inside them.

Kept in flat arrays so memory grows with the samples inside workouts, never
with the export; which recorder's distance counts is decided here too.
"""

from __future__ import annotations

import bisect
from array import array
from datetime import timedelta
from typing import Any

from healthcache.importers.apple_health.dates import aware

HR_TYPE = "HKQuantityTypeIdentifierHeartRate"
DISTANCE_TYPES = frozenset(
    {
        "HKQuantityTypeIdentifierDistanceWalkingRunning",
        "HKQuantityTypeIdentifierDistanceCycling",
        "HKQuantityTypeIdentifierDistanceSwimming",
        "HKQuantityTypeIdentifierDistanceWheelchair",
        "HKQuantityTypeIdentifierDistanceDownhillSnowSports",
        "HKQuantityTypeIdentifierDistanceCrossCountrySkiing",
        "HKQuantityTypeIdentifierDistanceRowing",
        "HKQuantityTypeIdentifierDistancePaddleSports",
    }
)
METRES = {"m": 1.0, "km": 1000.0, "mi": 1609.344, "yd": 0.9144, "ft": 0.3048, "cm": 0.01, "in": 0.0254}


class Windows:
    """Workout time windows, and the (date, hour) prefixes a sample inside one must start with."""

    def __init__(self, workouts: list[dict[str, Any]]) -> None:
        spans = []
        self.prefixes: set[str] = set()
        self.prefix_len = 13
        for w in workouts:
            try:
                ds, de = aware(w["startDate"]), aware(w["endDate"])
            except (KeyError, ValueError, IndexError):
                continue
            s, e = ds.timestamp(), max(ds.timestamp(), de.timestamp())
            spans.append((s, e))
            compact = w["startDate"][4:5] != "-"
            self.prefix_len = 10 if compact else 13
            # Samples are written in the offset in force at their instant; an hour either
            # side covers a daylight-saving change inside or next to the workout.
            hour = ds.replace(minute=0, second=0) - timedelta(hours=1)
            while hour <= de + timedelta(hours=1):
                self.prefixes.add(hour.strftime("%Y%m%d%H" if compact else "%Y-%m-%d %H"))
                hour += timedelta(hours=1)
        spans.sort()
        self.starts = [s for s, _ in spans]
        self.spans = spans
        # Windows may overlap; the running maximum of ends lets one bisect answer "inside any".
        self.max_end: list[float] = []
        m = float("-inf")
        for _, e in spans:
            m = max(m, e)
            self.max_end.append(m)

    def inside(self, t: float) -> bool:
        i = bisect.bisect_right(self.starts, t) - 1
        return i >= 0 and self.max_end[i] >= t


class Samples:
    """Heart-rate and distance samples inside workouts, in flat arrays (16 and 26 bytes a sample)."""

    def __init__(self) -> None:
        self.hr_t = array("d")
        self.hr_v = array("d")
        self.d_start = array("d")
        self.d_end = array("d")
        self.d_m = array("d")
        self.d_src = array("H")
        self.sources: dict[str, int] = {}
        self.source_names: list[str] = []
        self.workouts_seen = 0

    def add_distance(self, start: float, end: float, metres: float, source: str) -> None:
        idx = self.sources.get(source)
        if idx is None:
            idx = self.sources[source] = len(self.source_names)
            self.source_names.append(source)
        self.d_start.append(start)
        self.d_end.append(end)
        self.d_m.append(metres)
        self.d_src.append(idx)

    def sort(self) -> None:
        """Order by time (a no-op for Apple's exports, which write each type in time order)."""
        if any(b < a for a, b in zip(self.hr_t, self.hr_t[1:], strict=False)):
            order = sorted(range(len(self.hr_t)), key=self.hr_t.__getitem__)
            self.hr_t = array("d", (self.hr_t[i] for i in order))
            self.hr_v = array("d", (self.hr_v[i] for i in order))
        if any(b < a for a, b in zip(self.d_start, self.d_start[1:], strict=False)):
            order = sorted(range(len(self.d_start)), key=self.d_start.__getitem__)
            for name in ("d_start", "d_end", "d_m", "d_src"):
                col = getattr(self, name)
                setattr(self, name, array(col.typecode, (col[i] for i in order)))

    def heart_rate(self, s: float, e: float) -> list[tuple[float, float]]:
        lo, hi = bisect.bisect_left(self.hr_t, s), bisect.bisect_right(self.hr_t, e)
        return list(zip(self.hr_t[lo:hi], self.hr_v[lo:hi], strict=True))

    def distance(self, s: float, e: float) -> list[tuple[float, float, float, str]]:
        lo, hi = bisect.bisect_left(self.d_start, s), bisect.bisect_right(self.d_start, e)
        names = self.source_names
        return [
            (self.d_start[i], self.d_end[i], self.d_m[i], names[self.d_src[i]])
            for i in range(lo, hi)
            if self.d_end[i] <= e
        ]


def one_recorder(
    workout: dict[str, Any], dist: list[tuple[float, float, float, str]]
) -> list[tuple[float, float, float]]:
    """The distance intervals of one recorder: iPhone and watch both count distance, and
    summing both would double it; the workout's own recorder wins, else the one that counted most."""
    own = [d for d in dist if d[3] == workout.get("sourceName")]
    if not own and dist:
        by_source: dict[str, float] = {}
        for d in dist:
            by_source[d[3]] = by_source.get(d[3], 0.0) + d[2]
        best = max(by_source, key=lambda k: by_source[k])
        own = [d for d in dist if d[3] == best]
    return [(s, e, m) for s, e, m, _ in own]
