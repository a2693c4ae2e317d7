"""Explaining the cache: which records were joined, by which rule, and what almost matched."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from healthcache.config import DEFAULT_PREFERENCE
from healthcache.merge.decisions import describe, recorded
from healthcache.merge.fields import Builder, Normaliser
from healthcache.merge.links import link_pair
from healthcache.merge.rules import NEAR_FACTOR, WINDOW_S, Comparison, compare, epoch, garmin_ref, platform
from healthcache.model.records import Activity, Cache, Link, record_keys, sort_key


class Member(msgspec.Struct, kw_only=True, omit_defaults=True):
    key: str
    rule: str | None = None  # None for the group's canonical record
    detail: str | None = None
    comparison: dict[str, Any] | None = None
    at: str | None = None  # when the join was made, if it was recorded (schema 2)


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
    """Every merged activity; with ``explain`` the rule that joined each record: the
    decision recorded when it was joined, else (files written before schema 2)
    derived from the data: a same link, an external id in a payload, else the
    heuristic's measurements (re-derived from the kept payloads)."""
    m = Builder(now=cache.updated_at, preference=preference, normalise=normalise)
    same: dict[frozenset[str], Link] = {link_pair(x): x for x in cache.links if x.kind == "same"}
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
            if not explain:
                members.append(Member(key=key))
            elif (join := recorded(act, key)) is not None:
                detail, comparison = describe(join, key)
                members.append(Member(key=key, rule=join.rule, detail=detail, comparison=comparison, at=join.at))
            else:  # written before decisions were recorded: re-derived from the data
                members.append(_explain_member(m, act, key, keys, same))
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


def _explain_member(m: Builder, act: Activity, key: str, keys: list[str], same: dict[frozenset[str], Link]) -> Member:
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
    distinct = {link_pair(x) for x in cache.links if x.kind == "distinct"}
    out: list[NearMiss] = []
    starts = [epoch(a.start_time) for a in acts]
    for i, a in enumerate(acts):
        plat_a = {platform(s) for s in a.source_ids}
        keys_a = set(record_keys(a))
        j = i + 1
        while j < len(acts) and starts[j] - starts[i] <= WINDOW_S * NEAR_FACTOR:
            b = acts[j]
            j += 1
            if plat_a & {platform(s) for s in b.source_ids}:
                continue
            cmp = compare(a, b)
            keys_b = set(record_keys(b))
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
