"""The mirror protocol: what an export needs of a database, and the types both sides share.

The engines (``sqlite.py``, ``postgres.py``) implement ``Mirror`` and import
only this module and ``tables``; the export (``core.py``) drives them through
it.  So the export can load an engine on demand without the engine ever
needing the export back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Protocol

import msgspec

from healthcache.errors import EXIT_LOCK_BUSY, HealthcacheError
from healthcache.export import tables


class ExportError(HealthcacheError):
    """The export failed; the mirror is as it was (the transaction rolled back), the cache untouched."""


class ExportLockTimeout(ExportError):
    exit_code = EXIT_LOCK_BUSY


class MirrorState(msgspec.Struct, kw_only=True):
    """What an export found in the database before writing."""

    has_tables: bool  # the activities table exists
    meta: dict[str, str] | None  # None when there is no meta table
    size_bytes: int


class StoredRow(msgspec.Struct, array_like=True):
    """One activity row as the mirror holds it (``content_hash`` None from a mirror of another schema version)."""

    id: str
    content_hash: str | None
    orphaned: bool


class Sink(Protocol):
    """The writing half of a mirror: what applying an export plan calls, in this order.

    A dry run applies the same plan to a sink that only counts.
    """

    def rebuild_begin(self) -> None: ...
    def rebuild_insert(self, rows: tables.Rows) -> None: ...
    def rebuild_finish(self) -> None: ...
    def upsert(self, rows: tables.Rows) -> None: ...
    def delete(self, ids: Sequence[str]) -> None: ...
    def mark_orphans(self, ids: Sequence[str], at: str) -> None: ...


class Mirror(Sink, Protocol):
    """One database connection, used inside one transaction by ``export``."""

    engine: str
    display: str  # the target as shown to people: never a password
    sent: dict[str, int]  # rows sent per table
    statements: int

    def open(self, *, write: bool) -> AbstractContextManager[None]:
        """Connect (rolling back and closing on any error); ``write=False`` never creates or changes anything."""
        ...

    def lock(self, on_wait: Callable[[str], None] | None, timeout: float) -> None: ...
    def state(self) -> MirrorState: ...
    def stored_rows(self, *, with_hashes: bool) -> list[StoredRow]: ...
    def write_meta(self, values: dict[str, str]) -> None: ...
    def counts(self) -> dict[str, int]:
        """Rows per table of ``tables.ALL_TABLES`` (0 for a missing table)."""
        ...

    def commit(self) -> None: ...
    def size_bytes(self) -> int: ...
