"""May a state entry (an import manifest entry, a sync "seen" payload) spare us reading its input again?

State files are hints, the cache is the truth.  An entry says "this input, as
it was, gave these record keys"; it may let the input be skipped only while
the cache still holds every one of those keys, as an id, an alias, a source id
or a tombstone (a tombstoned record is held: it must never come back).

Checking that needs the cache parsed, which the no-change paths must not pay.
So every state document records the cache *lineage* it was written under (see
``cacheindex.trusted_lineage``): a guarded save never drops a key and keeps the
lineage; anything that may drop keys (``restore --force``, a restore over a
corrupt file, an edit outside healthcache) starts a new one.  State of the
trusted lineage is believed as it is (``held is None``); any other state is
checked against the keys the cache holds.
"""

from __future__ import annotations

from collections.abc import Collection, Set
from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:
    from healthcache.model.records import Cache


class Decision(msgspec.Struct, frozen=True):
    """Whether to read the input again, and why (for the report)."""

    open: bool
    reason: str
    missing: int = 0  # keys the entry gave that the cache no longer holds


def decide(unchanged: bool, keys: Collection[str], held: Set[str] | None) -> Decision:
    """Read the input again unless it is unchanged and the cache holds everything it gave.

    ``unchanged``: the input matches its state entry (same stat, digest or
    payload); ``keys``: the record keys that entry says it produced; ``held``:
    the keys the cache holds, or None when the state was written under the
    lineage the cache on disk has (then the entry is trusted without a parse).
    """
    if not unchanged:
        return Decision(True, "new or changed since it was last read")
    if held is None:
        return Decision(False, "unchanged, and the cache is the one the state was written for")
    missing = sum(1 for k in keys if k not in held)
    if missing:
        return Decision(
            True,
            f"unchanged, but {missing} of the {len(keys)} record(s) it gave are not in the cache "
            "(restored or changed since): read again",
            missing,
        )
    return Decision(False, "unchanged, and the cache still holds every record it gave")


def needs_check(state_lineage: str | None, trusted: str | None) -> bool:
    """Whether state written under ``state_lineage`` must be checked against the cache.

    ``trusted`` is the lineage of the cache on disk when healthcache last saved
    it (``cacheindex.trusted_lineage``), None when the file is not that file.
    """
    return trusted is None or state_lineage != trusted


def held_keys(cache: Cache) -> frozenset[str]:
    """Every record key the cache holds, live or tombstoned."""
    keys: set[str] = set()
    for act in cache.activities:
        keys.update(act.record_keys())
    for tomb in cache.tombstones:
        keys.update(tomb.record_keys())
    return frozenset(keys)
