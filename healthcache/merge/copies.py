"""Possible copies within one source: one workout imported twice (never merged automatically)."""

from __future__ import annotations

import msgspec

from healthcache.merge.fields import has_value
from healthcache.merge.links import link_pair
from healthcache.merge.rules import WINDOW_S, Comparison, compare, epoch, platform
from healthcache.model.records import SUMMARY_FIELDS, Activity, Cache, record_keys, sort_key


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
    present = sum(1 for name in SUMMARY_FIELDS if has_value(name, getattr(act, name)))
    return (-len(act.source_ids), -(present + bool(act.hr_splits)), act.first_seen_at, act.id)


def same_source_copies(cache: Cache) -> list[PossibleCopies]:
    """Activities sharing a source whose starts, sport and distance (or duration) pass
    the heuristic's limits, grouped (transitively) per source; a distinct link between
    two of them (``unlink``) keeps that pair out."""
    acts = sorted(cache.activities, key=sort_key)
    starts = [epoch(a.start_time) for a in acts]
    distinct = {link_pair(x) for x in cache.links if x.kind == "distinct"}
    parent: dict[tuple[str, str], tuple[str, str]] = {}

    def root(node: tuple[str, str]) -> tuple[str, str]:
        while parent.setdefault(node, node) != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    measured: dict[tuple[str, str, str], Comparison] = {}
    for i, a in enumerate(acts):
        plat_a = {platform(s) for s in a.source_ids}
        keys_a = set(record_keys(a))
        j = i + 1
        while j < len(acts) and starts[j] - starts[i] <= WINDOW_S:
            b = acts[j]
            j += 1
            shared = plat_a & {platform(s) for s in b.source_ids}
            if not shared or a.sport != b.sport:
                continue
            cmp = compare(a, b)
            if not cmp.matches or any(frozenset((x, y)) in distinct for x in keys_a for y in record_keys(b)):
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
