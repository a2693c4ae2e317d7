"""The SQLite mirror, through the standard ``sqlite3`` module.

The file is put in WAL mode when created, so readers (Datasette, sqlite-utils,
a notebook) keep reading the previous state while an export writes, and see
the new one at commit.  ``BEGIN IMMEDIATE`` takes the database's write lock,
which serialises two exports; the second waits (busy timeout) and says so.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from healthcache.export import tables
from healthcache.export.mirror import ExportError, ExportLockTimeout, MirrorState, StoredRow
from healthcache.export.tables import SQLITE, quote

# Test seam: called with each new connection (a test sets PRAGMA max_page_count to fill the "disk").
_on_connect: Callable[[sqlite3.Connection], None] | None = None


class SqliteMirror:
    engine = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = Path(path).expanduser().absolute()
        self.display = str(self.path)
        self.sent: dict[str, int] = {t.name: 0 for t in tables.DATA_TABLES}
        self.statements = 0
        self._conn: sqlite3.Connection | None = None

    # ---- connection ------------------------------------------------------

    @contextlib.contextmanager
    def open(self, *, write: bool) -> Iterator[None]:
        created = False
        try:
            if write:
                if not self.path.parent.is_dir():
                    raise ExportError(f"sqlite {self.path}: the folder {self.path.parent} does not exist")
                fresh = not self.path.exists() or self.path.stat().st_size == 0
                if not self.path.exists():
                    # Personal health data: a new mirror is 0600 like the cache (SQLite gives its
                    # -wal and -shm files the same mode).
                    with contextlib.suppress(FileExistsError):
                        os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
                        created = True
                self._conn = sqlite3.connect(self.path, timeout=0, isolation_level=None)
                if _on_connect is not None:
                    _on_connect(self._conn)
                if fresh:
                    self._conn.execute("PRAGMA journal_mode = WAL")
            elif self.path.exists():
                self._conn = sqlite3.connect(self.path.as_uri() + "?mode=ro", uri=True, timeout=5, isolation_level=None)
            if self._conn is not None:
                self._conn.execute("PRAGMA cache_size = -65536")
            yield
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
        finally:
            conn, self._conn = self._conn, None
            empty = False
            if conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    if conn.in_transaction:
                        conn.rollback()
                    empty = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0
                conn.close()
            if created and empty:
                # A first export that failed leaves no empty database behind.
                for suffix in ("", "-wal", "-shm"):
                    with contextlib.suppress(FileNotFoundError):
                        Path(f"{self.path}{suffix}").unlink()

    def _error(self, exc: sqlite3.Error) -> ExportError:
        name = getattr(exc, "sqlite_errorname", "") or ""
        text = str(exc)
        where = f"sqlite {self.path}"
        tail = "; the mirror was left as it was (rolled back), the cache untouched"
        if name.startswith("SQLITE_BUSY") or "database is locked" in text:
            return ExportLockTimeout(f"{where}: another writer kept the database locked ({text}){tail}")
        if name in ("SQLITE_NOTADB", "SQLITE_CORRUPT") or "not a database" in text or "malformed" in text:
            reason = "is not a SQLite database, or is corrupt"
            hint = "Move it aside (or pass another PATH); the export creates a new mirror from the cache."
            return ExportError(f"{where}: {reason} ({text}){tail}", hint=hint)
        if name.startswith("SQLITE_READONLY") or "readonly" in text:
            return ExportError(f"{where}: is read-only ({text}){tail}")
        if name == "SQLITE_FULL" or "disk is full" in text:
            return ExportError(f"{where}: the disk is full or the database reached its size limit ({text}){tail}")
        if name.startswith("SQLITE_CANTOPEN"):
            return ExportError(f"{where}: cannot be opened ({text}){tail}")
        return ExportError(f"{where}: {text}{tail}")

    @property
    def conn(self) -> sqlite3.Connection:
        assert self._conn is not None, "open() first"
        return self._conn

    # Every statement goes through these two, so ``statements`` and ``sent`` count what the database got.
    def _many(self, sql: str, rows: Sequence[tuple[Any, ...]], table: str | None = None) -> None:
        if not rows:
            return
        self.conn.executemany(sql, rows)
        self.statements += 1
        if table is not None:
            self.sent[table] += len(rows)

    def _exec(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        self.statements += 1
        return self.conn.execute(sql, params)

    # ---- reading ----------------------------------------------------------

    def lock(self, on_wait: Callable[[str], None] | None, timeout: float) -> None:
        try:
            self._exec("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if getattr(exc, "sqlite_errorname", "") != "SQLITE_BUSY" and "locked" not in str(exc):
                raise
        if on_wait is not None:
            on_wait(f"another export is writing to {self.display}; waiting up to {timeout:.0f} s for it to finish")
        self.conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        self._exec("BEGIN IMMEDIATE")

    def _tables(self) -> set[str]:
        if self._conn is None:
            return set()
        return {r[0] for r in self._exec("SELECT name FROM sqlite_master WHERE type = 'table'")}

    def state(self) -> MirrorState:
        names = self._tables()
        meta = None
        if tables.META.name in names:
            meta = {str(k): str(v) for k, v in self._exec("SELECT key, value FROM meta")}
        return MirrorState(
            has_tables=tables.ACTIVITIES.name in names,
            meta=meta,
            size_bytes=self.size_bytes(),
        )

    def _counts(self, names: set[str]) -> dict[str, int]:
        return {
            t.name: (self._exec(f"SELECT count(*) FROM {quote(t.name)}").fetchone()[0] if t.name in names else 0)
            for t in tables.ALL_TABLES
        }

    def counts(self) -> dict[str, int]:
        return self._counts(self._tables())

    def size_bytes(self) -> int:
        if self._conn is None:
            return 0
        pages = self.conn.execute("PRAGMA page_count").fetchone()[0]
        size = self.conn.execute("PRAGMA page_size").fetchone()[0]
        return int(pages) * int(size)

    def stored_rows(self, *, with_hashes: bool) -> list[StoredRow]:
        if with_hashes:
            sql = "SELECT id, content_hash, orphaned_at IS NOT NULL FROM activities"
        else:
            sql = "SELECT id, NULL, 0 FROM activities"
        return [StoredRow(i, h, bool(o)) for i, h, o in self._exec(sql)]

    # ---- writing ----------------------------------------------------------

    def ensure_meta(self) -> None:
        self._exec(tables.create_table(tables.META, SQLITE, if_not_exists=True))

    def upsert(self, rows: tables.Rows) -> None:
        ids = [(i,) for i in rows.ids]
        self._many(tables.upsert_sql(tables.ACTIVITIES), rows.activities, "activities")
        for child in tables.CHILD_TABLES:
            self._many(f"DELETE FROM {quote(child.name)} WHERE {quote(child.owner_column or '')} = ?", ids)
        # Upserts, not inserts: a source id or alias may move here from an orphan or another activity.
        self._many(tables.upsert_sql(tables.ACTIVITY_SOURCES), rows.activity_sources, "activity_sources")
        self._many(tables.upsert_sql(tables.ALIASES), rows.aliases, "aliases")
        self._many(tables.insert_sql(tables.HR_SPLITS), rows.hr_splits, "hr_splits")

    def mark_orphans(self, ids: Sequence[str], at: str) -> None:
        self._many("UPDATE activities SET orphaned_at = ? WHERE id = ?", [(at, i) for i in ids])

    def delete(self, ids: Sequence[str]) -> None:
        params = [(i,) for i in ids]
        for child in tables.CHILD_TABLES:
            self._many(f"DELETE FROM {quote(child.name)} WHERE {quote(child.owner_column or '')} = ?", params)
        self._many("DELETE FROM activities WHERE id = ?", params)

    def rebuild_begin(self) -> None:
        # Readers in WAL mode keep seeing the old tables until COMMIT: dropping here is invisible to them.
        for sql in tables.drop_views():
            self._exec(sql)
        for table in reversed(tables.DATA_TABLES):
            self._exec(f"DROP TABLE IF EXISTS {quote(table.name)}")
        for table in tables.DATA_TABLES:
            self._exec(tables.create_table(table, SQLITE))
        self.ensure_meta()

    def rebuild_insert(self, rows: tables.Rows) -> None:
        for table, data in rows.by_table():
            self._many(tables.insert_sql(table), data, table.name)

    def rebuild_finish(self) -> None:
        # Indexes after the load: one sort per index instead of a b-tree update per row.
        for table in tables.DATA_TABLES:
            for sql in tables.create_indexes(table):
                self._exec(sql)
        for view in tables.VIEWS:
            self._exec(tables.create_view(view, SQLITE))

    def write_meta(self, values: dict[str, str]) -> None:
        self._many(tables.upsert_sql(tables.META), list(values.items()))

    def commit(self) -> None:
        self._exec("COMMIT")
        # Fold the WAL back into the file so a copied or opened mirror is one self-contained file;
        # a reader in the middle of a query just makes this a no-op (no waiting for it).
        with contextlib.suppress(sqlite3.Error):
            self.conn.execute("PRAGMA busy_timeout = 0")
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
