"""The match rules as data: thresholds, platforms, Garmin references, and how two workouts compare.

The rules, tried in this order for each incoming record (``RULES``):

1. ``same_id``: the record's ``source:source_id`` is already a key of an activity.
2. ``external_id``: the record names another source's id for the same workout:
   Strava's ``external_id`` of a Garmin upload (``garmin_push_<id>``, or the
   Garmin file name ``<id>_ACTIVITY.fit``, ``<id>.fit``, ``activity_<id>.tcx``),
   or an account export's own platform ids (``garmin_export:<id>`` is
   ``garmin:<id>``).  It works both ways: a Garmin record arriving after its
   Strava copy finds it through the Strava payload.
3. ``heuristic``: records of different platforms whose start times are at most
   5 min apart, whose sports are compatible, and whose distances differ by at
   most max(100 m, 2 %) (durations by at most 5 % when a distance is missing).
   Two records of one platform are never joined by it.
4. ``link``: manual links override 2 and 3 both ways (``distinct`` wins over
   every automatic rule; ``same`` joins what the rules would keep apart).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, NamedTuple, Protocol

from healthcache.model import sports
from healthcache.model.records import JoinFigures

Rule = Literal["same_id", "external_id", "heuristic", "link"]
# The ordered match rules, each with what it means (shown by reports and explain).
RULES: tuple[tuple[Rule, str], ...] = (
    ("same_id", "the record's own key is already held by an activity"),
    ("external_id", "the record names another source's id for the same workout, or the reverse"),
    (
        "heuristic",
        "different platforms, starts within the window, compatible sports, distance or duration within limits",
    ),
    ("link", "a manual same link (a distinct link forbids every automatic rule)"),
)

WINDOW_S = 300.0  # start times at most this far apart
DISTANCE_ABS_M = 100.0  # distances within max(100 m, 2 %)
DISTANCE_REL = 0.02
DURATION_REL = 0.05  # durations within 5 % when a distance is missing
FILE_NAME_MAX_S = 86_400.0  # a bare file-name reference must at least be the same day
LINK_MAX_S = 26 * 3600.0  # a manual link spans any clock or time-zone error, not days (--force does)
NEAR_FACTOR = 2.0  # a near miss fails one check by at most this factor

# Sources that are one platform under another name: an account export carries the
# platform's own ids, so the same id is the same workout, and the heuristic never
# joins two records of one platform.
PLATFORM: dict[str, str] = {"garmin_export": "garmin", "strava_export": "strava"}


# ``garmin_ping_<n>`` (Strava's tag for Garmin uploads since 2022) carries a number
# that is not a Garmin activity id, so it names nothing: the heuristic decides.
_GARMIN_UPLOAD = re.compile(r"garmin_push_(\d+)", re.IGNORECASE)
_GARMIN_FILE = re.compile(r"(?:activity_)?(\d{6,})(?:_activity)?\.(?:fit|tcx|gpx|zip)(?:\.gz)?", re.IGNORECASE)


class GarminRef(NamedTuple):
    activity_id: str
    weak: bool  # a file name, not Garmin's own upload tag: checked against the start day


def garmin_ref(external_id: str | None) -> GarminRef | None:
    """The Garmin activity an ``external_id`` names, if it names one."""
    if not external_id:
        return None
    text = external_id.strip()
    m = _GARMIN_UPLOAD.fullmatch(text)
    if m:
        return GarminRef(m.group(1), weak=False)
    base = text.replace("\\", "/").rsplit("/", 1)[-1]
    m = _GARMIN_FILE.fullmatch(base)
    if m:
        return GarminRef(m.group(1), weak=True)
    return None


def platform(source: str) -> str:
    return PLATFORM.get(source, source)


class Measured(Protocol):
    """What the heuristic reads; both SourceRecord and Activity have it."""

    @property
    def start_time(self) -> str: ...
    @property
    def sport(self) -> str: ...
    @property
    def distance_m(self) -> float | None: ...
    @property
    def duration_s(self) -> float | None: ...
    @property
    def moving_time_s(self) -> float | None: ...


_EPOCH: dict[str, float] = {}


def epoch(stamp: str) -> float:
    """Seconds since 1970 of a cache timestamp (memoised: the same stamps recur)."""
    value = _EPOCH.get(stamp)
    if value is None:
        value = datetime.fromisoformat(stamp).timestamp()
        if len(_EPOCH) > 500_000:
            _EPOCH.clear()
        _EPOCH[stamp] = value
    return value


def iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(seconds)))


def positive(value: float | None) -> float | None:
    return value if value is not None and value > 0 else None


@dataclass(frozen=True)
class Comparison:
    """The heuristic's measurements of b against a, and what they fail."""

    start_delta_s: float  # b minus a
    sport_a: str
    sport_b: str
    basis: Literal["distance", "duration", "moving_time", "none"]
    value_a: float | None = None
    value_b: float | None = None
    limit: float | None = None  # the largest allowed absolute difference

    @property
    def difference(self) -> float | None:
        if self.value_a is None or self.value_b is None:
            return None
        return abs(self.value_b - self.value_a)

    @property
    def relative(self) -> float | None:
        diff = self.difference
        if diff is None or self.value_a is None or self.value_b is None:
            return None
        return diff / max(self.value_a, self.value_b)

    @property
    def sports_compatible(self) -> bool:
        return sports.compatible(self.sport_a, self.sport_b)

    def failures(self, factor: float = 1.0) -> list[str]:
        """The checks that fail with every limit multiplied by ``factor``."""
        out: list[str] = []
        if abs(self.start_delta_s) > WINDOW_S * factor:
            out.append(f"starts {span(self.start_delta_s)} apart (limit {span(WINDOW_S)})")
        if not self.sports_compatible:
            out.append(f"sports {self.sport_a} and {self.sport_b} differ")
        if self.basis == "none":
            out.append("no distance or duration on both sides to compare")
        elif self.limit is not None and (self.difference or 0.0) > self.limit * factor:
            out.append(f"{self._measure()} (limit {self._fmt(self.limit)})")
        return out

    @property
    def matches(self) -> bool:
        return not self.failures()

    def near(self) -> bool:
        """Fails exactly one check: sports, no measure, or a limit missed by at most NEAR_FACTOR."""
        fails = self.failures()
        if len(fails) != 1:
            return False
        if not self.sports_compatible or self.basis == "none":
            return True
        return not self.failures(NEAR_FACTOR)

    def closeness(self) -> tuple[float, float]:
        return (abs(self.start_delta_s), self.relative if self.relative is not None else 1.0)

    def _fmt(self, value: float) -> str:
        return f"{value:.0f} m" if self.basis == "distance" else span(value)

    def _measure(self) -> str:
        diff = self.difference or 0.0
        rel = (self.relative or 0.0) * 100
        name = self.basis.replace("_", " ")
        return f"{name} differs by {self._fmt(diff)} ({rel:.1f} %)"

    def describe(self) -> str:
        parts = [f"start {'+' if self.start_delta_s >= 0 else '-'}{span(abs(self.start_delta_s))}"]
        if self.basis != "none":
            parts.append(self._measure())
        if self.sport_a != self.sport_b:
            parts.append(f"sports {self.sport_a}/{self.sport_b}")
        return ", ".join(parts)

    def figures(self) -> JoinFigures:
        """The measurements as recorded on a join (differences are derived from the values)."""
        values = [] if self.value_a is None or self.value_b is None else [self.value_a, self.value_b]
        return JoinFigures(
            start_s=self.start_delta_s,
            sports=[self.sport_a, self.sport_b],
            basis=self.basis,
            values=values,
            limit=self.limit,
        )

    @classmethod
    def from_figures(cls, f: JoinFigures) -> Comparison:
        a, b = (f.values[0], f.values[1]) if len(f.values) == 2 else (None, None)
        return cls(f.start_s, f.sports[0], f.sports[1], f.basis, a, b, f.limit)

    def as_dict(self) -> dict[str, Any]:
        return {
            "start_delta_s": self.start_delta_s,
            "sports": [self.sport_a, self.sport_b],
            "basis": self.basis,
            "values": [self.value_a, self.value_b],
            "difference": self.difference,
            "relative": self.relative,
            "limit": self.limit,
            "matches": self.matches,
        }


def span(seconds: float) -> str:
    seconds = abs(seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{int(seconds // 60)} min {int(seconds % 60)} s" if seconds % 60 else f"{int(seconds // 60)} min"
    return f"{seconds / 3600:.1f} h"


def compare(a: Measured, b: Measured) -> Comparison:
    """Measure b against a with the heuristic's rules."""
    delta = epoch(b.start_time) - epoch(a.start_time)
    da, db = positive(a.distance_m), positive(b.distance_m)
    if da is not None and db is not None:
        limit = max(DISTANCE_ABS_M, DISTANCE_REL * max(da, db))
        return Comparison(delta, a.sport, b.sport, "distance", da, db, limit)
    for basis, attr in (("duration", "duration_s"), ("moving_time", "moving_time_s")):
        ta, tb = positive(getattr(a, attr)), positive(getattr(b, attr))
        if ta is not None and tb is not None:
            return Comparison(delta, a.sport, b.sport, basis, ta, tb, DURATION_REL * max(ta, tb))  # type: ignore[arg-type]
    return Comparison(delta, a.sport, b.sport, "none")
