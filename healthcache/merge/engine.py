"""The merge engine: place each incoming record by the ordered rules (``rules.RULES``).

``Merger.place`` takes one record through small steps: tombstone (a deleted
record never comes back), its own id (``same_id``), a strong id (``link`` or
``external_id``), the heuristic, then absorb: everything else the record
matched is thereby proved to be the same workout and is joined too (its ids
become aliases) when it can be; what cannot be joined is listed as a candidate.
When one record matches several activities, the closest (start time, then the
relative distance or duration difference) wins.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

import msgspec

from healthcache.codec import gc_paused
from healthcache.config import DEFAULT_PREFERENCE
from healthcache.merge.fields import Builder, Normaliser
from healthcache.merge.index import Index
from healthcache.merge.report import MergeReport, Outcome, ReportEntry
from healthcache.merge.rules import (
    FILE_NAME_MAX_S,
    PLATFORM,
    Comparison,
    Rule,
    compare,
    epoch,
    garmin_ref,
    platform,
)
from healthcache.model.records import Activity, Cache, Join, Link, SourceRecord, record_keys


class Ref(NamedTuple):
    """A key of another source that a record itself names (rule 2, forward)."""

    key: str
    detail: str
    weak: bool  # a file name: only trusted within FILE_NAME_MAX_S


class Strong(NamedTuple):
    """An activity a record is tied to by a link or an id, and why."""

    act: Activity
    rule: Literal["external_id", "link"]
    note: str  # the report's words
    partner: str  # the record that names or is named
    detail: str | None = None  # recorded with the decision (None: the keys say it)


@dataclass
class Choice:
    """Where a record goes, by which rule, and what else it matched."""

    target: Activity | None = None
    rule: Rule | None = None
    notes: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    others: list[tuple[Comparison, Activity]] = field(default_factory=list)
    decision: Join | None = None  # recorded on the activity when the record joins it


def link_tables(links: Iterable[Link]) -> tuple[dict[str, list[tuple[str, Link]]], dict[str, set[str]]]:
    """(key -> its same-linked partners, key -> its distinct-linked partners)."""
    same: dict[str, list[tuple[str, Link]]] = {}
    distinct: dict[str, set[str]] = {}
    for link in links:
        a, b = link.ids
        if link.kind == "same":
            same.setdefault(a, []).append((b, link))
            same.setdefault(b, []).append((a, link))
        else:
            distinct.setdefault(a, set()).add(b)
            distinct.setdefault(b, set()).add(a)
    return same, distinct


class Merger:
    """One merge call's working state: the index, the field builder and the link tables."""

    def __init__(
        self,
        cache: Cache,
        *,
        now: str,
        preference: Sequence[str] = DEFAULT_PREFERENCE,
        normalise: Normaliser | None = None,
    ) -> None:
        self.now = now
        self.fields = Builder(now=now, preference=preference, normalise=normalise)
        self.index = Index(cache)
        self.absorbed: list[str] = []
        self.tomb: set[str] = set()
        for t in cache.tombstones:
            self.tomb |= t.record_keys()
        self.same, self.distinct = link_tables(cache.links)

    def result(self, links: list[Link] | None = None) -> Cache:
        return self.index.result(links)

    # links and conflicts -------------------------------------------------------

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
        if self.is_distinct([rec.key], record_keys(act)):
            return f"{rec.key} and {act.id} are linked as distinct"
        return None

    def why_not_union(self, a: Activity, b: Activity, *, by_platform: bool) -> str | None:
        shared = set(a.source_ids) & set(b.source_ids)
        if by_platform:
            shared |= {platform(s) for s in a.source_ids} & {platform(s) for s in b.source_ids}
        if shared:
            return f"{a.id} and {b.id} both have {'/'.join(sorted(shared))} records"
        if self.is_distinct(record_keys(a), record_keys(b)):
            return f"{a.id} and {b.id} are linked as distinct"
        return None

    def absorb(self, a: Activity, b: Activity, decision: Join | None = None) -> tuple[Activity, str]:
        """Replace a and b by their union (recording ``decision``); returns it and the absorbed id."""
        joined = self.fields.union(a, b)
        if decision is not None:
            joined = msgspec.structs.replace(joined, joins=[*joined.joins, decision])
        gone = b if joined.id == a.id else a
        self.index.drop(gone)
        self.absorbed.append(gone.id)
        self.index.put(joined)
        return joined, gone.id

    # the rules -----------------------------------------------------------------

    def refs(self, rec: SourceRecord) -> list[Ref]:
        """Keys of other sources that ``rec`` itself names (rule 2, forward)."""
        out: list[Ref] = []
        if rec.source in PLATFORM:
            out.append(Ref(f"{PLATFORM[rec.source]}:{rec.source_id}", "same platform id", False))
        for src, plat in PLATFORM.items():
            if plat == rec.source:
                out.append(Ref(f"{src}:{rec.source_id}", "same platform id", False))
        if platform(rec.source) != "garmin":
            ref = garmin_ref(rec.external_id)
            if ref is not None:
                text = f"external_id {rec.external_id!r} names garmin:{ref.activity_id}"
                out.append(Ref(f"garmin:{ref.activity_id}", text, ref.weak))
                out.append(Ref(f"garmin_export:{ref.activity_id}", text, ref.weak))
        return out

    def strong_matches(self, rec: SourceRecord, refs: list[Ref]) -> list[Strong]:
        by_key = self.index.by_key
        out: list[Strong] = []
        for partner, link in self.same.get(rec.key, ()):
            act = by_key.get(partner)
            if act is not None:
                out.append(Strong(act, "link", f"linked to {partner} ({link.at})", partner))
        t = epoch(rec.start_time)
        for ref in refs:
            act = by_key.get(ref.key)
            if act is not None and (not ref.weak or abs(epoch(act.start_time) - t) <= FILE_NAME_MAX_S):
                named = None
                if ref.detail != "same platform id":
                    named = f"external_id {rec.external_id!r} of {rec.source} names {ref.key}"
                out.append(Strong(act, "external_id", ref.detail, ref.key, named))
        if platform(rec.source) == "garmin" and rec.key not in by_key:
            # Rule 2 reversed; a record already placed was looked up when it arrived.
            for act, ext, weak, source in self.index.ext_lookup(rec.source_id, t):
                if not weak or abs(epoch(act.start_time) - t) <= FILE_NAME_MAX_S:
                    note = f"external_id {ext!r} of {act.id} names {rec.key}"
                    partner = f"{source}:{act.source_ids.get(source, act.id)}"
                    named = f"external_id {ext!r} of {source} names {rec.key}"
                    out.append(Strong(act, "external_id", note, partner, named))
        return out

    def heuristic(self, rec: SourceRecord) -> list[tuple[Comparison, Activity]]:
        plat = platform(rec.source)
        out: list[tuple[Comparison, Activity]] = []
        for act in self.index.window(epoch(rec.start_time)):
            if any(platform(s) == plat for s in act.source_ids):
                continue  # never two records of one platform by heuristic
            if self.is_distinct([rec.key], record_keys(act)):
                continue
            cmp = compare(act, rec)
            if cmp.matches:
                out.append((cmp, act))
        out.sort(key=lambda x: (x[0].closeness(), x[1].id))
        return out

    # placing one record: tombstone, own id, strong id, heuristic, absorb --------

    def place(self, rec: SourceRecord) -> ReportEntry:
        """Merge one record into the working state."""
        key = rec.key
        refs = self.refs(rec)
        covered = [k for k in (key, *(r.key for r in refs)) if k in self.tomb]
        if covered:
            return ReportEntry(key=key, activity_id=None, outcome="tombstoned", detail=f"{covered[0]} was deleted")
        home = self.index.by_key.get(key)
        # Strong matches a distinct link forbids are dropped silently: the user decided.
        strong = [x for x in self.strong_matches(rec, refs) if not self.is_distinct([key], record_keys(x.act))]
        if home is not None:
            sid = home.source_ids.get(rec.source)
            if sid is not None and sid != rec.source_id:  # a stale alias names an activity with another id
                detail = f"{key} resolves to {home.id}, which already has {rec.source}:{sid}; not stored"
                return ReportEntry(
                    key=key, activity_id=home.id, outcome="conflict", candidates=[home.id], detail=detail
                )
            choice = Choice(target=home, rule="same_id")
        else:
            choice = self.choose(rec, strong)
        if choice.target is None:
            return self.add(rec, choice)
        return self.join(rec, choice, strong, is_new=home is None)

    def choose(self, rec: SourceRecord, strong: list[Strong]) -> Choice:
        """The first strong match that can take the record, else the closest heuristic match."""
        choice = Choice()
        for s in strong:
            problem = self.why_not_join(s.act, rec)
            if problem is None:
                choice.target, choice.rule = s.act, s.rule
                choice.notes.append(s.note)
                choice.decision = self.decision(rec, s)
                return choice
            choice.conflicts.append(s.act.id)
            choice.notes.append(f"{s.note}, but {problem}")
        found = self.heuristic(rec)
        if found:
            (cmp, choice.target), choice.others = found[0], found[1:]
            choice.rule = "heuristic"
            choice.notes.append(cmp.describe())
            choice.decision = self.decision(rec, (cmp, choice.target))
        return choice

    def decision(self, rec: SourceRecord, why: Strong | tuple[Comparison, Activity]) -> Join:
        """What to record when ``rec`` joins by a strong match or by the heuristic."""
        if isinstance(why, Strong):
            return Join(rule=why.rule, records=[rec.key, why.partner], at=self.now, detail=why.detail)
        cmp, act = why
        return Join(rule="heuristic", records=[rec.key, act.id], at=self.now, figures=cmp.figures())

    def add(self, rec: SourceRecord, choice: Choice) -> ReportEntry:
        """A new activity of its own; ``kept_apart`` when activities its ids name could not take it (listed)."""
        act = self.fields.new_activity(rec)
        self.index.put(act, new=True)
        self.note_external(rec, act)
        return ReportEntry(
            key=rec.key,
            activity_id=act.id,
            outcome="kept_apart" if choice.conflicts else "new",
            candidates=choice.conflicts,
            detail="; ".join(choice.notes) or None,
        )

    def join(self, rec: SourceRecord, choice: Choice, strong: list[Strong], *, is_new: bool) -> ReportEntry:
        """Join the record to its target, then absorb whatever else it matched.

        A new record that also matched activities it cannot be joined with is
        ``joined_closest``: the target was the closest that could take it (a link
        or an id first, then the nearest heuristic match); the rest stay apart.
        """
        assert choice.target is not None
        joined, fields = self.fields.join(choice.target, rec)
        if is_new and choice.decision is not None:
            joined = msgspec.structs.replace(joined, joins=[*joined.joins, choice.decision])
        if joined is not choice.target:
            self.index.put(joined)
        later: list[tuple[str, Rule, str, bool, Join]] = [
            (s.act.id, s.rule, s.note, False, self.decision(rec, s)) for s in strong
        ]
        later += [(a.id, "heuristic", c.describe(), True, self.decision(rec, (c, a))) for c, a in choice.others]
        joined, absorbed = self.absorb_rest(joined, later, choice)
        self.note_external(rec, joined)
        outcome: Outcome
        if is_new:
            outcome = "joined_closest" if choice.conflicts else "merged"
        else:
            outcome = "merged" if absorbed else "updated" if fields else "unchanged"
        if absorbed:
            fields = sorted(set(fields) | {"aliases", "source_ids"})
        return ReportEntry(
            key=rec.key,
            activity_id=joined.id,
            outcome=outcome,
            rule=choice.rule,
            fields=fields if outcome != "unchanged" else [],
            candidates=choice.conflicts,
            absorbed=absorbed,
            detail="; ".join(choice.notes) or None,
        )

    def absorb_rest(
        self, joined: Activity, later: list[tuple[str, Rule, str, bool, Join]], choice: Choice
    ) -> tuple[Activity, list[str]]:
        """Everything else the record matched is the same workout too, if it can be joined."""
        absorbed: list[str] = []
        for ident, how, why, by_platform, decision in later:
            cur = self.index.by_key.get(ident)
            if cur is None or cur.id == joined.id or self.is_distinct(record_keys(joined), record_keys(cur)):
                continue
            if cur.id in choice.conflicts:  # already named: its id could not take the record
                continue
            problem = self.why_not_union(joined, cur, by_platform=by_platform)
            if problem is None:
                joined, gone = self.absorb(joined, cur, decision)
                absorbed.append(gone)
                choice.notes.append(f"absorbed {gone} ({how}: {why})")
                if choice.rule == "same_id":
                    choice.rule = how
            else:
                choice.conflicts.append(cur.id)
                choice.notes.append(f"also matched {cur.id} ({how}: {why}) but {problem}")
        return joined, absorbed

    def note_external(self, rec: SourceRecord, act: Activity) -> None:
        if platform(rec.source) == "garmin":
            return
        ref = garmin_ref(rec.external_id)
        if ref is not None and rec.external_id is not None:
            self.index.note_external(act.id, rec.external_id, ref.weak, rec.source, ref.activity_id)


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
        m = Merger(cache, now=now, preference=preference, normalise=normalise)
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
