"""Export: bring a SQL mirror up to date with the cache, sending only what changed.

The cache is read as a snapshot (no lock).  Each activity's content hash is
compared with the one the mirror stores (one query for all of them); the
decisions are a pure plan (``plan.py``), and one write path applies it in one
transaction: new and changed activities written with their child rows
replaced, orphans marked or deleted, or every table rebuilt.  A dry run is the
same path with a sink that counts.  A cache whose file hash equals the one
recorded in the mirror's meta table is recognised from the cache index and
``stat`` alone.  The engines (``sqlite.py``, ``postgres.py``) implement
``mirror.Mirror`` and are loaded through ``targets.Target``; this module never
imports a database driver.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import msgspec

from healthcache import GENERATOR, codec
from healthcache import progress as prog
from healthcache.cacheindex import current_index, read_index
from healthcache.config import Config, Paths
from healthcache.errors import CorruptInput, HealthcacheError
from healthcache.export import plan, tables
from healthcache.export.mirror import ExportError, ExportLockTimeout, Mirror, MirrorState, Sink, StoredRow
from healthcache.export.plan import ExportPlan, SchemaAction
from healthcache.export.report import ExportReport, TableCounts
from healthcache.export.targets import Target, parse_target, redact_text
from healthcache.model.records import Activity
from healthcache.store import Store
from healthcache.timeutil import now_utc, utc_iso

# Names that moved to their own modules stay importable from here.
__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_LOCK_WAIT",
    "ConfiguredExport",
    "ExportError",
    "ExportLockTimeout",
    "ExportReport",
    "Mirror",
    "MirrorState",
    "StoredRow",
    "TableCounts",
    "Target",
    "cache_fingerprint",
    "content_hash",
    "export",
    "parse_target",
    "redact_text",
    "run_configured_exports",
]

DEFAULT_BATCH_SIZE = 1000
DEFAULT_LOCK_WAIT = 600.0
MB = 1024 * 1024

Progress = Callable[[int, int], None]  # (activities written so far, total to write)
CacheItem = tuple[str, msgspec.Raw, str]  # (id, canonical bytes, content hash)


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
    items: list[CacheItem]


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
        raise _no_cache(paths) from exc
    except OSError as exc:
        raise ExportError(f"cannot read the cache {paths.cache}: {exc}") from exc
    sha = hashlib.sha256(data).hexdigest()
    # The bytes are in hand, so their hash decides, not ``current_index``'s stat.
    index = read_index(paths)
    if index is None or index.sha256 != sha:
        loaded = store.read()
        data = codec.encode_body(loaded.cache)  # sliced, never written: no final newline needed
        sha = loaded.sha256 or sha
    raw = _raw_decoder.decode(data)
    items: list[CacheItem] = []
    for chunk in raw.activities:
        m = _LEADING_ID.match(chunk)
        items.append((m[1].decode() if m else _id_decoder.decode(chunk).id, chunk, content_hash(chunk)))
    return _Snapshot(sha256=sha, updated_at=raw.updated_at, items=items)


def _no_cache(paths: Paths) -> ExportError:
    return ExportError(
        f"there is no cache at {paths.cache}; nothing to export",
        hint="Check --home (or $HEALTHCACHE_HOME), or run sync/import first.",
    )


def cache_fingerprint(paths: Paths) -> tuple[str, int] | None:
    """(sha256, activities) of the cache from its index, when ``stat`` proves the index current."""
    index = current_index(paths)
    return None if index is None else (index.sha256, index.activities)


def _batches[X](items: Sequence[X], size: int) -> Iterator[Sequence[X]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _rows(chunk: Sequence[CacheItem], cache_path: Path) -> tables.Rows:
    """Decode (and so validate) just the activities being written."""
    items = []
    for aid, raw, digest in chunk:
        try:
            act = _activity_decoder.decode(raw)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise CorruptInput(cache_path, f"activity {aid!r} does not match the cache schema: {exc}") from exc
        items.append((act, _encoder.encode(act).decode(), digest))
    return tables.rows_for(items)


class _Counter:
    """A sink that writes nothing: the rows each table would get, counted into ``sent`` (a dry run)."""

    def __init__(self, sent: dict[str, int]) -> None:
        self.sent = sent

    def _count(self, rows: tables.Rows) -> None:
        for table, data in rows.by_table():
            self.sent[table.name] = self.sent.get(table.name, 0) + len(data)

    def rebuild_begin(self) -> None:
        pass

    def rebuild_insert(self, rows: tables.Rows) -> None:
        self._count(rows)

    def rebuild_finish(self) -> None:
        pass

    def upsert(self, rows: tables.Rows) -> None:
        self._count(rows)

    def delete(self, ids: Sequence[str]) -> None:
        pass

    def mark_orphans(self, ids: Sequence[str], at: str) -> None:
        pass


def _apply(
    sink: Sink,
    todo: ExportPlan[msgspec.Raw],
    cache_path: Path,
    *,
    batch_size: int,
    progress: Progress | None,
    now: str,
    tracker: prog.Progress = prog.SILENT,
) -> None:
    """The one write path: the plan's activities in batches, then its deletes or orphan marks.

    A rebuild writes fresh tables, so the rows it leaves behind need no delete.
    """
    rebuild = todo.schema.builds_tables
    total, done = len(todo.send), 0
    if rebuild:
        sink.rebuild_begin()
    with prog.step(tracker, total, "exporting activities"):
        for chunk in _batches(todo.send, batch_size):
            rows = _rows(chunk, cache_path)  # decoded, so validated, in a dry run too
            if rebuild:
                sink.rebuild_insert(rows)
            else:
                sink.upsert(rows)
            done += len(chunk)
            tracker.advance(len(chunk), f"activities {done - len(chunk) + 1}-{done}")
            if progress:
                progress(done, total)
    if rebuild:
        sink.rebuild_finish()
        return
    for ids in _batches(todo.delete, batch_size):
        sink.delete(list(ids))
    for ids in _batches(todo.mark_orphaned, batch_size):
        sink.mark_orphans(list(ids), now)


def _report_unchanged(
    report: ExportReport, mirror: Mirror, state: MirrorState, sha: str, n_activities: int, *, delete_orphans: bool
) -> bool:
    """The cache is the one last exported: report, and say whether there is nothing left to do."""
    # The counts the last export recorded are the mirror's: nothing has written to it since.
    counts = plan.recorded_counts(state.meta) or mirror.counts()
    verdict = plan.plan_unchanged(counts.get("activities", 0), n_activities, delete_orphans=delete_orphans)
    report.cache_unchanged = verdict.done
    report.cache_sha256 = sha
    report.processed = report.unchanged = verdict.processed
    report.orphans = verdict.orphans
    report.rows = {name: TableCounts(n, n) for name, n in counts.items()}
    report.size_mb_after = report.size_mb_before
    report.sent = dict(mirror.sent)
    report.statements = mirror.statements
    return verdict.done


def _read_both(mirror: Mirror, store: Store, state: MirrorState) -> tuple[_Snapshot, dict[str, int], list[StoredRow]]:
    """The cache snapshot, the mirror's row counts and its stored rows.

    The cache is read and hashed in a thread while the database counts and sends
    its stored hashes (both release the GIL for most of their work).
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(_read_snapshot, store)
        try:
            before = mirror.counts()
            has_rows = plan.has_stored_rows(state)
            stored = mirror.stored_rows(with_hashes=plan.trusts_stored_hashes(state)) if has_rows else []
        finally:
            snapshot = pending.result()
    return snapshot, before, stored


