"""The engine-neutral half of the SQL mirror: what to send, and the report.

The cache is read as a snapshot (no lock).  Each activity's content hash is
compared with the one the mirror stores (one query for all of them) and only
new and changed activities are written, with their child rows replaced, in one
transaction.  A cache whose file hash equals the one recorded in the mirror's
meta table is recognised from the cache index and ``stat`` alone.  The engine
adapters (``sqlite.py``, ``postgres.py``) implement ``Mirror``; this module
never imports a database driver.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import msgspec

from healthcache import GENERATOR, codec
from healthcache.config import Config, Paths
from healthcache.errors import EXIT_LOCK_BUSY, CorruptInput, HealthcacheError
from healthcache.export import tables
from healthcache.model.records import Activity
from healthcache.store import Store, read_index
from healthcache.timeutil import now_utc, utc_iso

DEFAULT_BATCH_SIZE = 1000
DEFAULT_LOCK_WAIT = 600.0
MB = 1024 * 1024

Progress = Callable[[int, int], None]  # (activities written so far, total to write)


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
    id: str
    content_hash: str | None
    orphaned: bool


class Mirror(Protocol):
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
    def upsert(self, rows: tables.Rows) -> None: ...
    def mark_orphans(self, ids: Sequence[str], at: str) -> None: ...
    def delete(self, ids: Sequence[str]) -> None: ...
    def rebuild_begin(self) -> None: ...
    def rebuild_insert(self, rows: tables.Rows) -> None: ...
    def rebuild_finish(self) -> None: ...
    def write_meta(self, values: dict[str, str]) -> None: ...
    def counts(self) -> dict[str, int]:
        """Rows per table of ``tables.ALL_TABLES`` (0 for a missing table)."""
        ...

    def commit(self) -> None: ...
    def size_bytes(self) -> int: ...


class TableCounts(msgspec.Struct):
    before: int
    after: int | None


class ExportReport(msgspec.Struct, kw_only=True):
    """What one export did; ``to_json`` is the ``--json`` document."""

    target: str
    engine: str
    dry_run: bool
    full_refresh: bool
    processed: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    orphans: int = 0
    deleted: int = 0
    seconds: float = 0.0
    rows: dict[str, TableCounts] = {}
    size_mb_before: float = 0.0
    size_mb_after: float | None = None
    sent: dict[str, int] = {}  # rows sent (or, for a dry run, that would be sent) per table
    statements: int = 0  # every statement sent to the database, reads included
    cache_sha256: str | None = None
    cache_unchanged: bool = False
    notes: list[str] = []

    @property
    def changed(self) -> int:
        return self.inserted + self.updated

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = msgspec.to_builtins(self)
        out["size_mb"] = {"before": out.pop("size_mb_before"), "after": out.pop("size_mb_after")}
        return out

    def human(self) -> str:
        verb = "to send" if self.dry_run else "sent"
        head = f"export {self.engine} {self.target}: "
        if self.cache_unchanged:
            head += f"cache unchanged since the last export; processed {self.processed} activities, 0 sent"
        else:
            head += (
                f"processed {self.processed} activities, {self.changed} actually changed "
                f"({self.inserted} new, {self.updated} updated, {self.unchanged} unchanged)"
            )
        lines = [head + f" in {self.seconds:.2f} s" + (" [dry run: nothing written]" if self.dry_run else "")]
        lines.extend(self.notes)
        if self.orphans or self.deleted:
            if self.deleted:
                lines.append(f"orphans: {self.orphans}, {'would delete' if self.dry_run else 'deleted'} {self.deleted}")
            else:
                lines.append(
                    f"orphans: {self.orphans} row(s) for activities no longer in the cache "
                    "(kept, marked orphaned_at; --delete-orphans removes them)"
                )
        if any(self.sent.values()):
            lines.append(f"rows {verb}: " + ", ".join(f"{t} {n}" for t, n in self.sent.items() if n))
        if self.rows:
            width = max(len(t) for t in self.rows)
            lines.append(f"{'table':<{width}}  {'before':>9}  {'after':>9}")
            for name, c in self.rows.items():
                after = "-" if c.after is None else str(c.after)
                lines.append(f"{name:<{width}}  {c.before:>9}  {after:>9}")
        after_mb = "-" if self.size_mb_after is None else f"{self.size_mb_after:.1f}"
        lines.append(f"database size: {self.size_mb_before:.1f} MB -> {after_mb} MB")
        return "\n".join(lines)


@dataclass
class _Plan:
    changed: list[tuple[str, msgspec.Raw, str]] = field(default_factory=list)  # (id, canonical bytes, hash)
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    orphans: list[str] = field(default_factory=list)
    new_orphans: list[str] = field(default_factory=list)


class _RawCache(msgspec.Struct):
    """The cache with each activity left as its undecoded bytes: a scan, not a parse into objects."""

    updated_at: str
    activities: list[msgspec.Raw]


class _IdOnly(msgspec.Struct):
    id: str


_raw_decoder = msgspec.json.Decoder(_RawCache)
_id_decoder = msgspec.json.Decoder(_IdOnly)
_activity_decoder = msgspec.json.Decoder(Activity)
_encoder = msgspec.json.Encoder()
# The canonical encoding writes ``id`` first; anything else falls back to a real decode.
_LEADING_ID = re.compile(rb'\{\s*"id"\s*:\s*"([^"\\]*)"')


def content_hash(encoded: bytes | msgspec.Raw) -> str:
    """The hash of an activity's bytes in the canonical cache encoding.

    SHA-256 (128 bits of it): CPUs hash it in hardware, about twice as fast as
    BLAKE2 here, and a 100k-activity cache is hashed on every changed export.
    """
    return hashlib.sha256(encoded).hexdigest()[:32]


@dataclass
class _Snapshot:
    """One consistent read of the cache: its file hash and each activity's canonical bytes."""

    sha256: str
    updated_at: str
    items: list[tuple[str, msgspec.Raw, str]]  # (id, canonical bytes, content hash)


