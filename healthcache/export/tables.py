"""The mirror's schema, declared once as data; each engine's DDL is generated from it.

A column names a logical type, and each dialect maps logical types to its own
(JSONB and timestamptz in PostgreSQL; plain TEXT/REAL/INTEGER in SQLite so
Datasette and sqlite-utils see ordinary tables).  The activity columns also say
how their value is read off an ``Activity``, so the schema and the rows that
fill it cannot drift apart.  Bump ``SCHEMA_VERSION`` whenever a table, column,
index or view changes: an export that finds another version rebuilds the mirror.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any

from healthcache.model.records import Activity

SCHEMA_VERSION = 1


class LogicalType(StrEnum):
    TEXT = "text"
    INTEGER = "integer"
    REAL = "real"
    TIME = "time"  # a UTC instant, "2024-05-01T06:30:00Z" in the cache
    DATE = "date"  # a calendar date, "2024-05-01"
    JSON = "json"


@dataclass(frozen=True)
class Column:
    name: str
    type: LogicalType
    nullable: bool = True
    references: str | None = None  # "table.column", declared for tools that follow links
    get: Callable[[Activity], Any] | None = None  # activities only: the value for one activity


@dataclass(frozen=True)
class Index:
    name: str
    columns: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()
    unique: tuple[str, ...] = ()  # one UNIQUE constraint, the upsert key when there is no primary key
    indexes: tuple[Index, ...] = ()
    owner_column: str | None = None  # child tables: the column naming the activity a row belongs to

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def conflict_key(self) -> tuple[str, ...]:
        return self.primary_key or self.unique


@dataclass(frozen=True)
class View:
    name: str
    select: Callable[[Dialect], str]


@dataclass(frozen=True)
class Dialect:
    """What differs between engines: type names and the few date/number functions the views use."""

    name: str
    types: dict[LogicalType, str]
    week_start: Callable[[str], str]
    month_start: Callable[[str], str]
    year: Callable[[str], str]
    round: Callable[[str, int], str]


SQLITE = Dialect(
    name="sqlite",
    types={
        LogicalType.TEXT: "TEXT",
        LogicalType.INTEGER: "INTEGER",
        LogicalType.REAL: "REAL",
        LogicalType.TIME: "TEXT",
        LogicalType.DATE: "TEXT",
        LogicalType.JSON: "TEXT",
    },
    week_start=lambda c: f"date({c}, 'weekday 0', '-6 days')",
    month_start=lambda c: f"date({c}, 'start of month')",
    year=lambda c: f"CAST(strftime('%Y', {c}) AS INTEGER)",
    round=lambda e, n: f"ROUND({e}, {n})",
)

POSTGRES = Dialect(
    name="postgres",
    types={
        LogicalType.TEXT: "text",
        LogicalType.INTEGER: "integer",
        LogicalType.REAL: "double precision",
        LogicalType.TIME: "timestamptz",
        LogicalType.DATE: "date",
        LogicalType.JSON: "jsonb",
    },
    # Through timestamp (no zone): the session's TimeZone must not move a calendar day.
    week_start=lambda c: f"CAST(date_trunc('week', CAST({c} AS timestamp)) AS date)",
    month_start=lambda c: f"CAST(date_trunc('month', CAST({c} AS timestamp)) AS date)",
    year=lambda c: f"CAST(EXTRACT(YEAR FROM {c}) AS integer)",
    round=lambda e, n: f"CAST(ROUND(CAST({e} AS numeric), {n}) AS double precision)",
)

_LOCAL_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})")


def start_date(act: Activity) -> str:
    """The calendar day of the workout: local when the source said so, else the UTC day.

    Computed here rather than in SQL so a malformed local time can never make a
    view fail in PostgreSQL (a bad cast aborts the whole query there).
    """
    local = act.start_time_local
    if local:
        m = _LOCAL_DATE.match(local)
        if m:
            try:
                return date(int(m[1]), int(m[2]), int(m[3])).isoformat()
            except ValueError:
                pass
    return act.start_time[:10]


def _attr(name: str) -> Callable[[Activity], Any]:
    return lambda a: getattr(a, name)


def _c(name: str, kind: LogicalType, **kw: Any) -> Column:
    """An activity column read straight off the attribute of the same name."""
    return Column(name, kind, get=_attr(name), **kw)


T = LogicalType
_OWNER = "activities.id"

# The content hash and the activity's JSON are filled in by the exporter;
# ``orphaned_at`` marks rows whose activity left the cache, so the views never
# count an absorbed duplicate twice.  ``data`` comes last: SQLite then reads the
# hash without walking the JSON's overflow pages.
ACTIVITIES = Table(
    name="activities",
    columns=(
        _c("id", T.TEXT, nullable=False),
        _c("start_time", T.TIME, nullable=False),
        Column("start_date", T.DATE, nullable=False, get=start_date),
        _c("start_time_local", T.TEXT),
        _c("timezone", T.TEXT),
        _c("sport", T.TEXT, nullable=False),
        _c("name", T.TEXT),
        _c("distance_m", T.REAL),
        _c("duration_s", T.REAL),
        _c("moving_time_s", T.REAL),
        _c("elevation_gain_m", T.REAL),
        _c("calories", T.REAL),
        _c("avg_hr", T.REAL),
        _c("max_hr", T.REAL),
        _c("avg_cadence", T.REAL),
        _c("avg_power", T.REAL),
        _c("device", T.TEXT),
        _c("source", T.TEXT, nullable=False),
        _c("first_seen_at", T.TIME, nullable=False),
        _c("updated_at", T.TIME, nullable=False),
        Column("content_hash", T.TEXT, nullable=False),
        Column("orphaned_at", T.TIME),
        Column("data", T.JSON, nullable=False),
    ),
    primary_key=("id",),
    indexes=(
        Index("activities_start_time", ("start_time",)),
        Index("activities_sport", ("sport", "start_time")),
    ),
)

ACTIVITY_SOURCES = Table(
    name="activity_sources",
    columns=(
        Column("activity_id", T.TEXT, nullable=False, references=_OWNER),
        Column("source", T.TEXT, nullable=False),
        Column("source_id", T.TEXT, nullable=False),
    ),
    unique=("source", "source_id"),
    indexes=(Index("activity_sources_activity", ("activity_id",)),),
    owner_column="activity_id",
)

ALIASES = Table(
    name="aliases",
    columns=(
        Column("alias", T.TEXT, nullable=False),
        Column("activity_id", T.TEXT, nullable=False, references=_OWNER),
    ),
    primary_key=("alias",),
    indexes=(Index("aliases_activity", ("activity_id",)),),
    owner_column="activity_id",
)

HR_SPLITS = Table(
    name="hr_splits",
    columns=(
        Column("activity_id", T.TEXT, nullable=False, references=_OWNER),
        Column("km", T.INTEGER, nullable=False),
        Column("duration_s", T.REAL, nullable=False),
        Column("avg_hr", T.REAL),
        Column("max_hr", T.REAL),
    ),
    indexes=(Index("hr_splits_activity", ("activity_id", "km")),),
    owner_column="activity_id",
)

META = Table(
    name="meta",
    columns=(Column("key", T.TEXT, nullable=False), Column("value", T.TEXT)),
    primary_key=("key",),
)

# Children after their parent: the order rows are written and (reversed) dropped.
DATA_TABLES: tuple[Table, ...] = (ACTIVITIES, ACTIVITY_SOURCES, ALIASES, HR_SPLITS)
CHILD_TABLES: tuple[Table, ...] = (ACTIVITY_SOURCES, ALIASES, HR_SPLITS)
ALL_TABLES: tuple[Table, ...] = (*DATA_TABLES, META)


def _totals(period: Callable[[Dialect], Callable[[str], str]], label: str) -> Callable[[Dialect], str]:
    def select(d: Dialect) -> str:
        return (
            f"SELECT {period(d)('start_date')} AS {label}, sport, COUNT(*) AS activities, "
            f"{d.round('SUM(distance_m) / 1000.0', 2)} AS distance_km, "
            f"{d.round('SUM(duration_s) / 3600.0', 2)} AS duration_h, "
            f"{d.round('SUM(moving_time_s) / 3600.0', 2)} AS moving_time_h, "
            f"{d.round('SUM(elevation_gain_m)', 1)} AS elevation_gain_m, "
            f"{d.round('SUM(calories)', 0)} AS calories, "
            f"{d.round('AVG(avg_hr)', 1)} AS avg_hr "
            "FROM activities WHERE orphaned_at IS NULL GROUP BY 1, 2"
        )

    return select


def _hr_coverage(d: Dialect) -> str:
    with_splits = "EXISTS (SELECT 1 FROM hr_splits s WHERE s.activity_id = a.id)"
    return (
        f"SELECT {d.year('a.start_date')} AS year, a.sport, COUNT(*) AS activities, "
        "SUM(CASE WHEN a.avg_hr IS NOT NULL THEN 1 ELSE 0 END) AS with_avg_hr, "
        f"SUM(CASE WHEN {with_splits} THEN 1 ELSE 0 END) AS with_hr_splits, "
        f"{d.round('100.0 * SUM(CASE WHEN a.avg_hr IS NOT NULL THEN 1 ELSE 0 END) / COUNT(*)', 1)} AS avg_hr_pct, "
        f"{d.round(f'100.0 * SUM(CASE WHEN {with_splits} THEN 1 ELSE 0 END) / COUNT(*)', 1)} AS hr_splits_pct "
        "FROM activities a WHERE a.orphaned_at IS NULL GROUP BY 1, 2"
    )


VIEWS: tuple[View, ...] = (
    View("weekly_totals", _totals(lambda d: d.week_start, "week_start")),
    View("monthly_totals", _totals(lambda d: d.month_start, "month_start")),
    View("hr_coverage", _hr_coverage),
)


# ---- DDL -----------------------------------------------------------------


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def create_table(
    table: Table, d: Dialect, *, suffix: str = "", if_not_exists: bool = False, constraints: bool = True
) -> str:
    """CREATE TABLE for one engine; ``suffix`` names a staging copy (and its constraints).

    ``constraints=False`` leaves keys and references to ``add_constraints``: a bulk
    load then builds each index once and checks each reference in one join,
    instead of a b-tree insert and a trigger per row.
    """
    parts = []
    for col in table.columns:
        spec = f"{quote(col.name)} {d.types[col.type]}"
        if not col.nullable:
            spec += " NOT NULL"
        if col.references and constraints:
            ref_table, ref_col = col.references.split(".")
            fkey = quote(f"{table.name}_{col.name}_fkey")
            spec += f" CONSTRAINT {fkey} REFERENCES {quote(ref_table + suffix)} ({quote(ref_col)})"
        parts.append(spec)
    if constraints:
        parts.extend(_keys(table, suffix))
    exists = "IF NOT EXISTS " if if_not_exists else ""
    return f"CREATE TABLE {exists}{quote(table.name + suffix)} ({', '.join(parts)})"


def _keys(table: Table, suffix: str) -> list[str]:
    out = []
    if table.primary_key:
        out.append(
            f"CONSTRAINT {quote(table.name + '_pkey' + suffix)} PRIMARY KEY ({', '.join(map(quote, table.primary_key))})"
        )
    if table.unique:
        out.append(f"CONSTRAINT {quote(table.name + '_key' + suffix)} UNIQUE ({', '.join(map(quote, table.unique))})")
    return out


def add_keys(table: Table, *, suffix: str = "") -> list[str]:
    """ALTER TABLE ... ADD the primary key and unique constraint (PostgreSQL, after a bulk load)."""
    return [f"ALTER TABLE {quote(table.name + suffix)} ADD {key}" for key in _keys(table, suffix)]


def add_references(table: Table, *, suffix: str = "") -> list[str]:
    """ALTER TABLE ... ADD each foreign key (PostgreSQL, after a bulk load)."""
    out = []
    for col in table.columns:
        if col.references:
            ref_table, ref_col = col.references.split(".")
            out.append(
                f"ALTER TABLE {quote(table.name + suffix)} ADD CONSTRAINT {quote(f'{table.name}_{col.name}_fkey')} "
                f"FOREIGN KEY ({quote(col.name)}) REFERENCES {quote(ref_table + suffix)} ({quote(ref_col)})"
            )
    return out


def constraint_names(table: Table) -> list[str]:
    """Names of the indexes PostgreSQL creates for a table's constraints."""
    names = []
    if table.primary_key:
        names.append(table.name + "_pkey")
    if table.unique:
        names.append(table.name + "_key")
    return names


