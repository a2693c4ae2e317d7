"""What ``list``, ``show`` and ``stats`` compute: pure functions of a cache.

Dates are the athlete's local calendar days (``start_time_local`` when a source
gave it, else the start in the display zone, ``[display] timezone``), because
"Tuesday's run" is the run of Tuesday where it was run: an evening ride in Los
Angeles is not Sunday's because it was Sunday in Greenwich.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, tzinfo
from typing import Any, Literal

import msgspec

from healthcache import normalise, zone
from healthcache.config import DEFAULT_PREFERENCE
from healthcache.errors import HealthcacheError
from healthcache.lookup import short_ids
from healthcache.merge import MERGED_FIELDS, Member, groups, has_value
from healthcache.merge.fields import ASSUMABLE
from healthcache.model import sports
from healthcache.model.records import Activity, Cache, HRSplit, SourceRecord

Period = Literal["week", "month", "year"]


def local_start(act: Activity) -> str:
    """``YYYY-MM-DD HH:MM`` where the workout happened (UTC, marked Z, when no source said: the
    JSON form, the same whatever the display zone; ``zone.show_start`` gives a person's)."""
    if act.start_time_local:
        return act.start_time_local[:16].replace("T", " ")
    return act.start_time[:16].replace("T", " ") + "Z"


def local_day(act: Activity, where: tzinfo = UTC) -> date:
    """The day the workout was lived on: its recorded local date, else its start's date in ``where``."""
    return zone.local_day(act.start_time, act.start_time_local, where)


def sport_matches(sport: str, wanted: str | None) -> bool:
    """``wanted`` is a sport or a family: ``running`` also means trail and treadmill running."""
    if wanted is None:
        return True
    wanted = wanted.strip().lower()
    return sport == wanted or sports.FAMILY.get(sport) == wanted


@dataclass(frozen=True)
class Filter:
    sport: str | None = None
    since: date | None = None  # inclusive, local day
    until: date | None = None  # inclusive, local day
    source: str | None = None
    zone: tzinfo = UTC  # the local day of an activity with no recorded local time: the display zone

    def keep(self, act: Activity) -> bool:
        if not sport_matches(act.sport, self.sport):
            return False
        if self.source is not None and self.source.strip().lower() not in act.source_ids:
            return False
        if self.since is not None or self.until is not None:
            day = local_day(act, self.zone)
            if self.since is not None and day < self.since:
                return False
            if self.until is not None and day > self.until:
                return False
        return True


def why_none_match(activities: Sequence[Activity], filt: Filter) -> str | None:
    """When a filter names a sport or a source that no activity has (a typo, most often): which, and the
    ones there are, the nearest first.  None when each named value exists (the dates left nothing).  Pure."""
    import difflib

    def named(kind: str, value: str, present: set[str]) -> str | None:
        if value in present:
            return None
        near = difflib.get_close_matches(value, sorted(present), n=1, cutoff=0.6)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        return f"no activity has the {kind} {value!r}{hint} (in the cache: {', '.join(sorted(present)) or 'none'})"

    if filt.sport is not None:
        wanted = filt.sport.strip().lower()
        present = {a.sport for a in activities} | {sports.FAMILY.get(a.sport, a.sport) for a in activities}
        if (why := named("sport", wanted, present)) is not None:
            return why
    if filt.source is not None:
        present = {s for a in activities for s in a.source_ids}
        if (why := named("source", filt.source.strip().lower(), present)) is not None:
            return why
    return None


# One letter per source in `list` (a legend is printed under the table), so a row
# holding four records still fits 80 columns.
SOURCE_CODES: dict[str, str] = {
    "garmin": "G",
    "garmin_export": "g",
    "strava": "S",
    "strava_export": "s",
    "fit": "F",
    "gpx": "X",
    "tcx": "T",
    "polar": "P",
    "apple_health": "A",
}


def source_code(source: str) -> str:
    return SOURCE_CODES.get(source, source)


class ListRow(msgspec.Struct, kw_only=True):
    short_id: str
    id: str
    start: str  # local "YYYY-MM-DD HH:MM"
    sport: str
    name: str | None
    distance_km: float | None
    duration_s: float | None
    avg_hr: float | None
    sources: list[str]


def list_rows(cache: Cache, filt: Filter = Filter(), limit: int | None = None) -> list[ListRow]:
    """Activities matching ``filt``, newest first, at most ``limit``."""
    picked = [a for a in reversed(cache.activities) if filt.keep(a)]
    if limit is not None:
        picked = picked[:limit]
    # Short ids are made unique against the whole cache, aliases included, so what
    # is printed resolves whatever filter printed it.
    shorts = short_ids((a.id for a in cache.activities), (x for a in cache.activities for x in a.aliases))
    return [
        ListRow(
            short_id=shorts[a.id],
            id=a.id,
            start=local_start(a),
            sport=a.sport,
            name=a.name,
            distance_km=None if a.distance_m is None else round(a.distance_m / 1000, 2),
            duration_s=a.duration_s if a.duration_s is not None else a.moving_time_s,
            avg_hr=a.avg_hr,
            sources=list(a.source_ids),
        )
        for a in picked
    ]


# --- stats ------------------------------------------------------------------


def period_of(day: date, by: Period) -> str:
    """The period label: ISO week ``2024-W19``, month ``2024-05``, year ``2024``."""
    if by == "week":
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    if by == "month":
        return f"{day.year}-{day.month:02d}"
    return str(day.year)


class StatsRow(msgspec.Struct, kw_only=True):
    period: str
    sport: str
    count: int
    distance_km: float
    moving_time_s: float  # moving time; elapsed time where a source gave no moving time
    elevation_gain_m: float
    mean_avg_hr: float | None  # mean of avg_hr over the activities that have it
    with_hr: int
    hr_coverage: float  # share of the activities with avg_hr, 0..1


@dataclass
class _Acc:
    count: int = 0
    distance: float = 0.0
    moving: float = 0.0
    elevation: float = 0.0
    hr: list[float] = field(default_factory=list)


def stats(cache: Cache, by: Period = "week", filt: Filter = Filter()) -> list[StatsRow]:
    """Totals per period and sport, newest period first, sports alphabetically (local days: ``filt.zone``)."""
    acc: dict[tuple[str, str], _Acc] = {}
    for act in cache.activities:
        if not filt.keep(act):
            continue
        a = acc.setdefault((period_of(local_day(act, filt.zone), by), act.sport), _Acc())
        a.count += 1
        a.distance += act.distance_m or 0.0
        moving = act.moving_time_s if act.moving_time_s is not None else act.duration_s
        a.moving += moving or 0.0
        a.elevation += act.elevation_gain_m or 0.0
        if act.avg_hr is not None and act.avg_hr > 0:
            a.hr.append(act.avg_hr)
    keys = sorted(acc, key=lambda k: k[1])
    keys.sort(key=lambda k: k[0], reverse=True)
    return [
        StatsRow(
            period=p,
            sport=s,
            count=a.count,
            distance_km=round(a.distance / 1000, 2),
            moving_time_s=round(a.moving, 1),
            elevation_gain_m=round(a.elevation, 1),
            mean_avg_hr=round(sum(a.hr) / len(a.hr), 1) if a.hr else None,
            with_hr=len(a.hr),
            hr_coverage=round(len(a.hr) / a.count, 3),
        )
        for (p, s), a in ((k, acc[k]) for k in keys)
    ]


# --- show -------------------------------------------------------------------


class FieldView(msgspec.Struct, kw_only=True):
    """One merged field: the stored value, the source it comes from, and each source's own value."""

    name: str
    value: Any
    provider: str | None  # the source whose own value it is; None when no source gives it now
    note: str | None = None
    sources: dict[str, Any] = {}


class SourceView(msgspec.Struct, kw_only=True):
    source: str
    key: str
    readable: bool
    problem: str | None = None


class Detail(msgspec.Struct, kw_only=True):
    id: str
    short_id: str
    source: str
    aliases: list[str]
    first_seen_at: str
    updated_at: str
    start: str
    sources: list[SourceView]
    fields: list[FieldView]
    hr_splits: list[HRSplit]
    joined: list[Member]  # how each record came to be part of the activity (dupes --explain's rule)
    activity: dict[str, Any]  # every stored field, raw payloads included


def source_records(act: Activity) -> tuple[dict[str, SourceRecord], dict[str, str]]:
    """Each source's own record, re-derived from its kept raw payload; and why one could not be."""
    records: dict[str, SourceRecord] = {}
    problems: dict[str, str] = {}
    for source, sid in act.source_ids.items():
        raw = act.raw.get(source)
        if raw is None:
            problems[source] = "no raw payload kept"
            continue
        try:
            records[source] = msgspec.structs.replace(normalise.from_raw(source, raw), source=source, source_id=sid)
        except HealthcacheError as exc:
            problems[source] = exc.message
        except Exception as exc:  # any normaliser failure only means "cannot tell"
            problems[source] = f"the {source} payload cannot be re-read ({exc})"
    return records, problems


def _order(preference: Sequence[str], present: Sequence[str], assumed: frozenset[str] = frozenset()) -> list[str]:
    """Sources by precedence: by ``preference``, with those that only assumed the value last (``merge.fields``)."""
    order = tuple(preference)
    return sorted(present, key=lambda s: (s in assumed, order.index(s) if s in order else len(order), s))


def field_views(act: Activity, records: dict[str, SourceRecord], preference: Sequence[str]) -> list[FieldView]:
    """Per merged field: the provider is the first source in ``[merge] preference``
    (the precedence of every field, ``merge.fields``) whose own value is the stored one."""
    out: list[FieldView] = []
    for name in MERGED_FIELDS:
        if name == "hr_splits":
            continue  # shown as its own table
        value = getattr(act, name)
        own = {s: getattr(rec, name) for s, rec in records.items()}
        assumed = frozenset(s for s, rec in records.items() if name in ASSUMABLE and zone.assumed_local(rec.raw))
        ranked = _order(preference, list(own), assumed)
        best = next((s for s in ranked if has_value(name, own[s])), None)
        provider = None if value is None else next((s for s in ranked if own[s] == value), None)
        notes: list[str] = []
        if provider is None and value is not None:
            notes.append("kept from an earlier merge or fetch: no source payload gives this value now")
        if best is not None and best != provider:
            notes.append(f"{best} says {own[best]!r}, and healthcache rebuild would take it")
        note = "; ".join(notes) or None
        out.append(FieldView(name=name, value=value, provider=provider, note=note, sources=own))
    return out


def detail(cache: Cache, act: Activity, preference: Sequence[str] = DEFAULT_PREFERENCE) -> Detail:
    """Everything ``show`` prints about one activity."""
    records, problems = source_records(act)
    views = field_views(act, records, preference)
    # The join rule, re-derived the way `dupes --explain` does it (merge.groups).
    only = msgspec.structs.replace(cache, activities=[act])
    found = groups(only, explain=True, preference=preference)
    joined = found[0].members if found else []
    shorts = short_ids((a.id for a in cache.activities), (x for a in cache.activities for x in a.aliases))
    return Detail(
        id=act.id,
        short_id=shorts[act.id],
        source=act.source,
        aliases=list(act.aliases),
        first_seen_at=act.first_seen_at,
        updated_at=act.updated_at,
        start=local_start(act),
        sources=[
            SourceView(source=s, key=f"{s}:{i}", readable=s in records, problem=problems.get(s))
            for s, i in act.source_ids.items()
        ],
        fields=views,
        hr_splits=list(act.hr_splits or []),
        joined=joined,
        activity=msgspec.to_builtins(act),
    )
