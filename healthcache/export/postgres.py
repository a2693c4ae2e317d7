"""The PostgreSQL mirror, through psycopg 3 (imported only by the export command).

Rows travel by COPY: changed activities go into temporary staging tables, and
one ``INSERT ... ON CONFLICT DO UPDATE`` per table and batch moves them into
place, so a batch costs a dozen statements, not a round trip per row.  A full
refresh builds ``<table>__new`` copies beside the live tables and swaps them in
at the end of the same transaction: DDL is transactional here, so readers see
the old tables until COMMIT and the new ones after, never empty ones.  An
advisory transaction lock serialises two exports to one database.

The connection string goes to libpq unchanged, so PG* variables, a service file
and ~/.pgpass all work; only the redacted form is ever shown.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any
from urllib.parse import quote as url_quote

import psycopg
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict

from healthcache.export import tables
from healthcache.export.mirror import ExportError, ExportLockTimeout, MirrorState, StoredRow
from healthcache.export.tables import POSTGRES, quote

SUFFIX = "__new"
STAGE_PREFIX = "hc_stage_"
# One fixed advisory lock key per database: "healthcache export" hashed to a signed 64-bit int.
LOCK_KEY = int.from_bytes(hashlib.blake2b(b"healthcache export", digest_size=8).digest(), "big", signed=True)
APPLICATION_NAME = "healthcache export"


def _params(conninfo: str) -> dict[str, Any]:
    try:
        return conninfo_to_dict(conninfo)
    except psycopg.Error as exc:
        # The parser's message may quote the string, password included: never show it.
        raise ExportError(
            "postgres: the connection string is not valid (not shown: it may hold a password)",
            hint="Use postgresql://user@host:port/dbname, or key=value pairs; leave it empty to use the PG* variables.",
        ) from exc


def describe(conninfo: str) -> str:
    """The target as shown to people: postgresql://user@host:port/dbname, never a password."""
    try:
        p = conninfo_to_dict(conninfo)
    except psycopg.Error:
        return "postgresql://(unparseable connection string)"
    env = os.environ
    # No host: libpq's default Unix socket, which its URLs write as an empty host.
    host = p.get("host") or p.get("hostaddr") or env.get("PGHOST") or env.get("PGHOSTADDR") or ""
    port = p.get("port") or env.get("PGPORT") or ""
    user = p.get("user") or env.get("PGUSER") or ""
    db = p.get("dbname") or env.get("PGDATABASE") or user
    return _url(str(user), str(host), str(port), str(db))


def _url(user: str, host: str, port: str, db: str) -> str:
    # A Unix-socket folder is percent-encoded, as libpq's own URLs write it.
    shown_host = url_quote(host, safe="") if host.startswith("/") else host
    return f"postgresql://{user + '@' if user else ''}{shown_host}{':' + port if port else ''}/{db}"