def create_indexes(table: Table, *, suffix: str = "") -> list[str]:
    return [
        f"CREATE INDEX {quote(ix.name + suffix)} ON {quote(table.name + suffix)} ({', '.join(map(quote, ix.columns))})"
        for ix in table.indexes
    ]


def create_view(view: View, d: Dialect) -> str:
    return f"CREATE VIEW {quote(view.name)} AS {view.select(d)}"


def drop_views() -> list[str]:
    return [f"DROP VIEW IF EXISTS {quote(v.name)}" for v in VIEWS]


def upsert_sql(table: Table, source: str | None = None, *, placeholder: str = "?") -> str:
    """INSERT ... ON CONFLICT DO UPDATE, from VALUES or (PostgreSQL) a staging table."""
    cols = ", ".join(map(quote, table.column_names))
    key = table.conflict_key
    updates = ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in table.column_names if c not in key)
    if source is None:
        values = f"VALUES ({', '.join([placeholder] * len(table.columns))})"
    else:
        values = f"SELECT {cols} FROM {quote(source)}"
    action = f"DO UPDATE SET {updates}" if updates else "DO NOTHING"
    # "WHERE true" keeps SQLite's parser from reading ON CONFLICT as a join constraint.
    where = " WHERE true" if source is not None else ""
    return (
        f"INSERT INTO {quote(table.name)} ({cols}) {values}{where} ON CONFLICT ({', '.join(map(quote, key))}) {action}"
    )


