"""Merge normalised source records into the cache: a pure function.

The rules (../DESIGN.md, "Merge and de-duplication"), tried in this order for
each incoming record:

1. ``same_id``: the record's ``source:source_id`` is already a key of an activity.
2. ``external_id``: the record names another source's id for the same workout:
   Strava's ``external_id`` of a Garmin upload (``garmin_push_<id>``, or the
   Garmin file name ``<id>_ACTIVITY.fit``,
   ``<id>.fit``, ``activity_<id>.tcx``), or an account export's own platform ids
   (``garmin_export:<id>`` is ``garmin:<id>``).  It works both ways: a Garmin
   record arriving after its Strava copy finds it through the Strava payload.
3. ``heuristic``: records of different platforms whose start times are at most
   5 min apart, whose sports are compatible, and whose distances differ by at
   most max(100 m, 2 %) (durations by at most 5 % when a distance is missing).
   Two records of one platform are never joined by it.
4. ``link``: manual links override 2 and 3 both ways (``distinct`` wins over
   every automatic rule; ``same`` joins what the rules would keep apart).

When one record matches several activities, the closest (start time, then the
relative distance or duration difference) wins.  Other candidates from other
platforms are thereby proved to be the same workout and are absorbed (their ids
become aliases); candidates that cannot be joined (same platform, a distinct
link) leave the record's outcome ``ambiguous`` with them listed.

Field merge (``FIELD_RULES``): each field comes from the most preferred source
that has a value; a value is never replaced by a missing one, so HR from any
source stays.  The cache keeps only the merged values and each source's raw
payload, so when a source ranked between others brings a value, the engine asks
the better sources' normalisers (``healthcache.normalise``) whether they have one;
if a payload cannot be re-read it keeps the present value rather than guess.

Cost: one O(n) pass indexes every key; each record then costs dict lookups and
a bisect into the sorted activity list, so m records into n cost O(n + m log n).
"""

from __future__ import annotations

import bisect
import itertools
import operator
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, NamedTuple, Protocol

import msgspec

from healthcache import normalise as _normalise
from healthcache.codec import gc_paused
from healthcache.config import DEFAULT_PREFERENCE
from healthcache.errors import HealthcacheError, UsageError
from healthcache.model import sports
from healthcache.model.records import (
    HR_FIELDS,
    SUMMARY_FIELDS,
    Activity,
    Cache,
    Link,
    SourceRecord,
    empty_cache,
    sort_key,
)

Outcome = Literal["new", "updated", "merged", "unchanged", "ambiguous", "tombstoned"]
OUTCOMES: tuple[Outcome, ...] = ("new", "updated", "merged", "unchanged", "ambiguous", "tombstoned")
Normaliser = Callable[[str, Any], SourceRecord]

# --- The rules, as data -------------------------------------------------------

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


class FieldRule(NamedTuple):
    """How one field of a merged activity is chosen."""

    order: tuple[str, ...] | None  # sources in precedence order; None = the configured preference
    empty: tuple[Any, ...] = ()  # values that count as "no value" besides None


# Every merged field and how its provider is chosen: the most preferred source
# that has a value provides it; a value is never replaced by a missing one.  HR
# fields follow the same rule, so HR from any source is kept.
FIELD_RULES: dict[str, FieldRule] = {
    "start_time": FieldRule(None),
    "sport": FieldRule(None, ("other", "unspecified")),  # what a source says when it does not know
    "start_time_local": FieldRule(None, ("",)),
    "timezone": FieldRule(None, ("",)),
    "name": FieldRule(None, ("",)),
    "distance_m": FieldRule(None, (0,)),  # 0: a treadmill without a foot pod measured nothing
    "duration_s": FieldRule(None, (0,)),
    "moving_time_s": FieldRule(None, (0,)),
    "elevation_gain_m": FieldRule(None),
    "calories": FieldRule(None, (0,)),
    "avg_hr": FieldRule(None, (0,)),  # 0: a recorder without a strap (Zwift writes it)
    "max_hr": FieldRule(None, (0,)),
    "avg_cadence": FieldRule(None, (0,)),
    "avg_power": FieldRule(None, (0,)),
    "device": FieldRule(None, ("",)),
    "hr_splits": FieldRule(None, ([],)),
}
MERGED_FIELDS: tuple[str, ...] = tuple(FIELD_RULES)
assert set(MERGED_FIELDS) == {"start_time", "sport", *SUMMARY_FIELDS, "hr_splits"}

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


# --- Report -------------------------------------------------------------------


class ReportEntry(msgspec.Struct, kw_only=True, omit_defaults=True):
    """What happened to one incoming record."""

    key: str  # "<source>:<source_id>" of the incoming record
    activity_id: str | None  # the activity it now lives in (None if skipped)
    outcome: Outcome
    rule: str | None = None  # "same_id" | "external_id" | "heuristic" | "link"
    fields: list[str] = []  # fields that changed
    candidates: list[str] = []  # other activities it matched but could not join (ambiguity, conflicts)
    absorbed: list[str] = []  # activities this record proved to be the same workout
    detail: str | None = None


class MergeReport(msgspec.Struct, kw_only=True):
    """Per record: ``ambiguous`` means the record joined the closest of several
    candidates (listed in ``candidates``); it is counted apart from ``merged``."""

    entries: list[ReportEntry] = []
    absorbed: list[str] = []  # activity ids that became aliases of another activity

    def count(self, outcome: Outcome) -> int:
        return sum(1 for e in self.entries if e.outcome == outcome)

    def summary(self) -> dict[str, int]:
        return {o: self.count(o) for o in OUTCOMES}

    @property
    def changed(self) -> bool:
        return any(e.outcome in ("new", "updated", "merged", "ambiguous") for e in self.entries) or bool(self.absorbed)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"summary": self.summary(), "absorbed": list(self.absorbed)}
        out["entries"] = msgspec.to_builtins(self.entries)
        return out


# --- Comparing two workouts ---------------------------------------------------


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


def _iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(seconds)))