class PostgresMirror:
    engine = "postgres"

    def __init__(self, conninfo: str, *, connect_timeout: int = 10) -> None:
        self.conninfo = conninfo
        self.display = describe(conninfo)
        self.connect_timeout = connect_timeout
        self.sent: dict[str, int] = {t.name: 0 for t in tables.DATA_TABLES}
        self.statements = 0
        self._conn: psycopg.Connection[Any] | None = None
        self._staged = False
        self._committing = False
        self._secret = ""  # the password, when we know it, to scrub from server messages
        self.backend_pid: int | None = None

    # ---- connection ------------------------------------------------------

    @contextlib.contextmanager
    def open(self, *, write: bool) -> Iterator[None]:
        params = _params(self.conninfo)
        self._secret = str(params.get("password") or os.environ.get("PGPASSWORD") or "")
        extra: dict[str, Any] = {}
        if "connect_timeout" not in params and not os.environ.get("PGCONNECT_TIMEOUT"):
            extra["connect_timeout"] = self.connect_timeout
        if "application_name" not in params and not os.environ.get("PGAPPNAME"):
            extra["application_name"] = APPLICATION_NAME
        try:
            conn = psycopg.connect(self.conninfo, autocommit=False, **extra)
        except psycopg.Error as exc:
            raise ExportError(
                f"postgres {self.display}: cannot connect: {self._scrub(exc)}; nothing was changed",
                hint="Check the URL, the server, and the password (~/.pgpass or PGPASSWORD keep it off the command line).",
            ) from exc
        self._conn = conn
        info = conn.info
        self.display = _url(info.user, info.host, str(info.port), info.dbname)
        self.backend_pid = info.backend_pid
        try:
            conn.read_only = not write
            yield
        except psycopg.Error as exc:
            raise self._error(exc) from exc
        finally:
            self._conn = None
            with contextlib.suppress(psycopg.Error):
                if not conn.closed:
                    conn.rollback()
            conn.close()

    def _scrub(self, exc: BaseException) -> str:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if self._secret:
            text = text.replace(self._secret, "***")
        return text

    def _error(self, exc: psycopg.Error) -> ExportError:
        where = f"postgres {self.display}"
        msg = self._scrub(exc)
        if self._committing:
            tail = "; the connection failed during COMMIT, so the export may or may not have been applied"
        else:
            tail = "; the mirror was left as it was (rolled back), the cache untouched"
        if isinstance(exc, pg_errors.LockNotAvailable):
            return ExportLockTimeout(f"{where}: gave up waiting for a lock ({msg}){tail}")
        if isinstance(exc, pg_errors.DiskFull):
            return ExportError(f"{where}: the server's disk is full ({msg}){tail}")
        if isinstance(exc, pg_errors.InsufficientPrivilege):
            return ExportError(f"{where}: permission denied ({msg}){tail}")
        if isinstance(exc, pg_errors.ReadOnlySqlTransaction):
            return ExportError(f"{where}: the database is read-only ({msg}){tail}")
        if isinstance(exc, pg_errors.DependentObjectsStillExist):
            return ExportError(
                f"{where}: cannot replace the mirror's tables ({msg}){tail}",
                hint="Views or tables of your own depend on them; drop those, run the export, then recreate them.",
            )
        conn = self._conn
        if isinstance(exc, psycopg.OperationalError) or (conn is not None and conn.closed):
            return ExportError(f"{where}: the connection to the server was lost mid-export ({msg}){tail}")
        return ExportError(f"{where}: {msg}{tail}")

    @property
    def conn(self) -> psycopg.Connection[Any]:
        assert self._conn is not None, "open() first"
        return self._conn

    def _exec(self, sql: str, params: Sequence[Any] | None = None) -> psycopg.Cursor[Any]:
        self.statements += 1
        return self.conn.execute(sql.encode(), params)

    def _copy(self, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]], counted: str | None) -> None:
        if not rows:
            return
        self.statements += 1
        cols = ", ".join(map(quote, columns))
        with self.conn.cursor() as cur, cur.copy(f"COPY {quote(table)} ({cols}) FROM STDIN".encode()) as copy:
            for row in rows:
                copy.write_row(row)
        if counted is not None:
            self.sent[counted] += len(rows)

    # ---- reading ----------------------------------------------------------

    def lock(self, on_wait: Callable[[str], None] | None, timeout: float) -> None:
        # Bounds every lock wait of this transaction, including DROP TABLE behind a long reader.
        self._exec("SELECT set_config('lock_timeout', %s, true)", (f"{int(timeout * 1000)}ms",))
        if self._exec("SELECT pg_try_advisory_xact_lock(%s)", (LOCK_KEY,)).fetchone()[0]:  # type: ignore[index]
            return
        if on_wait is not None:
            on_wait(f"another export is writing to {self.display}; waiting up to {timeout:.0f} s for it to finish")
        self._exec("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))

    def _present(self) -> set[str]:
        names = [t.name for t in tables.ALL_TABLES]
        rows = self._exec(
            "SELECT n FROM unnest(%s::text[]) AS n WHERE to_regclass(quote_ident(n)) IS NOT NULL", (names,)
        ).fetchall()
        return {r[0] for r in rows}

    def _counts(self, present: set[str]) -> dict[str, int]:
        exprs = [f"(SELECT count(*) FROM {quote(t.name)})" if t.name in present else "0" for t in tables.ALL_TABLES]
        row = self._exec(f"SELECT {', '.join(exprs)}").fetchone()
        assert row is not None
        return {t.name: int(n) for t, n in zip(tables.ALL_TABLES, row, strict=True)}

    def state(self) -> MirrorState:
        present = self._present()
        meta = None
        if tables.META.name in present:
            meta = {str(k): str(v) for k, v in self._exec("SELECT key, value FROM meta").fetchall()}
        return MirrorState(
            has_tables=tables.ACTIVITIES.name in present,
            meta=meta,
            size_bytes=self.size_bytes(),
        )

    def counts(self) -> dict[str, int]:
        return self._counts(self._present())

    def size_bytes(self) -> int:
        row = self._exec("SELECT pg_database_size(current_database())").fetchone()
        return int(row[0]) if row else 0

    def stored_rows(self, *, with_hashes: bool) -> list[StoredRow]:
        if with_hashes:
            sql = "SELECT id, content_hash, orphaned_at IS NOT NULL FROM activities"
        else:
            sql = "SELECT id, NULL, false FROM activities"
        return [StoredRow(i, h, o) for i, h, o in self._exec(sql).fetchall()]

    # ---- writing ----------------------------------------------------------

    def ensure_meta(self) -> None:
        self._exec(tables.create_table(tables.META, POSTGRES, if_not_exists=True))

    def _stage(self) -> None:
        if self._staged:
            names = ", ".join(quote(STAGE_PREFIX + t.name) for t in (tables.ACTIVITIES, *tables.CHILD_TABLES[:2]))
            self._exec(f"TRUNCATE {names}")
            return
        for t in (tables.ACTIVITIES, tables.ACTIVITY_SOURCES, tables.ALIASES):
            self._exec(f"CREATE TEMP TABLE {quote(STAGE_PREFIX + t.name)} (LIKE {quote(t.name)}) ON COMMIT DROP")
        self._staged = True

    def upsert(self, rows: tables.Rows) -> None:
        self._stage()
        acts = tables.ACTIVITIES
        stage = STAGE_PREFIX + acts.name
        self._copy(stage, acts.column_names, rows.activities, "activities")
        self._exec(tables.upsert_sql(acts, stage))
        for child in tables.CHILD_TABLES:
            owner = quote(child.owner_column or "")
            self._exec(f"DELETE FROM {quote(child.name)} WHERE {owner} IN (SELECT id FROM {quote(stage)})")
        # Upserts, not inserts: a source id or alias may move here from an orphan or another activity.
        for child in (tables.ACTIVITY_SOURCES, tables.ALIASES):
            data = rows.activity_sources if child is tables.ACTIVITY_SOURCES else rows.aliases
            if data:
                self._copy(STAGE_PREFIX + child.name, child.column_names, data, child.name)
                self._exec(tables.upsert_sql(child, STAGE_PREFIX + child.name))
        self._copy(tables.HR_SPLITS.name, tables.HR_SPLITS.column_names, rows.hr_splits, "hr_splits")

    def mark_orphans(self, ids: Sequence[str], at: str) -> None:
        self._exec("UPDATE activities SET orphaned_at = %s WHERE id = ANY(%s)", (at, list(ids)))

    def delete(self, ids: Sequence[str]) -> None:
        ids = list(ids)
        for child in tables.CHILD_TABLES:
            self._exec(f"DELETE FROM {quote(child.name)} WHERE {quote(child.owner_column or '')} = ANY(%s)", (ids,))
        self._exec("DELETE FROM activities WHERE id = ANY(%s)", (ids,))

    def rebuild_begin(self) -> None:
        for table in reversed(tables.DATA_TABLES):
            self._exec(f"DROP TABLE IF EXISTS {quote(table.name + SUFFIX)}")
        for table in tables.DATA_TABLES:
            self._exec(tables.create_table(table, POSTGRES, suffix=SUFFIX, constraints=False))
        self.ensure_meta()

    def rebuild_insert(self, rows: tables.Rows) -> None:
        for table, data in rows.by_table():
            self._copy(table.name + SUFFIX, table.column_names, data, table.name)

    def rebuild_finish(self) -> None:
        # Keys, indexes and references after the load: each built or checked in one pass.
        for table in tables.DATA_TABLES:
            for sql in (*tables.add_keys(table, suffix=SUFFIX), *tables.create_indexes(table, suffix=SUFFIX)):
                self._exec(sql)
        for table in tables.DATA_TABLES:
            for sql in tables.add_references(table, suffix=SUFFIX):
                self._exec(sql)
            self._exec(f"ANALYZE {quote(table.name + SUFFIX)}")
        # The swap: everything up to here ran beside the live tables; from here to COMMIT is quick.
        for sql in tables.drop_views():
            self._exec(sql)
        for table in reversed(tables.DATA_TABLES):
            self._exec(f"DROP TABLE IF EXISTS {quote(table.name)}")
        for table in tables.DATA_TABLES:
            self._exec(f"ALTER TABLE {quote(table.name + SUFFIX)} RENAME TO {quote(table.name)}")
            for name in (*tables.constraint_names(table), *(ix.name for ix in table.indexes)):
                self._exec(f"ALTER INDEX {quote(name + SUFFIX)} RENAME TO {quote(name)}")
        for view in tables.VIEWS:
            self._exec(tables.create_view(view, POSTGRES))

    def write_meta(self, values: dict[str, str]) -> None:
        self.statements += 1
        with self.conn.cursor() as cur:
            cur.executemany(tables.upsert_sql(tables.META, placeholder="%s").encode(), list(values.items()))

    def commit(self) -> None:
        self._committing = True
        self.statements += 1
        self.conn.commit()
        self._committing = False
