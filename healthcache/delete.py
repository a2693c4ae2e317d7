"""Explicit deletes: the only way an activity may leave the cache.

The tombstone keeps every id of the deleted activity, so the guard lets it go
and a later sync or import of the same record does not bring it back.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from healthcache import lookup
from healthcache.errors import UsageError
from healthcache.model.records import Activity, Cache, Tombstone
from healthcache.store import SaveResult, Store


def find(cache: Cache, ident: str) -> Activity | None:
    """The activity an id, alias or ``source:source_id`` key resolves to."""
    for act in cache.activities:
        if ident == act.id or ident in act.aliases or ident in act.record_keys():
            return act
    return None


def tombstone_for(act: Activity, *, reason: str, now: str) -> Tombstone:
    return Tombstone(
        id=act.id, deleted_at=now, reason=reason, aliases=list(act.aliases), source_ids=dict(act.source_ids)
    )


def delete(cache: Cache, ident: str, *, reason: str, now: str) -> tuple[Cache, Activity]:
    """Pure: the cache without the activity, plus its tombstone."""
    if not reason.strip():
        raise UsageError("a delete needs a --reason")
    act = lookup.require(cache, ident)  # id, alias, source:id or short id; ambiguity is exit 2
    activities = [a for a in cache.activities if a.id != act.id]
    tombstones = [*cache.tombstones, tombstone_for(act, reason=reason.strip(), now=now)]
    return msgspec.structs.replace(cache, activities=activities, tombstones=tombstones), act


def delete_activity(
    store: Store,
    ident: str,
    *,
    reason: str,
    dry_run: bool = False,
    lock_timeout: float | None = 0.0,
    on_wait: Callable[[str | None], None] | None = None,
) -> tuple[Activity, SaveResult | None]:
    from healthcache.timeutil import utc_iso

    with store.transaction(lock_timeout=lock_timeout, on_wait=on_wait) as tx:
        new, act = delete(tx.cache, ident, reason=reason, now=utc_iso(store.clock()))
        if dry_run:
            return act, None
        return act, tx.save(new)
