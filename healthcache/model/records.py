"""Typed records of the cache file (schema_version 2: activities record their joins).

The msgspec Structs are the compiled validator of ``schema.json``: decoding the
file into them parses and type-checks in one pass, which is what keeps load and
save close to the cost of bare JSON parsing.  The string patterns are the one
part checked apart (``checks``), and only where the bytes are not the ones
healthcache validated when it wrote them.  ``schema.json`` is the reference
(``checks.strict(Cache)`` generates it), ``jsonschema`` checks it under
``verify --strict``, and tests prove all three agree.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, Final, Literal, Protocol

import msgspec

from healthcache.model.checks import Pattern
from healthcache.timeutil import UTC_PATTERN

SCHEMA_VERSION: Final = 2

# Field types with their constraints, shared by every record below.
# The string patterns are ``checks.Pattern``s: checked where bytes are not known as healthcache's
# own (``checks.checker``), not on every load of a file healthcache wrote and validated itself.
UtcTime = Annotated[str, Pattern(UTC_PATTERN)]
SourceName = Annotated[str, Pattern(r"^[a-z][a-z0-9_]*$")]
RecordId = Annotated[str, Pattern(r"^[a-z][a-z0-9_]*:.+$")]
Sport = Annotated[str, Pattern(r"^[a-z][a-z0-9_]*$")]
NonNeg = Annotated[float, msgspec.Meta(ge=0)]
HeartRate = Annotated[float, msgspec.Meta(ge=0, le=300)]

# Summary fields an activity takes from its preferred source (merge order lives in merge.py).
SUMMARY_FIELDS: tuple[str, ...] = (
    "start_time_local",
    "timezone",
    "name",
    "distance_m",
    "duration_s",
    "moving_time_s",
    "elevation_gain_m",
    "calories",
    "avg_hr",
    "max_hr",
    "avg_cadence",
    "avg_power",
    "device",
)
# Fields the guard protects: once an activity has them, no save may remove them.
HR_FIELDS: tuple[str, ...] = ("avg_hr", "max_hr", "hr_splits")


class Keyed(Protocol):
    """Anything that holds records: an activity, a tombstone, a backup's skimmed row."""

    @property
    def id(self) -> str: ...
    @property
    def aliases(self) -> Sequence[str]: ...
    @property
    def source_ids(self) -> Mapping[str, str]: ...


def record_keys(holder: Keyed) -> set[str]:
    """Every record key that resolves to ``holder``: its id, its aliases, each ``source:id``.

    The one definition of "the keys a record holds": the codec's uniqueness check,
    the guard's no-key-lost rule, the merge index and the lookups all use it.
    """
    out = {holder.id, *holder.aliases}
    out.update([s + ":" + i for s, i in holder.source_ids.items()])
    return out


def unique_record_keys(holders: Sequence[Keyed]) -> set[str] | None:
    """Every record key the holders hold (each one's ``record_keys``), or None when a key is held twice.

    Built from three flat lists rather than one set per holder, which is a third
    faster on 100k activities.  A key one holder gives twice (its id is also its
    ``source:id``, as usual) counts once, as in ``record_keys``; an alias a holder
    lists twice gives None, which makes the caller look closer (never a false yes).
    """
    ids = [h.id for h in holders]
    aliases = [a for h in holders for a in h.aliases if a != h.id]
    sources = [k for h in holders for s, i in h.source_ids.items() if (k := s + ":" + i) != h.id and k not in h.aliases]
    keys = set(ids)
    keys.update(aliases)
    keys.update(sources)
    return keys if len(keys) == len(ids) + len(aliases) + len(sources) else None