def _positive(value: float | None) -> float | None:
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
            out.append(f"starts {_span(self.start_delta_s)} apart (limit {_span(WINDOW_S)})")
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
        return f"{value:.0f} m" if self.basis == "distance" else _span(value)

    def _measure(self) -> str:
        diff = self.difference or 0.0
        rel = (self.relative or 0.0) * 100
        name = self.basis.replace("_", " ")
        return f"{name} differs by {self._fmt(diff)} ({rel:.1f} %)"

    def describe(self) -> str:
        parts = [f"start {'+' if self.start_delta_s >= 0 else '-'}{_span(abs(self.start_delta_s))}"]
        if self.basis != "none":
            parts.append(self._measure())
        if self.sport_a != self.sport_b:
            parts.append(f"sports {self.sport_a}/{self.sport_b}")
        return ", ".join(parts)

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


def _span(seconds: float) -> str:
    seconds = abs(seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{int(seconds // 60)} min {int(seconds % 60)} s" if seconds % 60 else f"{int(seconds // 60)} min"
    return f"{seconds / 3600:.1f} h"


def compare(a: Measured, b: Measured) -> Comparison:
    """Measure b against a with the heuristic's rules."""
    delta = epoch(b.start_time) - epoch(a.start_time)
    da, db = _positive(a.distance_m), _positive(b.distance_m)
    if da is not None and db is not None:
        limit = max(DISTANCE_ABS_M, DISTANCE_REL * max(da, db))
        return Comparison(delta, a.sport, b.sport, "distance", da, db, limit)
    for basis, attr in (("duration", "duration_s"), ("moving_time", "moving_time_s")):
        ta, tb = _positive(getattr(a, attr)), _positive(getattr(b, attr))
        if ta is not None and tb is not None:
            return Comparison(delta, a.sport, b.sport, basis, ta, tb, DURATION_REL * max(ta, tb))  # type: ignore[arg-type]
    return Comparison(delta, a.sport, b.sport, "none")


# --- The engine ---------------------------------------------------------------


def _keys(act: Activity) -> list[str]:
    out = [act.id, *act.aliases]
    out.extend(f"{s}:{i}" for s, i in act.source_ids.items())
    return out


def _has_value(name: str, value: Any) -> bool:
    return value is not None and value not in FIELD_RULES[name].empty


class _Ref(NamedTuple):
    key: str
    detail: str
    weak: bool


class _Merger:
    """The working state of one merge call: the input cache, what changed, and indexes.

    The input cache is never touched: changed activities are new Structs kept in
    ``touched``; ``by_key`` maps every record key to the current version.
    """

    def __init__(
        self, cache: Cache, *, now: str, preference: Sequence[str], normalise: Normaliser | None = None
    ) -> None:
        self.cache = cache
        self.now = now
        self.pref = tuple(preference)
        self.normalise: Normaliser = normalise if normalise is not None else _normalise.from_raw
        base = cache.activities
        starts = [a.start_time for a in base]
        if not all(map(operator.le, starts, itertools.islice(starts, 1, None))):
            base = sorted(base, key=sort_key)
            starts = [a.start_time for a in base]
        self.base = base
        self.starts = starts
        by_key: dict[str, Activity] = {}
        for act in base:
            by_key[act.id] = act
            for alias in act.aliases:
                by_key[alias] = act
            for s, i in act.source_ids.items():
                by_key[s + ":" + i] = act
        self.by_key = by_key
        self.touched: dict[str, Activity] = {}
        self.new_ids: list[str] = []
        self.new_set: set[str] = set()
        self.base_start: dict[str, str] = {}  # start_time in the input of every input activity changed
        self.removed: set[str] = set()
        self.absorbed: list[str] = []
        self.buckets: dict[int, set[str]] = {}
        self.members: dict[str, SourceRecord | None] = {}
        self.tomb: set[str] = set()
        for t in cache.tombstones:
            self.tomb |= t.record_keys()
        self.same: dict[str, list[tuple[str, Link]]] = {}
        self.distinct: dict[str, set[str]] = {}
        for link in cache.links:
            a, b = link.ids
            if link.kind == "same":
                self.same.setdefault(a, []).append((b, link))
                self.same.setdefault(b, []).append((a, link))
            else:
                self.distinct.setdefault(a, set()).add(b)
                self.distinct.setdefault(b, set()).add(a)
        self._ext_new: dict[str, list[tuple[str, str, bool]]] = {}  # garmin id -> (activity id, ...) placed now
        self._garmin_sources = frozenset(s for s in (*PLATFORM, "garmin") if platform(s) == "garmin")

    # ranks -------------------------------------------------------------------

    def rank(self, source: str, order: tuple[str, ...] | None = None) -> tuple[int, str]:
        order = order or self.pref
        return (order.index(source) if source in order else len(order), source)

    def top_source(self, source_ids: Iterable[str]) -> str:
        return min(source_ids, key=self.rank)

    # index maintenance -------------------------------------------------------

    def resolve(self, key: str) -> Activity | None:
        return self.by_key.get(key)

    def remember(self, act: Activity) -> None:
        """Note where an input activity sat in the input, before its first change."""
        if act.id not in self.touched and act.id not in self.base_start and act.id not in self.new_set:
            self.base_start[act.id] = act.start_time

    def put(self, act: Activity, *, new: bool = False) -> None:
        if new:
            self.new_ids.append(act.id)
            self.new_set.add(act.id)
        else:
            before = self.by_key.get(act.id)  # the current version, the input's if not yet changed
            if before is not None:
                self.remember(before)
        self.touched[act.id] = act
        for k in _keys(act):
            self.by_key[k] = act
        self.buckets.setdefault(int(epoch(act.start_time) // WINDOW_S), set()).add(act.id)

    def window(self, t: float) -> list[Activity]:
        """Current activities starting within WINDOW_S of t."""
        out: dict[str, Activity] = {}
        i = bisect.bisect_left(self.starts, _iso(t - WINDOW_S - 1))
        j = bisect.bisect_right(self.starts, _iso(t + WINDOW_S + 1))
        for act in self.base[i:j]:
            cur = self.by_key.get(act.id)
            if cur is not None:
                out[cur.id] = cur
        b = int(t // WINDOW_S)
        for bucket in (b - 1, b, b + 1):
            for ident in self.buckets.get(bucket, ()):
                cur = self.touched.get(ident)
                if cur is not None:
                    out[cur.id] = cur
        return [a for a in out.values() if abs(epoch(a.start_time) - t) <= WINDOW_S]

    def ext_lookup(self, garmin_id: str, t: float) -> list[tuple[Activity, str, bool]]:
        """Activities whose payload's external_id names this Garmin activity (rule 2, reversed).

        A copy of a workout starts the same day, so only activities within
        FILE_NAME_MAX_S of ``t`` are read: no pass over the whole cache.
        """
        found: list[tuple[str, str, bool]] = list(self._ext_new.get(garmin_id, ()))
        i = bisect.bisect_left(self.starts, _iso(t - FILE_NAME_MAX_S))
        j = bisect.bisect_right(self.starts, _iso(t + FILE_NAME_MAX_S))
        for act in self.base[i:j]:
            if not self._garmin_sources.isdisjoint(act.source_ids):
                continue
            for payload in act.raw.values():
                ext = payload.get("external_id") if isinstance(payload, dict) else None
                ref = garmin_ref(ext) if isinstance(ext, str) else None
                if ref is not None and ref.activity_id == garmin_id:
                    found.append((act.id, ext, ref.weak))  # type: ignore[arg-type]
        out: list[tuple[Activity, str, bool]] = []
        for ident, ext, weak in found:
            cur = self.by_key.get(ident)
            if cur is not None and all(cur.id != o[0].id for o in out):
                out.append((cur, ext, weak))
        return out

    # member values (per-source records of an activity) ---------------------

    def member(self, act: Activity, source: str) -> SourceRecord | None:
        """The record ``source`` contributed to ``act``, re-derived from its raw payload; None if unknown."""
        sid = act.source_ids.get(source)
        if sid is None:
            return None
        key = f"{source}:{sid}"
        if key in self.members:
            return self.members[key]
        rec: SourceRecord | None = None
        raw = act.raw.get(source)
        if raw is not None:
            try:
                got = self.normalise(source, raw)
                rec = msgspec.structs.replace(got, source=source, source_id=sid)
            except Exception:  # an unreadable payload only means "unknown": never fail a merge on it
                rec = None
        self.members[key] = rec
        return rec

    def provider(self, act: Activity, name: str) -> tuple[int, str] | None:
        """Rank of the source that provides ``name`` in ``act``; None when it cannot be told."""
        order = FIELD_RULES[name].order
        for s in sorted(act.source_ids, key=lambda x: self.rank(x, order)):
            m = self.member(act, s)
            if m is None:
                return None
            if _has_value(name, getattr(m, name)):
                return self.rank(s, order)
        return None

    # field merge -------------------------------------------------------------

    def pick_for_record(self, name: str, act: Activity, rec: SourceRecord) -> Any:
        """The value of ``name`` once ``rec`` is part of ``act``."""
        new = getattr(rec, name)
        cur = getattr(act, name)
        if new is None or new == cur:
            return cur
        if not _has_value(name, new):
            return new if cur is None else cur
        if not _has_value(name, cur):
            return new
        order = FIELD_RULES[name].order
        mine = self.rank(rec.source, order)
        better = [s for s in act.source_ids if s != rec.source and self.rank(s, order) < mine]
        if not better:
            return new  # the record's source is the most preferred one present
        if len(better) == len(act.source_ids):
            return cur  # every source present is preferred, and one of them provides cur
        # Sources both better and worse (or the record's own older version): cur came
        # from a better one only if a better one has a value.
        for s in sorted(better, key=lambda x: self.rank(x, order)):
            m = self.member(act, s)
            if m is None or _has_value(name, getattr(m, name)):
                return cur  # unknown counts as "it has one": never replace on a guess
        return new

    def pick_for_union(self, name: str, a: Activity, b: Activity) -> Any:
        va, vb = getattr(a, name), getattr(b, name)
        if vb is None or va == vb:
            return va
        if va is None:
            return vb
        if _has_value(name, va) != _has_value(name, vb):
            return va if _has_value(name, va) else vb
        pa, pb = self.provider(a, name), self.provider(b, name)
        if pa is None or pb is None:
            order = FIELD_RULES[name].order
            pa = min(self.rank(s, order) for s in a.source_ids)
            pb = min(self.rank(s, order) for s in b.source_ids)
        return va if pa <= pb else vb

    def new_activity(self, rec: SourceRecord) -> Activity:
        values = {f: getattr(rec, f) for f in SUMMARY_FIELDS if getattr(rec, f) is not None}
        if rec.hr_splits is not None:
            values["hr_splits"] = list(rec.hr_splits)
        self.members[rec.key] = rec
        return Activity(
            id=rec.key,
            source=rec.source,
            source_ids={rec.source: rec.source_id},
            start_time=rec.start_time,
            sport=rec.sport,
            sport_raw={rec.source: rec.sport_raw} if rec.sport_raw else {},
            first_seen_at=self.now,
            updated_at=self.now,
            raw={rec.source: rec.raw} if rec.raw is not None else {},
            **values,
        )

    def join(self, act: Activity, rec: SourceRecord) -> tuple[Activity, list[str]]:
        """``act`` with ``rec`` as (or in place of) its ``rec.source`` record; no index change."""
        updates: dict[str, Any] = {}
        for name in MERGED_FIELDS:
            value = self.pick_for_record(name, act, rec)
            if value != getattr(act, name):
                updates[name] = list(value) if name == "hr_splits" and value is not None else value
        if act.source_ids.get(rec.source) != rec.source_id:
            updates["source_ids"] = {**act.source_ids, rec.source: rec.source_id}
        if rec.sport_raw and act.sport_raw.get(rec.source) != rec.sport_raw:
            updates["sport_raw"] = {**act.sport_raw, rec.source: rec.sport_raw}
        if rec.raw is not None and act.raw.get(rec.source) != rec.raw:
            updates["raw"] = {**act.raw, rec.source: rec.raw}
        top = self.top_source(updates.get("source_ids", act.source_ids))
        if top != act.source:
            updates["source"] = top
        self.members[rec.key] = rec
        if not updates:
            return act, []
        return msgspec.structs.replace(act, **updates, updated_at=self.now), sorted(updates)

    def union(self, a: Activity, b: Activity) -> Activity:
        """One activity of two; the one first seen keeps its id, the other's ids become aliases."""
        keep, other = sorted((a, b), key=lambda x: (x.first_seen_at, x.id))
        values = {name: self.pick_for_union(name, keep, other) for name in MERGED_FIELDS}
        aliases = [k for k in dict.fromkeys([*keep.aliases, other.id, *other.aliases]) if k != keep.id]
        source_ids = {**other.source_ids, **keep.source_ids}
        return msgspec.structs.replace(
            keep,
            **values,
            aliases=aliases,
            source_ids=source_ids,
            source=self.top_source(source_ids),
            sport_raw={**other.sport_raw, **keep.sport_raw},
            raw={**other.raw, **keep.raw},
            first_seen_at=min(keep.first_seen_at, other.first_seen_at),
            updated_at=self.now,
        )

    def absorb(self, a: Activity, b: Activity) -> tuple[Activity, str]:
        """Replace a and b by their union in the working state; returns it and the absorbed id."""
        joined = self.union(a, b)
        gone = b if joined.id == a.id else a
        self.remember(gone)
        self.removed.add(gone.id)
        self.touched.pop(gone.id, None)
        self.absorbed.append(gone.id)
        self.put(joined)
        return joined, gone.id

    # matching ------------------------------------------------------------------

    def is_distinct(self, keys_a: Iterable[str], keys_b: Iterable[str]) -> bool:
        if not self.distinct:
            return False
        other = set(keys_b)
        return any(p in other for k in keys_a for p in self.distinct.get(k, ()))

    def why_not_join(self, act: Activity, rec: SourceRecord) -> str | None:
        """Why ``rec`` cannot be part of ``act`` (one id per source; distinct links)."""
        sid = act.source_ids.get(rec.source)
        if sid is not None and sid != rec.source_id:
            return f"{act.id} already has {rec.source}:{sid}"
        if self.is_distinct([rec.key], _keys(act)):
            return f"{rec.key} and {act.id} are linked as distinct"
        return None

    def why_not_union(self, a: Activity, b: Activity, *, by_platform: bool) -> str | None:
        shared = set(a.source_ids) & set(b.source_ids)
        if by_platform:
            shared |= {platform(s) for s in a.source_ids} & {platform(s) for s in b.source_ids}
        if shared:
            return f"{a.id} and {b.id} both have {'/'.join(sorted(shared))} records"
        if self.is_distinct(_keys(a), _keys(b)):
            return f"{a.id} and {b.id} are linked as distinct"
        return None

    def refs(self, rec: SourceRecord) -> list[_Ref]:
        """Keys of other sources that ``rec`` itself names (rule 2, forward)."""
        out: list[_Ref] = []
        if rec.source in PLATFORM:
            out.append(_Ref(f"{PLATFORM[rec.source]}:{rec.source_id}", "same platform id", False))
        for src, plat in PLATFORM.items():
            if plat == rec.source:
                out.append(_Ref(f"{src}:{rec.source_id}", "same platform id", False))
        if platform(rec.source) != "garmin":
            ref = garmin_ref(rec.external_id)
            if ref is not None:
                text = f"external_id {rec.external_id!r} names garmin:{ref.activity_id}"
                out.append(_Ref(f"garmin:{ref.activity_id}", text, ref.weak))
                out.append(_Ref(f"garmin_export:{ref.activity_id}", text, ref.weak))
        return out

    def strong_matches(self, rec: SourceRecord, refs: list[_Ref]) -> list[tuple[Activity, str, str]]:
        out: list[tuple[Activity, str, str]] = []
        for partner, link in self.same.get(rec.key, ()):
            act = self.by_key.get(partner)
            if act is not None:
                out.append((act, "link", f"linked to {partner} ({link.at})"))
        t = epoch(rec.start_time)
        for ref in refs:
            act = self.by_key.get(ref.key)
            if act is not None and (not ref.weak or abs(epoch(act.start_time) - t) <= FILE_NAME_MAX_S):
                out.append((act, "external_id", ref.detail))
        if platform(rec.source) == "garmin" and rec.key not in self.by_key:
            # Rule 2 reversed; a record already placed was looked up when it arrived.
            for act, ext, weak in self.ext_lookup(rec.source_id, t):
                if not weak or abs(epoch(act.start_time) - t) <= FILE_NAME_MAX_S:
                    out.append((act, "external_id", f"external_id {ext!r} of {act.id} names {rec.key}"))
        return out

    def heuristic(self, rec: SourceRecord) -> list[tuple[Comparison, Activity]]:
        plat = platform(rec.source)
        out: list[tuple[Comparison, Activity]] = []
        for act in self.window(epoch(rec.start_time)):
            if any(platform(s) == plat for s in act.source_ids):
                continue  # never two records of one platform by heuristic
            if self.is_distinct([rec.key], _keys(act)):
                continue
            cmp = compare(act, rec)
            if cmp.matches:
                out.append((cmp, act))
        out.sort(key=lambda x: (x[0].closeness(), x[1].id))
        return out

    def place(self, rec: SourceRecord) -> ReportEntry:
        """Merge one record into the working state."""
        key = rec.key
        refs = self.refs(rec)
        covered = [k for k in (key, *(r.key for r in refs)) if k in self.tomb]
        if covered:
            return ReportEntry(key=key, activity_id=None, outcome="tombstoned", detail=f"{covered[0]} was deleted")
        home = self.by_key.get(key)
        # Strong matches a distinct link forbids are dropped silently: the user decided.
        strong = [x for x in self.strong_matches(rec, refs) if not self.is_distinct([key], _keys(x[0]))]
        conflicts: list[str] = []
        notes: list[str] = []
        rule: str | None = None
        others: list[tuple[Comparison, Activity]] = []
        target = home
        if home is not None:
            rule = "same_id"
            sid = home.source_ids.get(rec.source)
            if sid is not None and sid != rec.source_id:  # a stale alias names an activity with another id
                detail = f"{key} resolves to {home.id}, which already has {rec.source}:{sid}"
                return ReportEntry(
                    key=key, activity_id=home.id, outcome="ambiguous", candidates=[home.id], detail=detail
                )
        else:
            for act, how, why in strong:
                problem = self.why_not_join(act, rec)
                if problem is None:
                    target, rule = act, how
                    notes.append(why)
                    break
                conflicts.append(act.id)
                notes.append(f"{why}, but {problem}")
            if target is None:
                found = self.heuristic(rec)
                if found:
                    (cmp, target), others = found[0], found[1:]
                    rule = "heuristic"
                    notes.append(cmp.describe())
        if target is None:
            act = self.new_activity(rec)
            self.put(act, new=True)
            self._note_external(rec, act)
            return ReportEntry(
                key=key,
                activity_id=act.id,
                outcome="ambiguous" if conflicts else "new",
                candidates=conflicts,
                detail="; ".join(notes) or None,
            )
        joined, fields = self.join(target, rec)
        if joined is not target:
            self.put(joined)
        # Everything else this record matched is the same workout too, if it can be joined.
        absorbed: list[str] = []
        later = [(a.id, how, why, False) for a, how, why in strong]
        later += [(a.id, "heuristic", c.describe(), True) for c, a in others]
        for ident, how, why, by_platform in later:
            cur = self.by_key.get(ident)
            if cur is None or cur.id == joined.id or self.is_distinct(_keys(joined), _keys(cur)):
                continue
            problem = self.why_not_union(joined, cur, by_platform=by_platform)
            if problem is None:
                joined, gone = self.absorb(joined, cur)
                absorbed.append(gone)
                notes.append(f"absorbed {gone} ({how}: {why})")
                if rule == "same_id":
                    rule = how
            else:
                conflicts.append(cur.id)
                notes.append(f"also matched {cur.id} ({how}: {why}) but {problem}")
        self._note_external(rec, joined)
        outcome: Outcome
        if home is None:
            outcome = "ambiguous" if conflicts else "merged"
        else:
            outcome = "merged" if absorbed else "updated" if fields else "unchanged"
        if absorbed:
            fields = sorted(set(fields) | {"aliases", "source_ids"})
        return ReportEntry(
            key=key,
            activity_id=joined.id,
            outcome=outcome,
            rule=rule,
            fields=fields if outcome != "unchanged" else [],
            candidates=conflicts,
            absorbed=absorbed,
            detail="; ".join(notes) or None,
        )

    def _note_external(self, rec: SourceRecord, act: Activity) -> None:
        if platform(rec.source) == "garmin":
            return
        ref = garmin_ref(rec.external_id)
        if ref is not None and rec.external_id is not None:
            self._ext_new.setdefault(ref.activity_id, []).append((act.id, rec.external_id, ref.weak))

    def result(self, links: list[Link] | None = None) -> Cache:
        """The new cache, sorted: untouched activities keep their place, changed ones are
        replaced in place (found by bisect), and new or moved ones are inserted."""
        acts = list(self.base)
        movers = [self.touched[i] for i in self.new_ids if i not in self.removed]
        drops: list[int] = []
        for ident, start in self.base_start.items():
            pos = bisect.bisect_left(self.starts, start)
            while acts[pos].id != ident:  # among activities starting at the same second
                pos += 1
            cur = None if ident in self.removed else self.touched.get(ident)
            if cur is not None and cur.start_time == start:
                acts[pos] = cur
            else:
                drops.append(pos)
                if cur is not None:
                    movers.append(cur)
        if drops:
            kept: list[Activity] = []
            prev = 0
            for pos in sorted(drops):
                kept.extend(acts[prev:pos])
                prev = pos + 1
            kept.extend(acts[prev:])
            acts = kept
        if movers:
            movers.sort(key=sort_key)
            merged: list[Activity] = []
            prev = 0
            for mover in movers:
                pos = bisect.bisect_left(acts, sort_key(mover), lo=prev, key=sort_key)
                merged.extend(acts[prev:pos])
                merged.append(mover)
                prev = pos
            merged.extend(acts[prev:])
            acts = merged
        if links is None:
            return msgspec.structs.replace(self.cache, activities=acts)
        return msgspec.structs.replace(self.cache, activities=acts, links=links)


def merge(
    cache: Cache,
    records: Sequence[SourceRecord],
    *,
    now: str,
    preference: Sequence[str] = DEFAULT_PREFERENCE,
    normalise: Normaliser | None = None,
) -> tuple[Cache, MergeReport]:
    """Return the new cache and what happened to each record; never mutates ``cache``.

    ``normalise(source, raw)`` re-derives another source's record from its stored
    payload when the field merge must know which source provided a value
    (default: ``healthcache.normalise.from_raw``); when it cannot, the present
    value is kept.
    """
    with gc_paused():  # allocation-heavy, creates no cycles: the collector would only walk the cache
        m = _Merger(cache, now=now, preference=preference, normalise=normalise)
        report = MergeReport()
        last = {rec.key: i for i, rec in enumerate(records)}
        for i, rec in enumerate(records):
            if last[rec.key] != i:  # the same record twice in one batch: the later one is the news
                entry = ReportEntry(
                    key=rec.key, activity_id=None, outcome="unchanged", detail="superseded in this batch"
                )
                report.entries.append(entry)
                continue
            report.entries.append(m.place(rec))
        report.absorbed = list(m.absorbed)
        return m.result(), report


# --- Manual links -------------------------------------------------------------

_RECORD_ID = re.compile(r"^[a-z][a-z0-9_]*:.+$")


def _check_ident(ident: str) -> str:
    ident = ident.strip()
    if not _RECORD_ID.match(ident):
        raise UsageError(f"{ident!r} is not an id: give an activity id, an alias or a source:source_id key")
    return ident


def _require(m: _Merger, ident: str) -> Activity:
    act = m.resolve(ident)
    if act is None:
        raise UsageError(f"no activity has the id {ident!r}", hint="List ids with: healthcache dupes --json")
    return act


def _pair(link: Link) -> frozenset[str]:
    return frozenset(link.ids)


def link_refusal(a: Measured, b: Measured) -> str | None:
    """Why two records cannot plausibly be one workout, or None.

    A link exists to join what the heuristic missed (a watch with a wrong clock or
    a time-zone shift of hours), so starts up to LINK_MAX_S apart are accepted;
    days apart, or sports of different families, is a typo in an id.
    """
    reasons = []
    delta = abs(epoch(b.start_time) - epoch(a.start_time))
    if delta > LINK_MAX_S:
        reasons.append(
            f"their starts are {_span(delta)} apart ({a.start_time} and {b.start_time}; "
            f"no clock or time-zone error spans more than {_span(LINK_MAX_S)})"
        )
    if not sports.compatible(a.sport, b.sport):
        reasons.append(f"their sports {a.sport} and {b.sport} cannot be one workout")
    return " and ".join(reasons) or None


def link_records(
    cache: Cache,
    a: str,
    b: str,
    *,
    now: str,
    preference: Sequence[str] = DEFAULT_PREFERENCE,
    normalise: Normaliser | None = None,
    force: bool = False,
) -> tuple[Cache, MergeReport]:
    """Record that a and b are one workout and join their activities now.

    Refused (UsageError) when ``link_refusal`` objects, unless ``force``.
    Distinct links between the two activities are dropped: this is the newer decision.
    """
    a, b = _check_ident(a), _check_ident(b)
    if a == b:
        raise UsageError("link needs two different ids")
    source_a, source_b = a.split(":", 1)[0], b.split(":", 1)[0]
    if source_a == source_b:
        raise UsageError(
            f"{a} and {b} are both {source_a} records; an activity keeps one record per source "
            "(source_ids holds one id per source), so two records of one source can never be one workout"
        )
    m = _Merger(cache, now=now, preference=preference, normalise=normalise)
    xa, xb = _require(m, a), _require(m, b)
    pair = frozenset((a, b))
    report = MergeReport()
    links = [x for x in cache.links if not (_pair(x) == pair and x.kind == "distinct")]
    if xa.id == xb.id:
        entry = ReportEntry(key=b, activity_id=xa.id, outcome="unchanged", rule="link", detail="already one activity")
    else:
        why = None if force else link_refusal(xa, xb)
        if why:
            raise UsageError(
                f"refusing to link {a} and {b}: {why}; nothing was changed",
                hint=f"If they really are one workout: healthcache link {a} {b} --force",
            )
        shared = sorted(set(xa.source_ids) & set(xb.source_ids))
        if shared:
            s = shared[0]
            raise UsageError(
                f"{xa.id} and {xb.id} both hold a {s} record ({s}:{xa.source_ids[s]} and {s}:{xb.source_ids[s]}); "
                "an activity keeps one record per source, so they cannot be one activity",
                hint="Unlink one of those records from its activity first (healthcache unlink A B).",
            )
        keys_a, keys_b = set(_keys(xa)), set(_keys(xb))
        dropped = [x for x in links if x.kind == "distinct" and (set(x.ids) & keys_a) and (set(x.ids) & keys_b)]
        links = [x for x in links if x not in dropped]
        joined, gone = m.absorb(xa, xb)
        detail = f"{gone} joined {joined.id}"
        if dropped:
            detail += "; dropped distinct links " + ", ".join("/".join(x.ids) for x in dropped)
        entry = ReportEntry(
            key=b,
            activity_id=joined.id,
            outcome="merged",
            rule="link",
            fields=["aliases", "source_ids"],
            absorbed=[gone],
            detail=detail,
        )
        report.absorbed = [gone]
    if not any(_pair(x) == pair and x.kind == "same" for x in links):
        links.append(Link(ids=[a, b], kind="same", at=now))
    report.entries.append(entry)
    return m.result(links=links), report


def _record_key(act: Activity, ident: str) -> str:
    """The source:source_id record an id names within ``act``."""
    source_keys = {f"{s}:{i}" for s, i in act.source_ids.items()}
    if ident in source_keys:
        return ident
    raise UsageError(
        f"{ident!r} names activity {act.id} but none of its records; name a record: " + ", ".join(sorted(source_keys))
    )


def unlink_records(
    cache: Cache,
    a: str,
    b: str,
    *,
    now: str,
    preference: Sequence[str] = DEFAULT_PREFERENCE,
    normalise: Normaliser | None = None,
) -> tuple[Cache, MergeReport]:
    """Record that a and b are distinct workouts; split their activity if they share one.

    Each part is rebuilt from the kept raw payloads by the sources' normalisers;
    if any cannot be re-derived the unlink is refused, since a split built on a
    guess could lose data.  The part holding the old id keeps the HR data the
    merged activity had (the guard forbids losing it), and every id and alias
    stays with the part whose record it names.
    """
    a, b = _check_ident(a), _check_ident(b)
    if a == b:
        raise UsageError("unlink needs two different ids")
    m = _Merger(cache, now=now, preference=preference, normalise=normalise)
    xa, xb = _require(m, a), _require(m, b)
    pair = frozenset((a, b))
    links = [x for x in cache.links if not (_pair(x) == pair and x.kind == "same")]
    report = MergeReport()
    if xa.id != xb.id:
        report.entries.append(
            ReportEntry(
                key=b, activity_id=xb.id, outcome="unchanged", rule="link", detail=f"already apart from {xa.id}"
            )
        )
    else:
        ka, kb = _record_key(xa, a), _record_key(xa, b)
        if ka == kb:
            raise UsageError(f"{a} and {b} name the same record {ka}")
        survivor, other, kept_hr = _split(m, xa, ka, kb, links)
        side = {k: i for i, p in enumerate((survivor, other)) for k in _keys(p)}
        links = [x for x in links if not (x.kind == "same" and len({side.get(i) for i in x.ids} - {None}) == 2)]
        m.put(survivor)  # keeps xa.id, so it replaces xa
        m.put(other, new=True)
        moved, stayed = (kb, ka) if kb in _keys(other) else (ka, kb)
        note = f"split {xa.id} into {survivor.id} and {other.id}"
        if kept_hr:
            note += f"; {survivor.id} keeps the merged activity's {', '.join(kept_hr)}"
        report.entries.append(ReportEntry(key=moved, activity_id=other.id, outcome="new", rule="link", detail=note))
        report.entries.append(
            ReportEntry(
                key=stayed, activity_id=survivor.id, outcome="updated", rule="link", fields=["source_ids"], detail=note
            )
        )
    if not any(_pair(x) == pair and x.kind == "distinct" for x in links):
        links.append(Link(ids=[a, b], kind="distinct", at=now))
    return m.result(links=links), report


def _split(m: _Merger, act: Activity, ka: str, kb: str, links: list[Link]) -> tuple[Activity, Activity, list[str]]:
    """Two activities from one: (the part keeping act.id, the other part), and the HR fields carried over."""
    records: dict[str, SourceRecord] = {}
    for source, sid in act.source_ids.items():
        raw = act.raw.get(source)
        if raw is None:
            raise HealthcacheError(
                f"cannot split {act.id}: no {source} payload is kept to rebuild {source}:{sid} from; nothing was changed"
            )
        try:
            rec = m.normalise(source, raw)
        except HealthcacheError as exc:
            raise HealthcacheError(f"cannot split {act.id}: {exc.message}; nothing was changed") from exc
        except Exception as exc:  # any normaliser failure refuses the split
            raise HealthcacheError(
                f"cannot split {act.id}: the {source} payload cannot be re-read ({exc}); nothing was changed"
            ) from exc
        records[f"{source}:{sid}"] = msgspec.structs.replace(rec, source=source, source_id=sid, raw=raw)
    same: dict[str, set[str]] = {}
    for x in links:
        if x.kind == "same":
            same.setdefault(x.ids[0], set()).add(x.ids[1])
            same.setdefault(x.ids[1], set()).add(x.ids[0])
    sides: list[list[SourceRecord]] = [[records[ka]], [records[kb]]]
    for key in sorted(records, key=lambda k: m.rank(k.split(":", 1)[0])):
        if key in (ka, kb):
            continue
        rec = records[key]

        def score(side: list[SourceRecord], rec: SourceRecord = rec, key: str = key) -> tuple[int, float, float]:
            keys = {r.key for r in side}
            if same.get(key, set()) & keys:
                return (0, 0.0, 0.0)
            if m.distinct.get(key, set()) & keys:
                return (3, 0.0, 0.0)
            cmp = compare(side[0], rec)
            return (1 if cmp.matches else 2, *cmp.closeness())

        sides[0 if score(sides[0]) <= score(sides[1]) else 1].append(rec)
    keep_index = next((i for i, side in enumerate(sides) if any(r.key == act.id for r in side)), 0)
    parts: list[Activity] = []
    kept_hr: list[str] = []
    for i, side in enumerate(sides):
        keys = {r.key for r in side}
        ordered = sorted(side, key=lambda r: m.rank(r.source))
        built = m.new_activity(ordered[0])
        for rec in ordered[1:]:
            built, _ = m.join(built, rec)
        if i == keep_index:
            ident = act.id
            other_keys = {r.key for r in sides[1 - i]}
            aliases = [x for x in act.aliases if x not in other_keys and x != ident]
            carry: dict[str, Any] = {}
            for name in HR_FIELDS:  # the guard: the activity keeping the id keeps its HR
                if _has_value(name, getattr(act, name)) and not _has_value(name, getattr(built, name)):
                    carry[name] = getattr(act, name)
                    kept_hr.append(name)
            built = msgspec.structs.replace(built, **carry)
        else:
            ident = next((x for x in act.aliases if x in keys), None) or ordered[0].key
            aliases = [x for x in act.aliases if x in keys and x != ident]
        parts.append(
            msgspec.structs.replace(built, id=ident, aliases=aliases, first_seen_at=act.first_seen_at, updated_at=m.now)
        )
    return parts[keep_index], parts[1 - keep_index], kept_hr


# --- Explaining the cache: groups and near misses -----------------------------


class Member(msgspec.Struct, kw_only=True, omit_defaults=True):
    key: str
    rule: str | None = None  # None for the group's canonical record
    detail: str | None = None
    comparison: dict[str, Any] | None = None


class Group(msgspec.Struct, kw_only=True):
    """An activity holding records of more than one source, and why they were joined."""

    id: str
    start_time: str
    sport: str
    aliases: list[str]
    members: list[Member]


class NearMiss(msgspec.Struct, kw_only=True):
    """Two separate activities that almost matched, and what kept them apart."""

    a: str
    b: str
    start_time: str
    reasons: list[str]
    comparison: dict[str, Any]


def groups(
    cache: Cache,
    *,
    explain: bool = False,
    preference: Sequence[str] = DEFAULT_PREFERENCE,
    normalise: Normaliser | None = None,
) -> list[Group]:
    """Every merged activity; with ``explain`` the rule that joined each record, derived
    from the data: a same link, an external id in a payload, else the heuristic's
    measurements (re-derived from the kept payloads)."""
    m = _Merger(empty_cache("", cache.updated_at), now=cache.updated_at, preference=preference, normalise=normalise)
    same: dict[frozenset[str], Link] = {_pair(x): x for x in cache.links if x.kind == "same"}
    out: list[Group] = []
    for act in cache.activities:
        if len(act.source_ids) < 2:
            continue
        keys = sorted((f"{s}:{i}" for s, i in act.source_ids.items()), key=lambda k: m.rank(k.split(":", 1)[0]))
        primary = act.id if act.id in keys else keys[0]
        members = [Member(key=primary)]
        for key in keys:
            if key == primary:
                continue
            members.append(_explain_member(m, act, key, keys, same) if explain else Member(key=key))
        out.append(
            Group(id=act.id, start_time=act.start_time, sport=act.sport, aliases=list(act.aliases), members=members)
        )
    return out


def _external_ids(act: Activity) -> dict[str, str]:
    """source -> external_id found in that source's kept payload."""
    out: dict[str, str] = {}
    for source, payload in act.raw.items():
        ext = payload.get("external_id") if isinstance(payload, dict) else None
        if isinstance(ext, str) and ext:
            out[source] = ext
    return out


def _explain_member(m: _Merger, act: Activity, key: str, keys: list[str], same: dict[frozenset[str], Link]) -> Member:
    source, sid = key.split(":", 1)
    for other in keys:
        link = same.get(frozenset((key, other)))
        if link is not None:
            return Member(key=key, rule="link", detail=f"linked to {other} at {link.at}")
    exts = _external_ids(act)
    for other in keys:
        osource, osid = other.split(":", 1)
        for this_s, ext, target_s, target_id in (
            (source, exts.get(source), osource, osid),
            (osource, exts.get(osource), source, sid),
        ):
            ref = garmin_ref(ext) if platform(this_s) != "garmin" else None
            if ref is not None and platform(target_s) == "garmin" and ref.activity_id == target_id:
                return Member(
                    key=key, rule="external_id", detail=f"external_id {ext!r} of {this_s} names {target_s}:{target_id}"
                )
        if other != key and sid == osid and platform(source) == platform(osource):
            return Member(key=key, rule="external_id", detail=f"same {platform(source)} id as {other}")
    mine = m.member(act, source)
    if mine is None:
        return Member(key=key, rule="heuristic", detail=f"the {source} payload cannot be re-read to measure it")
    best: tuple[Comparison, str] | None = None
    for other in keys:
        if other == key:
            continue
        theirs = m.member(act, other.split(":", 1)[0])
        if theirs is None:
            continue
        cmp = compare(theirs, mine)
        rank = (not cmp.matches, cmp.closeness())
        if best is None or rank < (not best[0].matches, best[0].closeness()):
            best = (cmp, other)
    if best is None:
        return Member(key=key, rule="heuristic", detail="no other payload can be re-read to measure against")
    cmp, other = best
    verdict = "" if cmp.matches else " (outside the limits: joined through another record or an older rule)"
    return Member(key=key, rule="heuristic", detail=f"vs {other}: {cmp.describe()}{verdict}", comparison=cmp.as_dict())


def near_misses(cache: Cache) -> list[NearMiss]:
    """Separate activities of different platforms starting within twice the window that
    fail one check narrowly (or a sport check), are kept apart by a distinct link, or
    would match now (kept apart when they were merged, e.g. by an ambiguity)."""
    acts = sorted(cache.activities, key=sort_key)
    distinct = {_pair(x) for x in cache.links if x.kind == "distinct"}
    out: list[NearMiss] = []
    starts = [epoch(a.start_time) for a in acts]
    for i, a in enumerate(acts):
        plat_a = {platform(s) for s in a.source_ids}
        keys_a = set(_keys(a))
        j = i + 1
        while j < len(acts) and starts[j] - starts[i] <= WINDOW_S * NEAR_FACTOR:
            b = acts[j]
            j += 1
            if plat_a & {platform(s) for s in b.source_ids}:
                continue
            cmp = compare(a, b)
            keys_b = set(_keys(b))
            if any(frozenset((x, y)) in distinct for x in keys_a for y in keys_b):
                reasons = ["kept apart by unlink (a distinct link)"]
            elif cmp.matches:
                reasons = ["matches now, but was kept apart when merged (e.g. an ambiguity)"]
            elif cmp.near():
                reasons = cmp.failures()
            else:
                continue
            out.append(NearMiss(a=a.id, b=b.id, start_time=a.start_time, reasons=reasons, comparison=cmp.as_dict()))
    return out


class PossibleCopies(msgspec.Struct, kw_only=True):
    """Separate activities of one source that measure as one workout: likely the same
    recording imported twice (a re-exported or re-saved file).  Never merged
    automatically (one source's records are never joined); removing is the user's call."""

    source: str
    start_time: str
    sport: str
    keep: str  # the activity with the most sources and fields: the one to keep
    copies: list[str]  # the others
    reasons: list[str]  # each copy measured against ``keep``
    commands: list[str]  # how to remove the copies


def _fullness(act: Activity) -> tuple[int, int, str, str]:
    present = sum(1 for name in SUMMARY_FIELDS if _has_value(name, getattr(act, name)))
    return (-len(act.source_ids), -(present + bool(act.hr_splits)), act.first_seen_at, act.id)


def same_source_copies(cache: Cache) -> list[PossibleCopies]:
    """Activities sharing a source whose starts, sport and distance (or duration) pass
    the heuristic's limits, grouped (transitively) per source; a distinct link between
    two of them (``unlink``) keeps that pair out."""
    acts = sorted(cache.activities, key=sort_key)
    starts = [epoch(a.start_time) for a in acts]
    distinct = {_pair(x) for x in cache.links if x.kind == "distinct"}
    parent: dict[tuple[str, str], tuple[str, str]] = {}

    def root(node: tuple[str, str]) -> tuple[str, str]:
        while parent.setdefault(node, node) != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    measured: dict[tuple[str, str, str], Comparison] = {}
    for i, a in enumerate(acts):
        plat_a = {platform(s) for s in a.source_ids}
        keys_a = set(_keys(a))
        j = i + 1
        while j < len(acts) and starts[j] - starts[i] <= WINDOW_S:
            b = acts[j]
            j += 1
            shared = plat_a & {platform(s) for s in b.source_ids}
            if not shared or a.sport != b.sport:
                continue
            cmp = compare(a, b)
            if not cmp.matches or any(frozenset((x, y)) in distinct for x in keys_a for y in _keys(b)):
                continue
            for plat in shared:
                measured[(plat, a.id, b.id)] = measured[(plat, b.id, a.id)] = cmp
                parent[root((plat, b.id))] = root((plat, a.id))
    by_id = {a.id: a for a in acts}
    clusters: dict[tuple[str, str], list[Activity]] = {}
    for node in parent:
        clusters.setdefault(root(node), []).append(by_id[node[1]])
    out: list[PossibleCopies] = []
    for (plat, _), members in clusters.items():
        if len(members) < 2:
            continue
        keep, *copies = sorted(members, key=_fullness)
        copies.sort(key=sort_key)
        reasons, commands = [], []
        for c in copies:
            cmp = measured.get((plat, keep.id, c.id)) or compare(keep, c)
            reasons.append(f"{c.id}: {cmp.describe()}")
            others = sorted(s for s in c.source_ids if platform(s) != plat)
            note = f"  # also holds {', '.join(others)}: unlink it first to keep them" if others else ""
            commands.append(f'healthcache delete {c.id} --reason "duplicate of {keep.id}"{note}')
        out.append(
            PossibleCopies(
                source=plat,
                start_time=keep.start_time,
                sport=keep.sport,
                keep=keep.id,
                copies=[c.id for c in copies],
                reasons=reasons,
                commands=commands,
            )
        )
    out.sort(key=lambda p: (p.start_time, p.source, p.keep))
    return out
