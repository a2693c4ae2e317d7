"""Field policy: which source provides each field of a merged activity.

Each field comes from the most preferred source (``[merge] preference``) that has
a value; a value is never replaced by a missing one, so HR from any source stays.
The cache keeps only the merged values and each source's raw payload, so when a
source ranked between others brings a value, the ``Builder`` asks the better
sources' normalisers (``healthcache.normalise``) whether they have one; if a
payload cannot be re-read it keeps the present value rather than guess.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

import msgspec

from healthcache import normalise as _normalise
from healthcache.model.records import SUMMARY_FIELDS, Activity, SourceRecord
from healthcache.zone import assumed_local

Normaliser = Callable[[str, Any], SourceRecord]


class FieldRule(NamedTuple):
    """How one field of a merged activity is chosen: the values that count as "no value" besides None."""

    empty: tuple[Any, ...] = ()


# Every merged field and what counts as empty in it; the provider is always the
# most preferred source with a value (HR fields too, so HR from any source is kept).
FIELD_RULES: dict[str, FieldRule] = {
    "start_time": FieldRule(),
    "sport": FieldRule(("other", "unspecified")),  # what a source says when it does not know
    "start_time_local": FieldRule(("",)),
    "timezone": FieldRule(("",)),
    "name": FieldRule(("",)),
    "distance_m": FieldRule((0,)),  # 0: a treadmill without a foot pod measured nothing
    "duration_s": FieldRule((0,)),
    "moving_time_s": FieldRule((0,)),
    "elevation_gain_m": FieldRule(),
    "calories": FieldRule((0,)),
    "avg_hr": FieldRule((0,)),  # 0: a recorder without a strap (Zwift writes it)
    "max_hr": FieldRule((0,)),
    "avg_cadence": FieldRule((0,)),
    "avg_power": FieldRule((0,)),
    "device": FieldRule(("",)),
    "hr_splits": FieldRule(([],)),
}
MERGED_FIELDS: tuple[str, ...] = tuple(FIELD_RULES)
assert set(MERGED_FIELDS) == {"start_time", "sport", *SUMMARY_FIELDS, "hr_splits"}


# Fields a source may give as an assumption rather than a reading: a Strava export row's local start is
# the wall clock of [display] timezone (``zone.assumed_local``).  An assumed value ranks after every
# recorded one, whatever ``[merge] preference`` says, so it only fills a gap.
ASSUMABLE: frozenset[str] = frozenset({"start_time_local"})


def has_value(name: str, value: Any) -> bool:
    """A value that counts: not None and not one of the field's empty values."""
    return value is not None and value not in FIELD_RULES[name].empty


class Builder:
    """Builds and joins activities by the field policy; remembers each record it re-derived."""

    def __init__(self, *, now: str, preference: Sequence[str], normalise: Normaliser | None = None) -> None:
        self.now = now
        self.pref = tuple(preference)
        self.normalise: Normaliser = normalise if normalise is not None else _normalise.from_raw
        self.members: dict[str, SourceRecord | None] = {}

    def rank(self, source: str) -> tuple[int, str]:
        order = self.pref
        return (order.index(source) if source in order else len(order), source)

    def field_rank(self, name: str, source: str, raw: Any) -> tuple[bool, int, str]:
        """Rank of ``source``'s value of ``name`` (its payload ``raw``): an assumed value after every
        recorded one, then ``[merge] preference``."""
        return (name in ASSUMABLE and assumed_local(raw), *self.rank(source))

    def top_source(self, source_ids: Iterable[str]) -> str:
        return min(source_ids, key=self.rank)

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

    def provider(self, act: Activity, name: str) -> tuple[bool, int, str] | None:
        """Rank of the source that provides ``name`` in ``act``; None when it cannot be told."""
        for s in sorted(act.source_ids, key=lambda s: self.field_rank(name, s, act.raw.get(s))):
            m = self.member(act, s)
            if m is None:
                return None
            if has_value(name, getattr(m, name)):
                return self.field_rank(name, s, act.raw.get(s))
        return None

    def pick_for_record(self, name: str, act: Activity, rec: SourceRecord) -> Any:
        """The value of ``name`` once ``rec`` is part of ``act``."""
        new = getattr(rec, name)
        cur = getattr(act, name)
        if new is None or new == cur:
            return cur
        if not has_value(name, new):
            return new if cur is None else cur
        if not has_value(name, cur):
            return new
        mine = self.field_rank(name, rec.source, rec.raw)
        better = [s for s in act.source_ids if s != rec.source and self.field_rank(name, s, act.raw.get(s)) < mine]
        if not better:
            return new  # the record's source is the most preferred one present
        if len(better) == len(act.source_ids):
            return cur  # every source present is preferred, and one of them provides cur
        # Sources both better and worse (or the record's own older version): cur came
        # from a better one only if a better one has a value.
        for s in sorted(better, key=lambda s: self.field_rank(name, s, act.raw.get(s))):
            m = self.member(act, s)
            if m is None or has_value(name, getattr(m, name)):
                return cur  # unknown counts as "it has one": never replace on a guess
        return new

    def pick_for_union(self, name: str, a: Activity, b: Activity) -> Any:
        va, vb = getattr(a, name), getattr(b, name)
        if vb is None or va == vb:
            return va
        if va is None:
            return vb
        if has_value(name, va) != has_value(name, vb):
            return va if has_value(name, va) else vb
        pa, pb = self.provider(a, name), self.provider(b, name)
        if pa is None or pb is None:
            pa = min(self.field_rank(name, s, a.raw.get(s)) for s in a.source_ids)
            pb = min(self.field_rank(name, s, b.raw.get(s)) for s in b.source_ids)
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
        """``act`` with ``rec`` as (or in place of) its ``rec.source`` record, and the fields that changed."""
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
            joins=[*keep.joins, *other.joins],
        )