def _read_snapshot(store: Store) -> _Snapshot:
    """Read the cache once (saves replace it by rename, so no lock is needed).

    Bytes whose sha256 is the one the store recorded at its last save are its
    validated canonical encoding, so each activity's bytes are sliced out without
    building objects (a 100k-activity cache scans in a fraction of the typed
    decode).  Any other file goes through the store's full validation and is
    re-encoded canonically, so content hashes never depend on how it was read.
    """
    paths = store.paths
    try:
        data = paths.cache.read_bytes()
    except FileNotFoundError as exc:
        raise ExportError(
            f"there is no cache at {paths.cache}; nothing to export",
            hint="Check --home (or $HEALTHCACHE_HOME), or run sync/import first.",
        ) from exc
    except OSError as exc:
        raise ExportError(f"cannot read the cache {paths.cache}: {exc}") from exc
    sha = hashlib.sha256(data).hexdigest()
    index = read_index(paths)
    if index is None or index.sha256 != sha:
        loaded = store.read()
        data = codec.encode(loaded.cache)
        sha = loaded.sha256 or sha
    raw = _raw_decoder.decode(data)
    items: list[tuple[str, msgspec.Raw, str]] = []
    for chunk in raw.activities:
        m = _LEADING_ID.match(chunk)  # type: ignore[call-overload]
        items.append((m[1].decode() if m else _id_decoder.decode(chunk).id, chunk, content_hash(chunk)))
    return _Snapshot(sha256=sha, updated_at=raw.updated_at, items=items)


def cache_fingerprint(paths: Paths) -> tuple[str, int] | None:
    """(sha256, activities) of the cache from its index, when ``stat`` proves the index current."""
    index = read_index(paths)
    if index is None:
        return None
    try:
        st = paths.cache.stat()
    except OSError:
        return None
    if st.st_size != index.size or st.st_mtime_ns != index.mtime_ns:
        return None
    return index.sha256, index.activities