class HRSplit(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """Heart rate over one kilometre (the last may be partial)."""

    km: Annotated[int, msgspec.Meta(ge=1)]
    duration_s: NonNeg
    avg_hr: HeartRate | None = None
    max_hr: HeartRate | None = None


class Activity(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """One workout, however many services have recorded it."""

    id: RecordId
    source: SourceName
    source_ids: dict[SourceName, str]
    start_time: UtcTime
    sport: Sport
    first_seen_at: UtcTime
    updated_at: UtcTime
    aliases: list[RecordId] = []
    start_time_local: str | None = None
    timezone: str | None = None
    sport_raw: dict[SourceName, str] = {}
    name: str | None = None
    distance_m: NonNeg | None = None
    duration_s: NonNeg | None = None
    moving_time_s: NonNeg | None = None
    elevation_gain_m: NonNeg | None = None
    calories: NonNeg | None = None
    avg_hr: HeartRate | None = None
    max_hr: HeartRate | None = None
    avg_cadence: NonNeg | None = None
    avg_power: NonNeg | None = None
    device: str | None = None
    hr_splits: list[HRSplit] | None = None
    joins: list[Join] = []  # why each later record was joined, in the order it was
    raw: dict[SourceName, Any] = {}

    def record_keys(self) -> set[str]:
        """Every record id that resolves to this activity."""
        return record_keys(self)


class JoinFigures(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """What the heuristic measured when it joined: the joined record against its partner."""

    start_s: float  # the joined record's start minus the partner's
    sports: Annotated[list[Sport], msgspec.Meta(min_length=2, max_length=2)]  # partner's, joined record's
    basis: Literal["distance", "duration", "moving_time", "none"]
    values: Annotated[list[NonNeg], msgspec.Meta(max_length=2)] = []  # partner's, joined record's (m or s)
    limit: NonNeg | None = None  # the largest difference the rule allowed


class Join(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """Why a record was joined to an activity, recorded when it was: ``dupes --explain`` prints it.

    ``records`` is (the record joined, the record or activity it was joined to); an
    activity's first record has none, which keeps the file compact.
    """

    rule: Literal["external_id", "heuristic", "link"]
    records: Annotated[list[RecordId], msgspec.Meta(min_length=2, max_length=2)]
    at: UtcTime
    detail: str | None = None  # what named the other id (external_id)
    figures: JoinFigures | None = None  # heuristic


class Tombstone(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """An explicit delete: the ids it covers may leave the file and never come back by sync."""

    id: RecordId
    deleted_at: UtcTime
    reason: Annotated[str, msgspec.Meta(min_length=1)]
    aliases: list[RecordId] = []
    source_ids: dict[SourceName, str] = {}

    def record_keys(self) -> set[str]:
        return record_keys(self)


class Link(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A manual de-duplication decision, overriding the automatic rules both ways."""

    ids: Annotated[list[RecordId], msgspec.Meta(min_length=2, max_length=2)]
    kind: Literal["same", "distinct"]
    at: UtcTime


class Cache(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The whole file.  ``activities`` is kept sorted by (start_time, id)."""

    schema_version: Literal[2]
    generator: str
    updated_at: UtcTime
    activities: list[Activity]
    tombstones: list[Tombstone] = []
    links: list[Link] = []


class SourceRecord(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One activity as a source or importer saw it, normalised; the merge engine's input.

    ``start_time`` is UTC in the cache's form.  ``external_id`` carries what a
    source says about the workout's origin (Strava's ``external_id``, a Garmin
    export's file name) so that the merge can match it to another source's id.
    """

    source: SourceName
    source_id: str
    start_time: UtcTime
    sport: Sport
    sport_raw: str | None = None
    start_time_local: str | None = None
    timezone: str | None = None
    name: str | None = None
    distance_m: NonNeg | None = None
    duration_s: NonNeg | None = None
    moving_time_s: NonNeg | None = None
    elevation_gain_m: NonNeg | None = None
    calories: NonNeg | None = None
    avg_hr: HeartRate | None = None
    max_hr: HeartRate | None = None
    avg_cadence: NonNeg | None = None
    avg_power: NonNeg | None = None
    device: str | None = None
    hr_splits: list[HRSplit] | None = None
    external_id: str | None = None
    raw: Any = None

    @property
    def key(self) -> str:
        return f"{self.source}:{self.source_id}"


def empty_cache(generator: str, now: str) -> Cache:
    return Cache(schema_version=SCHEMA_VERSION, generator=generator, updated_at=now, activities=[])


# The file's order: by start time, then id (a C-level key; sorting 100k stays cheap).
sort_key: Callable[[Activity], tuple[str, str]] = operator.attrgetter("start_time", "id")
