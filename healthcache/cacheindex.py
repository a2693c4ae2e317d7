"""What healthcache knows of the cache file it last wrote, read without loading the cache.

The index is a hint: it stands in for the cache only while the file on disk
has the size and mtime it recorded (``current_index``).  Kept apart from the
store so that a run with nothing new decides so without importing the store.
"""

from __future__ import annotations

import msgspec

from healthcache.config import Paths
from healthcache.model.records import Tombstone

__all__ = [
    "RECENT_TOMBSTONES",
    "CacheIndex",
    "current_index",
    "lineage_of",
    "new_lineage",
    "newest_tombstones",
    "read_index",
    "trusted_lineage",
]


class CacheIndex(msgspec.Struct, kw_only=True):
    """What we know about the file we last wrote, so a load can trust its bytes
    and a run with nothing new can decide so without parsing the cache."""

    sha256: str
    size: int
    mtime_ns: int
    activities: int
    records: int
    per_source: dict[str, int]
    updated_at: str
    # Carried unchanged by every guarded save (record keys only ever grow) and
    # renewed by any save that may have dropped keys: state written under one
    # lineage describes records the cache still holds.
    lineage: str = ""
    # For `status` without a parse (None: an index written before they were kept):
    # records held by activities per source, and the tombstones, newest first.
    live_per_source: dict[str, int] | None = None
    tombstones: int | None = None
    recent_tombstones: list[Tombstone] = []


RECENT_TOMBSTONES = 5  # how many tombstones the index keeps for `status`


def newest_tombstones(tombstones: list[Tombstone], n: int = RECENT_TOMBSTONES) -> list[Tombstone]:
    """Newest first; of deletes within one second, the later one (appended last) first."""
    return sorted(reversed(tombstones), key=lambda t: t.deleted_at, reverse=True)[:n]


def lineage_of(index: CacheIndex) -> str:
    """An index written before lineages existed gets one derived from its content."""
    return index.lineage or f"legacy-{index.sha256[:16]}"


def new_lineage() -> str:
    import secrets  # only a save renews a lineage: a day with nothing new does not load it

    return secrets.token_hex(8)


def current_index(paths: Paths) -> CacheIndex | None:
    """The cache index, only when it describes the file on disk (same size and mtime_ns).

    The one place that decides whether the index may stand in for the cache:
    ``status``, ``export`` and the lineage checks all ask here.
    """
    index = read_index(paths)
    if index is None:
        return None
    try:
        st = paths.cache.stat()
    except OSError:
        return None
    if st.st_size != index.size or st.st_mtime_ns != index.mtime_ns:
        return None
    return index


def trusted_lineage(paths: Paths) -> str | None:
    """The lineage of the cache on disk if it is the file healthcache last saved, judged by ``stat``.

    None when there is no index or the file's size or mtime differ from it:
    then whatever state files say must be checked against the cache itself.
    """
    index = current_index(paths)
    return None if index is None else lineage_of(index)


def read_index(paths: Paths) -> CacheIndex | None:
    try:
        return msgspec.json.decode(paths.index.read_bytes(), type=CacheIndex)
    except (OSError, msgspec.DecodeError, msgspec.ValidationError):
        return None