def insert_sql(table: Table, *, suffix: str = "", placeholder: str = "?") -> str:
    cols = ", ".join(map(quote, table.column_names))
    marks = ", ".join([placeholder] * len(table.columns))
    return f"INSERT INTO {quote(table.name + suffix)} ({cols}) VALUES ({marks})"


# ---- rows ----------------------------------------------------------------

_ACTIVITY_GETTERS = tuple(c.get for c in ACTIVITIES.columns if c.get is not None)
_N_EXTRA = len(ACTIVITIES.columns) - len(_ACTIVITY_GETTERS)
assert [c.name for c in ACTIVITIES.columns[-_N_EXTRA:]] == ["content_hash", "orphaned_at", "data"]


@dataclass
class Rows:
    """The rows one batch of activities contributes to each data table, in column order."""

    activities: list[tuple[Any, ...]]
    activity_sources: list[tuple[Any, ...]]
    aliases: list[tuple[Any, ...]]
    hr_splits: list[tuple[Any, ...]]

    def by_table(self) -> Iterator[tuple[Table, list[tuple[Any, ...]]]]:
        yield ACTIVITIES, self.activities
        yield ACTIVITY_SOURCES, self.activity_sources
        yield ALIASES, self.aliases
        yield HR_SPLITS, self.hr_splits

    @property
    def ids(self) -> list[str]:
        return [r[0] for r in self.activities]


def rows_for(items: list[tuple[Activity, str, str]]) -> Rows:
    """Rows for (activity, its JSON text, its content hash) triples."""
    out = Rows([], [], [], [])
    for act, data, digest in items:
        out.activities.append((*(g(act) for g in _ACTIVITY_GETTERS), digest, None, data))
        aid = act.id
        out.activity_sources.extend((aid, s, i) for s, i in act.source_ids.items())
        out.aliases.extend((alias, aid) for alias in dict.fromkeys(act.aliases))
        if act.hr_splits:
            out.hr_splits.extend((aid, s.km, s.duration_s, s.avg_hr, s.max_hr) for s in act.hr_splits)
    return out
