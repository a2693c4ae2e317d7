"""What an export does, decided before anything is written: a pure function of what it found.

In: what the mirror holds (its meta table, each row's id, content hash and
orphan mark), each cache activity's id and content hash, and the options.
Out: an ``ExportPlan``: the schema action (keep, create, rebuild, or refuse)
and why, the activities to send, the rows to mark orphaned and the rows to
delete.  ``core.export`` applies a plan through one write path; a dry run is
that same path counting instead of writing.  No I/O here, so every decision is
tested directly (tests/test_export_plan.py).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from healthcache.export import tables
from healthcache.export.mirror import MirrorState, StoredRow


class SchemaAction(StrEnum):
    KEEP = "keep"  # the mirror has this version's schema: write into it
    CREATE = "create"  # no mirror yet: create every table
    REBUILD = "rebuild"  # asked for, or an older schema: rebuild every table in the one transaction
    REFUSE = "refuse"  # tables healthcache did not create, or a newer schema: write nothing


@dataclass(frozen=True)
class SchemaDecision:
    action: SchemaAction
    reason: str
    hint: str | None = None  # the next step, for a refusal

    @property
    def builds_tables(self) -> bool:
        """Every table is (re)created and filled with the whole cache."""
        return self.action in (SchemaAction.CREATE, SchemaAction.REBUILD)

    @property
    def note(self) -> str | None:
        """What the report says about the schema: only a rebuild is worth a line."""
        return self.reason if self.action is SchemaAction.REBUILD else None


def schema_action(state: MirrorState, *, full_refresh: bool) -> SchemaDecision:
    """Keep, create, rebuild or refuse the mirror as found, with the reason."""
    if full_refresh:
        return SchemaDecision(SchemaAction.REBUILD, "full refresh requested: every table rebuilt in one transaction")
    if not state.has_tables:
        return SchemaDecision(SchemaAction.CREATE, "the mirror has no tables yet: every table created")
    if state.meta is None or "schema_version" not in state.meta:
        return SchemaDecision(
            SchemaAction.REFUSE,
            "the database has an 'activities' table that healthcache did not create (no meta table)",
            hint="Export into another database, or pass --full-refresh to replace those tables.",
        )
    raw = state.meta["schema_version"]
    try:
        found = int(raw)
    except ValueError:
        found = -1  # unreadable: older than any version healthcache wrote
    if found == tables.SCHEMA_VERSION:
        return SchemaDecision(SchemaAction.KEEP, f"the mirror has this healthcache's schema version {raw}")
    if found > tables.SCHEMA_VERSION:
        return SchemaDecision(
            SchemaAction.REFUSE,
            f"the mirror has schema version {raw}, newer than this healthcache's {tables.SCHEMA_VERSION}",
            hint="Upgrade healthcache, or pass --full-refresh to rebuild it with this version's schema.",
        )
    return SchemaDecision(
        SchemaAction.REBUILD,
        f"mirror schema version {raw} is older than this healthcache's {tables.SCHEMA_VERSION}: "
        "rebuilt every table (full refresh) in one transaction",
    )


def trusts_stored_hashes(state: MirrorState) -> bool:
    """Content hashes mean something only from a mirror of this schema version (every version had ids)."""
    return state.meta is not None and state.meta.get("schema_version") == str(tables.SCHEMA_VERSION)


def has_stored_rows(state: MirrorState) -> bool:
    """A mirror healthcache wrote before: its activity rows are worth reading."""
    return state.has_tables and state.meta is not None


def same_cache(schema: SchemaDecision, meta: Mapping[str, str] | None, cache_sha256: str, *, resend_all: bool) -> bool:
    """The cache is the very file the last export sent, into a mirror that stays as it is."""
    recorded = (meta or {}).get("cache_sha256")
    return schema.action is SchemaAction.KEEP and not resend_all and recorded is not None and recorded == cache_sha256


def recorded_counts(meta: Mapping[str, str] | None) -> dict[str, int] | None:
    """The per-table row counts the last export stored in the meta table, if readable."""
    try:
        counts = json.loads((meta or {})["rows"])
    except (KeyError, ValueError):
        return None
    names = [t.name for t in tables.ALL_TABLES]
    if not isinstance(counts, dict) or not all(isinstance(counts.get(n), int) for n in names):
        return None
    return {n: counts[n] for n in names}


@dataclass(frozen=True)
class UnchangedPlan:
    """An export of the cache last exported: nothing to send."""

    processed: int
    orphans: int  # exact: the last export left every cache activity in the mirror, so the rest are orphans
    done: bool  # nothing left to do; False when orphans are to be deleted
    reason: str


def plan_unchanged(mirror_activities: int, cache_activities: int, *, delete_orphans: bool) -> UnchangedPlan:
    orphans = max(0, mirror_activities - cache_activities)
    if delete_orphans and orphans:
        return UnchangedPlan(
            cache_activities, orphans, False, f"cache unchanged, but {orphans} orphan row(s) to delete"
        )
    return UnchangedPlan(cache_activities, orphans, True, "cache unchanged since the last export: nothing to send")


@dataclass(frozen=True)
class ExportPlan[P]:
    """What one export sends and removes; ``P`` is an activity's payload (its bytes), carried through unread."""

    schema: SchemaDecision
    send: list[tuple[str, P, str]]  # (id, payload, content hash) to write, in cache order
    inserted: int
    updated: int
    unchanged: int
    orphans: list[str]  # mirror rows whose activity is no longer in the cache
    mark_orphaned: list[str]  # orphans to mark now (the rest were marked before)
    delete: list[str]  # rows that leave the mirror: deleted, or not carried over by a rebuild
    notes: list[str] = field(default_factory=list)  # the reasons worth telling, in the report's words

    @property
    def processed(self) -> int:
        return self.inserted + self.updated + self.unchanged


def plan_export[P](
    items: Sequence[tuple[str, P, str]],
    stored: Sequence[StoredRow],
    schema: SchemaDecision,
    *,
    delete_orphans: bool = False,
    resend_all: bool = False,
) -> ExportPlan[P]:
    """Compare the cache's content hashes with the mirror's and decide every row.

    An activity is sent when the mirror lacks it, holds another hash, holds it
    orphaned, or when ``resend_all`` (the naive approach, for the bench); a
    rebuild sends every activity and leaves the orphans behind.
    """
    if schema.action is SchemaAction.REFUSE:
        raise ValueError(f"no plan for a refused mirror: {schema.reason}")
    known = {r.id: r for r in stored}
    changed: list[tuple[str, P, str]] = []
    inserted = updated = unchanged = 0
    live: set[str] = set()
    for item in items:
        aid, _payload, digest = item
        live.add(aid)
        row = known.get(aid)
        if row is None:
            inserted += 1
        elif row.content_hash == digest and not row.orphaned and not resend_all:
            unchanged += 1
            continue
        else:
            updated += 1
        changed.append(item)
    orphans = [r.id for r in stored if r.id not in live]
    new_orphans = [r.id for r in stored if r.id not in live and not r.orphaned]
    notes = [schema.note] if schema.note else []
    mark: list[str]
    if schema.builds_tables:
        # A rebuild is an exact image of the cache: orphan rows are not carried over.
        if orphans:
            notes.append(f"{len(orphans)} orphan row(s) not carried over by the rebuild")
        send, mark, delete = list(items), [], orphans
    elif delete_orphans:
        send, mark, delete = changed, [], orphans
    else:
        send, mark, delete = changed, new_orphans, []
    return ExportPlan(schema, send, inserted, updated, unchanged, orphans, mark, delete, notes)
