"""Which activity a user means: one pure function behind every ID-taking command.

Accepted, in this order: the activity id, an alias (an id merged into it),
``source:source_id`` (any record it holds), or a short id as ``list`` prints it.

The short id is the first 8 hex digits of sha256 of the activity id.  It
depends on nothing but the id, so it never changes while the activity lives,
and when a merge absorbs an activity its old short id still resolves (aliases
are looked up too).  Eight digits make a clash rare (about one pair in 100k
activities); ``list`` then prints that pair longer, and any unique prefix of at
least 4 digits is accepted, so a clash is a question (exit 2), never a wrong
answer.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from healthcache.errors import UsageError
from healthcache.model.records import Activity, Cache

SHORT_LEN = 8
MIN_PREFIX = 4
_HEX = re.compile(r"^[0-9a-f]+$")


def short_hash(key: str) -> str:
    """The full hex digest short ids are prefixes of."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def short_id(activity_id: str) -> str:
    return short_hash(activity_id)[:SHORT_LEN]


def short_ids(ids: Iterable[str], others: Iterable[str] = ()) -> dict[str, str]:
    """id -> the short id to print: 8 digits, longer only where it would also name another
    key (another id in ``ids`` or one of ``others``, e.g. every alias), as git does."""
    digests = {i: short_hash(i) for i in ids}
    groups: dict[str, list[str]] = {}
    for d in digests.values():
        groups.setdefault(d[:SHORT_LEN], []).append(d)
    for key in others:
        if key not in digests:
            d = short_hash(key)
            groups.setdefault(d[:SHORT_LEN], []).append(d)
    out = {i: d[:SHORT_LEN] for i, d in digests.items()}
    for i, d in digests.items():
        group = groups[d[:SHORT_LEN]]
        if len(group) == 1:
            continue  # the common case: 8 digits name this id alone
        length = SHORT_LEN
        while length < len(d) and any(x != d and x.startswith(d[:length]) for x in group):
            length += 1
        out[i] = d[:length]
    return out


How = Literal["id", "alias", "source id", "short id"]


@dataclass(frozen=True)
class Resolved:
    activity: Activity
    how: How


@dataclass(frozen=True)
class Ambiguous:
    text: str
    candidates: tuple[Activity, ...]
    reason: str


@dataclass(frozen=True)
class NotFound:
    text: str
    reason: str


Resolution = Resolved | Ambiguous | NotFound


def resolve(cache: Cache, text: str) -> Resolution:
    """The activity ``text`` names, or why none or several do."""
    ident = text.strip()
    if not ident:
        return NotFound(text, "an empty id")
    if ":" in ident:
        for act in cache.activities:
            if ident == act.id:
                return Resolved(act, "id")
            if ident in act.aliases:
                return Resolved(act, "alias")
            if ident in act.record_keys():
                return Resolved(act, "source id")
        return NotFound(text, f"no activity has the id, alias or source id {ident!r}")
    prefix = ident.lower()
    if not _HEX.match(prefix):
        return NotFound(
            text, f"{ident!r} is neither an id (source:id) nor a short id (hex digits, as `healthcache list` prints)"
        )
    if len(prefix) < MIN_PREFIX:
        return NotFound(text, f"a short id needs at least {MIN_PREFIX} hex digits")
    hits: dict[str, Activity] = {}
    for act in cache.activities:
        if any(short_hash(key).startswith(prefix) for key in (act.id, *act.aliases)):
            hits[act.id] = act
    if not hits:
        return NotFound(text, f"no activity has the short id {ident!r}")
    if len(hits) > 1:
        found = tuple(sorted(hits.values(), key=lambda a: a.start_time))
        return Ambiguous(text, found, f"the short id {ident!r} names {len(found)} activities; give more digits")
    return Resolved(next(iter(hits.values())), "short id")


def describe_candidates(candidates: Iterable[Activity]) -> list[str]:
    """One line per candidate: the short id to type, the id, start and sport."""
    acts = list(candidates)
    shorts = short_ids(a.id for a in acts)
    return [f"{shorts[a.id]}  {a.id}  {a.start_time_local or a.start_time}  {a.sport}" for a in acts]


def require(cache: Cache, text: str) -> Activity:
    """The activity ``text`` names; a UsageError (exit 2) listing the candidates otherwise."""
    found = resolve(cache, text)
    if isinstance(found, Resolved):
        return found.activity
    if isinstance(found, Ambiguous):
        lines = describe_candidates(found.candidates)
        raise UsageError(found.reason + ":\n" + "\n".join(f"  {line}" for line in lines))
    raise UsageError(found.reason, hint="List activities with: healthcache list")


def canonical(cache: Cache, text: str) -> str:
    """``text`` as a full key the merge and delete code accept: itself when it has a
    colon (so a record key stays a record key), else the id its short id names."""
    if ":" in text:
        return text.strip()
    return require(cache, text).id