def _report_plan(report: ExportReport, todo: ExportPlan[msgspec.Raw], before: dict[str, int]) -> None:
    report.rows = {name: TableCounts(n, None) for name, n in before.items()}
    report.processed = todo.processed
    report.inserted, report.updated, report.unchanged = todo.inserted, todo.updated, todo.unchanged
    report.orphans = len(todo.orphans)
    report.deleted = len(todo.delete)
    report.notes.extend(todo.notes)


def _commit(mirror: Mirror, state: MirrorState, snapshot: _Snapshot, now: str) -> dict[str, int]:
    """Record what was exported in the meta table and commit; the row counts after."""
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
    return after


def export(
    mirror: Mirror,
    store: Store,
    *,
    full_refresh: bool = False,
    delete_orphans: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    dry_run: bool = False,
    progress: Progress | None = None,
    tracker: prog.Progress = prog.SILENT,
    on_lock_wait: Callable[[str], None] | None = None,
    lock_wait: float = DEFAULT_LOCK_WAIT,
    clock: Callable[[], datetime] = now_utc,
    resend_all: bool = False,
) -> ExportReport:
    """Bring ``mirror`` up to date with the cache; one transaction, rolled back on any failure.

    ``resend_all`` writes every activity as if changed (the naive approach, for the bench).
    ``tracker`` hears of each batch sent (a dry run's too); ``progress(done, total)`` is told
    after each batch is written, inside the transaction.
    """
    if batch_size < 1:
        raise ExportError("--batch-size must be at least 1")
    started = time.perf_counter()
    paths = store.paths
    if not paths.cache.exists():
        raise _no_cache(paths)
    fingerprint = cache_fingerprint(paths)
    report = ExportReport(target=mirror.display, engine=mirror.engine, dry_run=dry_run, full_refresh=full_refresh)

    with mirror.open(write=not dry_run):
        report.target = mirror.display
        if not dry_run:
            mirror.lock(on_lock_wait, lock_wait)
        state = mirror.state()
        report.size_mb_before = round(state.size_bytes / MB, 3)
        schema = plan.schema_action(state, full_refresh=full_refresh)
        if schema.action is SchemaAction.REFUSE:
            raise ExportError(schema.reason, hint=schema.hint)
        report.full_refresh = schema.action is SchemaAction.REBUILD

        def unchanged(sha: str, n_activities: int) -> bool:
            """The cache is the one last exported and nothing is left to do: the report is complete."""
            if not plan.same_cache(schema, state.meta, sha, resend_all=resend_all):
                return False
            done = _report_unchanged(report, mirror, state, sha, n_activities, delete_orphans=delete_orphans)
            report.seconds = round(time.perf_counter() - started, 3)
            return done

        if fingerprint is not None and unchanged(*fingerprint):
            return report
        snapshot, before, stored = _read_both(mirror, store, state)
        report.cache_sha256 = snapshot.sha256
        if unchanged(snapshot.sha256, len(snapshot.items)):
            return report
        todo = plan.plan_export(snapshot.items, stored, schema, delete_orphans=delete_orphans, resend_all=resend_all)
        _report_plan(report, todo, before)
        now = utc_iso(clock())
        sink: Sink = _Counter(report.sent) if dry_run else mirror
        _apply(
            sink,
            todo,
            paths.cache,
            batch_size=batch_size,
            progress=None if dry_run else progress,
            now=now,
            tracker=tracker,
        )
        if dry_run:
            report.statements = mirror.statements
            report.seconds = round(time.perf_counter() - started, 3)
            return report
        after = _commit(mirror, state, snapshot, now)
        size_after = mirror.size_bytes()
        report.sent = dict(mirror.sent)
        report.statements = mirror.statements
    return _written(report, after, size_after, started)


def _written(report: ExportReport, after: dict[str, int], size_after: int, started: float) -> ExportReport:
    """The report of a committed export: rows per table before and after, the mirror's size, the time."""
    report.rows = {
        name: TableCounts(report.rows[name].before if name in report.rows else 0, n) for name, n in after.items()
    }
    report.size_mb_after = round(size_after / MB, 3)
    report.seconds = round(time.perf_counter() - started, 3)
    return report


# ---- configured targets, after a sync or import ----------------------------


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
    specs: Sequence[str] | None = None,
) -> list[ConfiguredExport]:
    """Export to every ``[export] targets`` entry (or to ``specs``); failures are returned, never raised.

    Call it after the save (outside the cache lock is best: it only reads the
    cache).  A failed export leaves that mirror as it was and cannot undo the save.
    """
    outcomes: list[ConfiguredExport] = []
    store = store if store is not None else Store(paths, config)
    for spec in config.export.targets if specs is None else specs:
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
