"""Manual links: ``link`` joins two records for good, ``unlink`` splits them for good.

A link overrides the automatic rules both ways; ``unlink`` rebuilds each part of
a split from the kept raw payloads, so a split never rests on a guess.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import msgspec

from healthcache.config import DEFAULT_PREFERENCE
from healthcache.errors import HealthcacheError, UsageError
from healthcache.merge.engine import Merger
from healthcache.merge.fields import Normaliser, has_value
from healthcache.merge.report import MergeReport, ReportEntry
from healthcache.merge.rules import LINK_MAX_S, Measured, compare, epoch, span
from healthcache.model import sports
from healthcache.model.records import HR_FIELDS, Activity, Cache, Join, Link, SourceRecord, record_keys

_RECORD_ID = re.compile(r"^[a-z][a-z0-9_]*:.+$")


def _check_ident(ident: str) -> str:
    ident = ident.strip()
    if not _RECORD_ID.match(ident):
        raise UsageError(f"{ident!r} is not an id: give an activity id, an alias or a source:source_id key")
    return ident


def _require(m: Merger, ident: str) -> Activity:
    act = m.index.resolve(ident)
    if act is None:
        raise UsageError(f"no activity has the id {ident!r}", hint="List ids with: healthcache dupes --json")
    return act


def link_pair(link: Link) -> frozenset[str]:
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
            f"their starts are {span(delta)} apart ({a.start_time} and {b.start_time}; "
            f"no clock or time-zone error spans more than {span(LINK_MAX_S)})"
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
    m = Merger(cache, now=now, preference=preference, normalise=normalise)
    xa, xb = _require(m, a), _require(m, b)
    pair = frozenset((a, b))
    report = MergeReport()
    links = [x for x in cache.links if not (link_pair(x) == pair and x.kind == "distinct")]
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
        keys_a, keys_b = set(record_keys(xa)), set(record_keys(xb))
        dropped = [x for x in links if x.kind == "distinct" and (set(x.ids) & keys_a) and (set(x.ids) & keys_b)]
        links = [x for x in links if x not in dropped]
        joined, gone = m.absorb(xa, xb, Join(rule="link", records=[b, a], at=now))
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
    if not any(link_pair(x) == pair and x.kind == "same" for x in links):
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
    m = Merger(cache, now=now, preference=preference, normalise=normalise)
    xa, xb = _require(m, a), _require(m, b)
    pair = frozenset((a, b))
    links = [x for x in cache.links if not (link_pair(x) == pair and x.kind == "same")]
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
        side = {k: i for i, p in enumerate((survivor, other)) for k in record_keys(p)}
        links = [x for x in links if not (x.kind == "same" and len({side.get(i) for i in x.ids} - {None}) == 2)]
        m.index.put(survivor)  # keeps xa.id, so it replaces xa
        m.index.put(other, new=True)
        moved, stayed = (kb, ka) if kb in record_keys(other) else (ka, kb)
        note = f"split {xa.id} into {survivor.id} and {other.id}"
        if kept_hr:
            note += f"; {survivor.id} keeps the merged activity's {', '.join(kept_hr)}"
        report.entries.append(ReportEntry(key=moved, activity_id=other.id, outcome="new", rule="link", detail=note))
        report.entries.append(
            ReportEntry(
                key=stayed, activity_id=survivor.id, outcome="updated", rule="link", fields=["source_ids"], detail=note
            )
        )
    if not any(link_pair(x) == pair and x.kind == "distinct" for x in links):
        links.append(Link(ids=[a, b], kind="distinct", at=now))
    return m.result(links=links), report


def _split(m: Merger, act: Activity, ka: str, kb: str, links: list[Link]) -> tuple[Activity, Activity, list[str]]:
    """Two activities from one: (the part keeping act.id, the other part), and the HR fields carried over."""
    records: dict[str, SourceRecord] = {}
    for source, sid in act.source_ids.items():
        raw = act.raw.get(source)
        if raw is None:
            raise HealthcacheError(
                f"cannot split {act.id}: no {source} payload is kept to rebuild {source}:{sid} from; nothing was changed"
            )
        try:
            rec = m.fields.normalise(source, raw)
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
    for key in sorted(records, key=lambda k: m.fields.rank(k.split(":", 1)[0])):
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
        ordered = sorted(side, key=lambda r: m.fields.rank(r.source))
        built = m.fields.new_activity(ordered[0])
        for rec in ordered[1:]:
            built, _ = m.fields.join(built, rec)
        if i == keep_index:
            ident = act.id
            other_keys = {r.key for r in sides[1 - i]}
            aliases = [x for x in act.aliases if x not in other_keys and x != ident]
            carry: dict[str, Any] = {}
            for name in HR_FIELDS:  # the guard: the activity keeping the id keeps its HR
                if has_value(name, getattr(act, name)) and not has_value(name, getattr(built, name)):
                    carry[name] = getattr(act, name)
                    kept_hr.append(name)
            built = msgspec.structs.replace(built, **carry)
        else:
            ident = next((x for x in act.aliases if x in keys), None) or ordered[0].key
            aliases = [x for x in act.aliases if x in keys and x != ident]
        part = msgspec.structs.replace(
            built, id=ident, aliases=aliases, first_seen_at=act.first_seen_at, updated_at=m.fields.now
        )
        keys = record_keys(part)  # a decision stays with a part holding both its records; unlink drops the rest
        parts.append(msgspec.structs.replace(part, joins=[j for j in act.joins if keys.issuperset(j.records)]))
    return parts[keep_index], parts[1 - keep_index], kept_hr