def _batches[X](items: Sequence[X], size: int) -> Iterator[Sequence[X]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _recorded_counts(meta: dict[str, str] | None) -> dict[str, int] | None:
    """The per-table row counts the last export stored in the meta table, if readable."""
    try:
        counts = json.loads((meta or {})["rows"])
    except (KeyError, ValueError):
        return None
    names = [t.name for t in tables.ALL_TABLES]
    if not isinstance(counts, dict) or not all(isinstance(counts.get(n), int) for n in names):
        return None
    return {n: counts[n] for n in names}


def _schema_decision(state: MirrorState, full_refresh: bool) -> tuple[bool, str | None]:
    """(rebuild?, why) for the mirror as found."""
    if full_refresh:
        return True, "full refresh requested: every table rebuilt in one transaction"
    if not state.has_tables:
        return True, None
    if state.meta is None or "schema_version" not in state.meta:
        raise ExportError(
            "the database has an 'activities' table that healthcache did not create (no meta table)",
            hint="Export into another database, or pass --full-refresh to replace those tables.",
        )
    raw = state.meta["schema_version"]
    try:
        found = int(raw)
    except ValueError:
        found = -1
    if found == tables.SCHEMA_VERSION:
        return False, None
    if found > tables.SCHEMA_VERSION:
        raise ExportError(
            f"the mirror has schema version {raw}, newer than this healthcache's {tables.SCHEMA_VERSION}",
            hint="Upgrade healthcache, or pass --full-refresh to rebuild it with this version's schema.",
        )
    return True, (
        f"mirror schema version {raw} is older than this healthcache's {tables.SCHEMA_VERSION}: "
        "rebuilt every table (full refresh) in one transaction"
    )


def _plan(snapshot: _Snapshot, stored: list[StoredRow], *, resend_all: bool) -> _Plan:
    plan = _Plan()
    known = {r.id: r for r in stored}
    live: set[str] = set()
    for aid, chunk, digest in snapshot.items:
        live.add(aid)
        row = known.get(aid)
        if row is None:
            plan.inserted += 1
        elif row.content_hash == digest and not row.orphaned and not resend_all:
            plan.unchanged += 1
            continue
        else:
            plan.updated += 1
        plan.changed.append((aid, chunk, digest))
    for row in stored:
        if row.id not in live:
            plan.orphans.append(row.id)
            if not row.orphaned:
                plan.new_orphans.append(row.id)
    return plan


def _rows(chunk: Sequence[tuple[str, msgspec.Raw, str]], cache_path: Path) -> tables.Rows:
    """Decode (and so validate) just the activities being written."""
    items = []
    for aid, raw, digest in chunk:
        try:
            act = _activity_decoder.decode(raw)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise CorruptInput(cache_path, f"activity {aid!r} does not match the cache schema: {exc}") from exc
        items.append((act, _encoder.encode(act).decode(), digest))
    return tables.rows_for(items)


def export(
    mirror: Mirror,
    store: Store,
    *,
    full_refresh: bool = False,
    delete_orphans: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    dry_run: bool = False,
    progress: Progress | None = None,
    on_lock_wait: Callable[[str], None] | None = None,
    lock_wait: float = DEFAULT_LOCK_WAIT,
    clock: Callable[[], datetime] = now_utc,
    resend_all: bool = False,
) -> ExportReport:
    """Bring ``mirror`` up to date with the cache; one transaction, rolled back on any failure.

    ``resend_all`` writes every activity as if changed (the naive approach, for the bench).
    """
    if batch_size < 1:
        raise ExportError("--batch-size must be at least 1")
    started = time.perf_counter()
    paths = store.paths
    if not paths.cache.exists():
        raise ExportError(
            f"there is no cache at {paths.cache}; nothing to export",
            hint="Check --home (or $HEALTHCACHE_HOME), or run sync/import first.",
        )
    fingerprint = cache_fingerprint(paths)
    report = ExportReport(target=mirror.display, engine=mirror.engine, dry_run=dry_run, full_refresh=full_refresh)

    with mirror.open(write=not dry_run):
        report.target = mirror.display
        if not dry_run:
            mirror.lock(on_lock_wait, lock_wait)
        state = mirror.state()
        report.size_mb_before = round(state.size_bytes / MB, 3)
        rebuild, why = _schema_decision(state, full_refresh)
        report.full_refresh = full_refresh or (rebuild and state.has_tables)
        if why:
            report.notes.append(why)
        recorded = (state.meta or {}).get("cache_sha256")
        can_skip = not rebuild and not resend_all and recorded is not None

        def unchanged(sha: str, n_activities: int) -> bool:
            """The cache is the one last exported: report, and say whether there is nothing left to do."""
            # The counts the last export recorded are the mirror's: nothing has written to it since.
            counts = _recorded_counts(state.meta) or mirror.counts()
            report.cache_unchanged = True
            report.cache_sha256 = sha
            report.processed = report.unchanged = n_activities
            # Exact: the last export left every cache activity in the mirror, so the rest are orphans.
            report.orphans = max(0, counts.get("activities", 0) - n_activities)
            report.rows = {name: TableCounts(n, n) for name, n in counts.items()}
            report.size_mb_after = report.size_mb_before
            report.sent = dict(mirror.sent)
            report.statements = mirror.statements
            report.seconds = round(time.perf_counter() - started, 3)
            if delete_orphans and report.orphans:
                report.cache_unchanged = False
                return False
            return True

        if can_skip and fingerprint is not None and fingerprint[0] == recorded and unchanged(*fingerprint):
            return report
        version_ok = state.meta is not None and state.meta.get("schema_version") == str(tables.SCHEMA_VERSION)
        # The cache is read and hashed in a thread while the database counts and sends its
        # stored hashes (both release the GIL for most of their work).
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(_read_snapshot, store)
            try:
                before = mirror.counts()
                # Hashes only from a mirror of this schema version; an older one gives ids (every version had them).
                has_rows = state.has_tables and state.meta is not None
                stored = mirror.stored_rows(with_hashes=version_ok) if has_rows else []
            finally:
                snapshot = pending.result()
        report.cache_sha256 = snapshot.sha256
        if can_skip and snapshot.sha256 == recorded and unchanged(snapshot.sha256, len(snapshot.items)):
            return report
        report.rows = {name: TableCounts(n, None) for name, n in before.items()}
        plan = _plan(snapshot, stored, resend_all=resend_all)
        report.processed = len(snapshot.items)
        report.inserted, report.updated, report.unchanged = plan.inserted, plan.updated, plan.unchanged
        report.orphans = len(plan.orphans)
        work: Sequence[tuple[str, msgspec.Raw, str]]
        if rebuild:
            # A rebuild is an exact image of the cache: orphan rows are not carried over.
            report.deleted = len(plan.orphans)
            if plan.orphans:
                report.notes.append(f"{len(plan.orphans)} orphan row(s) not carried over by the rebuild")
            work = snapshot.items
        else:
            work = plan.changed
            if delete_orphans:
                report.deleted = len(plan.orphans)

        if dry_run:
            for chunk in _batches(work, batch_size):
                for table, rows in _rows(chunk, paths.cache).by_table():
                    report.sent[table.name] = report.sent.get(table.name, 0) + len(rows)
            report.statements = mirror.statements
            report.seconds = round(time.perf_counter() - started, 3)
            return report

        now = utc_iso(clock())
        total = len(work)
        done = 0
        if rebuild:
            mirror.rebuild_begin()
        for chunk in _batches(work, batch_size):
            rows = _rows(chunk, paths.cache)
            if rebuild:
                mirror.rebuild_insert(rows)
            else:
                mirror.upsert(rows)
            done += len(chunk)
            if progress:
                progress(done, total)
        if rebuild:
            mirror.rebuild_finish()
        elif delete_orphans:
            for ids in _batches(plan.orphans, batch_size):
                mirror.delete(list(ids))
        elif plan.new_orphans:
            for ids in _batches(plan.new_orphans, batch_size):
                mirror.mark_orphans(list(ids), now)
        after = mirror.counts()
        meta = {
            "schema_version": str(tables.SCHEMA_VERSION),
            "generator": GENERATOR,
            "exported_at": now,
            "cache_sha256": snapshot.sha256,
            "cache_updated_at": snapshot.updated_at,
            "activities": str(len(snapshot.items)),
        }
        meta_keys = {*(state.meta or {}), *meta, "rows"}
        after[tables.META.name] = len(meta_keys)
        meta["rows"] = json.dumps(after, sort_keys=True)
        mirror.write_meta(meta)
        mirror.commit()
        size_after = mirror.size_bytes()
        report.sent = dict(mirror.sent)
        report.statements = mirror.statements
    report.rows = {
        name: TableCounts(report.rows[name].before if name in report.rows else 0, n) for name, n in after.items()
    }
    report.size_mb_after = round(size_after / MB, 3)
    report.seconds = round(time.perf_counter() - started, 3)
    return report


# ---- targets -------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Where to export: ``sqlite`` with a file path, or ``postgres`` with a URL/conninfo ("" = PG* environment)."""

    engine: str
    location: str

    def open(self, **kwargs: Any) -> Mirror:
        if self.engine == "sqlite":
            from healthcache.export.sqlite import SqliteMirror

            return SqliteMirror(Path(self.location), **kwargs)
        from healthcache.export.postgres import PostgresMirror

        return PostgresMirror(self.location, **kwargs)


def parse_target(spec: str, config: Config, paths: Paths) -> Target:
    """A configured target: ``sqlite:PATH`` (relative to the home), ``postgres`` or ``postgres:URL``/a URL."""
    text = spec.strip()
    if text.startswith("sqlite:"):
        location = text.removeprefix("sqlite:")
        if not location:
            raise ExportError(f"export target {spec!r} names no file")
        path = Path(location).expanduser()
        return Target("sqlite", str(path if path.is_absolute() else paths.home / path))
    if text in ("postgres", "postgresql"):
        return Target("postgres", config.export.postgres_url or "")
    for prefix in ("postgres:", "postgresql:"):
        if text.startswith(prefix) and not text.startswith(prefix + "//"):
            return Target("postgres", text.removeprefix(prefix))
    if text.startswith(("postgres://", "postgresql://")):
        return Target("postgres", text)
    raise ExportError(
        f"unknown export target {redact_text(spec)!r}",
        hint='Use "sqlite:PATH", "postgres" (the configured URL or the PG* environment) or a postgresql:// URL.',
    )


def redact_text(text: str) -> str:
    """A target spec with any URL password masked, for messages."""
    return re.sub(r"(://[^:/@\s]*:)[^@/\s]*@", r"\1***@", text)


@dataclass(frozen=True)
class ConfiguredExport:
    """One configured target's outcome after a sync or import: a report or an error message."""

    target: str
    report: ExportReport | None = None
    error: str | None = None
    exit_code: int = 0


def run_configured_exports(
    paths: Paths,
    config: Config,
    *,
    store: Store | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    lock_wait: float = DEFAULT_LOCK_WAIT,
) -> list[ConfiguredExport]:
    """Export to every ``[export] targets`` entry; failures are returned, never raised.

    Call it after the save (outside the cache lock is best: it only reads the
    cache).  A failed export leaves that mirror as it was and cannot undo the save.
    """
    outcomes: list[ConfiguredExport] = []
    store = store if store is not None else Store(paths, config)
    for spec in config.export.targets:
        shown = redact_text(spec)
        try:
            target = parse_target(spec, config, paths)
            mirror = target.open()
            shown = mirror.display
            report = export(mirror, store, batch_size=batch_size, lock_wait=lock_wait)
            outcomes.append(ConfiguredExport(target=shown, report=report))
        except HealthcacheError as exc:
            outcomes.append(ConfiguredExport(target=shown, error=str(exc), exit_code=exc.exit_code))
        except Exception as exc:  # an export must never undo or hide the save that preceded it
            outcomes.append(
                ConfiguredExport(
                    target=shown, error=f"export to {shown} failed: {type(exc).__name__}: {exc}", exit_code=1
                )
            )
    return outcomes
