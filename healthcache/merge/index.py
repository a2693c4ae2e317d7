"""The merge's working index: every record key to its current activity, by start time.

The input cache is never touched: changed activities are new Structs kept in
``touched``; ``by_key`` maps every record key to the current version.  One O(n)
pass indexes the cache; each lookup is then a dict get or a bisect into the
sorted start times, so m records into n cost O(n + m log n).
"""

from __future__ import annotations

import bisect
import itertools
import operator

import msgspec

from healthcache.merge.rules import FILE_NAME_MAX_S, PLATFORM, WINDOW_S, epoch, garmin_ref, iso, platform
from healthcache.model.records import Activity, Cache, Link, record_keys, sort_key

GARMIN_SOURCES = frozenset(s for s in (*PLATFORM, "garmin") if platform(s) == "garmin")


class Index:
    """Where every record key lives now, what changed, and the sorted result."""

    def __init__(self, cache: Cache) -> None:
        self.cache = cache
        base = cache.activities
        starts = [a.start_time for a in base]
        if not all(map(operator.le, starts, itertools.islice(starts, 1, None))):
            base = sorted(base, key=sort_key)
            starts = [a.start_time for a in base]
        self.base = base
        self.starts = starts
        self.by_key: dict[str, Activity] = {key: act for act in base for key in record_keys(act)}
        self.touched: dict[str, Activity] = {}
        self.new_ids: list[str] = []
        self.new_set: set[str] = set()
        self.base_start: dict[str, str] = {}  # start_time in the input of every input activity changed
        self.removed: set[str] = set()
        self.buckets: dict[int, set[str]] = {}
        # garmin id -> (activity id, external_id, weak, source) of records placed in this call
        self.ext_new: dict[str, list[tuple[str, str, bool, str]]] = {}

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
        for k in record_keys(act):
            self.by_key[k] = act
        self.buckets.setdefault(int(epoch(act.start_time) // WINDOW_S), set()).add(act.id)

    def drop(self, gone: Activity) -> None:
        """``gone`` was absorbed into another activity (its keys are re-pointed by the next ``put``)."""
        self.remember(gone)
        self.removed.add(gone.id)
        self.touched.pop(gone.id, None)

    def window(self, t: float) -> list[Activity]:
        """Current activities starting within WINDOW_S of t."""
        out: dict[str, Activity] = {}
        i = bisect.bisect_left(self.starts, iso(t - WINDOW_S - 1))
        j = bisect.bisect_right(self.starts, iso(t + WINDOW_S + 1))
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

    def note_external(self, act_id: str, external_id: str, weak: bool, source: str, garmin_id: str) -> None:
        self.ext_new.setdefault(garmin_id, []).append((act_id, external_id, weak, source))

    def ext_lookup(self, garmin_id: str, t: float) -> list[tuple[Activity, str, bool, str]]:
        """Activities whose payload's external_id names this Garmin activity (rule 2, reversed):
        (activity, external_id, weak, the source whose payload says it).

        A copy of a workout starts the same day, so only activities within
        FILE_NAME_MAX_S of ``t`` are read: no pass over the whole cache.
        """
        found: list[tuple[str, str, bool, str]] = list(self.ext_new.get(garmin_id, ()))
        i = bisect.bisect_left(self.starts, iso(t - FILE_NAME_MAX_S))
        j = bisect.bisect_right(self.starts, iso(t + FILE_NAME_MAX_S))
        for act in self.base[i:j]:
            if not GARMIN_SOURCES.isdisjoint(act.source_ids):
                continue
            for source, payload in act.raw.items():
                ext = payload.get("external_id") if isinstance(payload, dict) else None
                ref = garmin_ref(ext) if isinstance(ext, str) else None
                if ref is not None and ref.activity_id == garmin_id:
                    found.append((act.id, ext, ref.weak, source))  # type: ignore[arg-type]
        out: list[tuple[Activity, str, bool, str]] = []
        for ident, ext, weak, source in found:
            cur = self.by_key.get(ident)
            if cur is not None and all(cur.id != o[0].id for o in out):
                out.append((cur, ext, weak, source))
        return out

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
        acts = _without(acts, drops)
        acts = _inserted(acts, movers)
        if links is None:
            return msgspec.structs.replace(self.cache, activities=acts)
        return msgspec.structs.replace(self.cache, activities=acts, links=links)


def _without(acts: list[Activity], drops: list[int]) -> list[Activity]:
    if not drops:
        return acts
    kept: list[Activity] = []
    prev = 0
    for pos in sorted(drops):
        kept.extend(acts[prev:pos])
        prev = pos + 1
    kept.extend(acts[prev:])
    return kept


def _inserted(acts: list[Activity], movers: list[Activity]) -> list[Activity]:
    """``movers`` put into the sorted ``acts`` by bisect (slice copies, no full re-sort)."""
    if not movers:
        return acts
    movers.sort(key=sort_key)
    merged: list[Activity] = []
    prev = 0
    for mover in movers:
        pos = bisect.bisect_left(acts, sort_key(mover), lo=prev, key=sort_key)
        merged.extend(acts[prev:pos])
        merged.append(mover)
        prev = pos
    merged.extend(acts[prev:])
    return merged
