"""Merge normalised source records into the cache: a pure function.

(PLACEHOLDER: rule 1 only -- same (source, source_id).  The full engine with
cross-source de-duplication replaces this module; the signature and the report
types below are the contract every source and importer relies on.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import msgspec

from healthcache.config import DEFAULT_PREFERENCE
from healthcache.model.records import SUMMARY_FIELDS, Activity, Cache, SourceRecord

Outcome = Literal["new", "updated", "merged", "unchanged", "ambiguous", "tombstoned"]


class ReportEntry(msgspec.Struct, kw_only=True, omit_defaults=True):
    """What happened to one incoming record."""

    key: str  # "<source>:<source_id>" of the incoming record
    activity_id: str | None  # the activity it now lives in (None if skipped)
    outcome: Outcome
    rule: str | None = None  # "same_id" | "external_id" | "heuristic" | "link" ...
    fields: list[str] = []  # fields that changed
    candidates: list[str] = []  # other activities it could have matched (ambiguity)
    detail: str | None = None


class MergeReport(msgspec.Struct, kw_only=True):
    entries: list[ReportEntry] = []
    absorbed: list[str] = []  # activity ids that became aliases of another activity

    def count(self, outcome: Outcome) -> int:
        return sum(1 for e in self.entries if e.outcome == outcome)

    def summary(self) -> dict[str, int]:
        outcomes: tuple[Outcome, ...] = ("new", "updated", "merged", "unchanged", "ambiguous", "tombstoned")
        return {o: self.count(o) for o in outcomes}

    @property
    def changed(self) -> bool:
        return any(e.outcome in ("new", "updated", "merged") for e in self.entries) or bool(self.absorbed)


def merge(
    cache: Cache,
    records: Sequence[SourceRecord],
    *,
    now: str,
    preference: Sequence[str] = DEFAULT_PREFERENCE,
) -> tuple[Cache, MergeReport]:
    """Return the new cache and what happened to each record; never mutates ``cache``."""
    by_key: dict[str, int] = {}
    acts = list(cache.activities)
    for i, a in enumerate(acts):
        for k in a.record_keys():
            by_key[k] = i
    tomb = set()
    for t in cache.tombstones:
        tomb |= t.record_keys()
    report = MergeReport()
    for rec in records:
        if rec.key in tomb:
            report.entries.append(ReportEntry(key=rec.key, activity_id=None, outcome="tombstoned"))
            continue
        fields = {f: getattr(rec, f) for f in SUMMARY_FIELDS if getattr(rec, f) is not None}
        if rec.key in by_key:
            i = by_key[rec.key]
            old = acts[i]
            changed = [f for f, v in fields.items() if getattr(old, f) != v]
            if rec.hr_splits and rec.hr_splits != old.hr_splits:
                fields["hr_splits"] = rec.hr_splits
                changed.append("hr_splits")
            raw = dict(old.raw)
            if raw.get(rec.source) != rec.raw:
                raw[rec.source] = rec.raw
                changed.append("raw")
            if not changed:
                report.entries.append(ReportEntry(key=rec.key, activity_id=old.id, outcome="unchanged"))
                continue
            acts[i] = msgspec.structs.replace(old, **fields, raw=raw, updated_at=now)
            report.entries.append(
                ReportEntry(key=rec.key, activity_id=old.id, outcome="updated", rule="same_id", fields=changed)
            )
        else:
            act = Activity(
                id=rec.key,
                source=rec.source,
                source_ids={rec.source: rec.source_id},
                start_time=rec.start_time,
                sport=rec.sport,
                sport_raw={rec.source: rec.sport_raw} if rec.sport_raw else {},
                first_seen_at=now,
                updated_at=now,
                hr_splits=rec.hr_splits,
                raw={rec.source: rec.raw},
                **fields,
            )
            by_key[rec.key] = len(acts)
            acts.append(act)
            report.entries.append(ReportEntry(key=rec.key, activity_id=act.id, outcome="new"))
    return msgspec.structs.replace(cache, activities=acts), report
