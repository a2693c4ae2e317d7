"""The time zone a person reads times in, and times shown in it.

The cache, the state files and ``--json`` keep UTC; only what a person reads is
converted.  The zone is ``[display] timezone`` (an IANA name), else the
machine's own (tzlocal: the IANA zone of ``TZ`` or ``/etc/localtime``, so it
follows daylight saving; ``datetime.now().astimezone()`` would be a fixed
offset, an hour wrong for half the year's stamps).

Two kinds of time are told apart.  An activity's recorded local start
(``start_time_local``, the wall clock where it happened, as Garmin and Strava
show it) is shown as it is.  An activity without one, and every bookkeeping
stamp (updated, saved, ran, next sync), is shown in the display zone.
"""

from __future__ import annotations

import difflib
import re
import warnings
from datetime import UTC, date, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from healthcache.timeutil import parse_utc

# What a zone name that zoneinfo cannot open raises: not found, a folder ("Europe"), a bad key ("../x").
_BAD_NAME = (ZoneInfoNotFoundError, ValueError, OSError)


def problem(name: str) -> str | None:
    """Why ``name`` is not a time zone this machine knows (None when it is one): a wrong name, with
    the nearest real one, or a missing time zone database, with how to add it."""
    try:
        ZoneInfo(name)
        return None
    except _BAD_NAME:
        pass
    known = available_timezones()
    if not known:
        return "no time zone database was found on this machine (install the tzdata package: pip install tzdata)"
    by_case = {k.lower(): k for k in known}
    near = by_case.get(name.strip().lower()) or next(iter(difflib.get_close_matches(name, known, n=1)), None)
    hint = f' (did you mean "{near}"?)' if near else ""
    return f'is not a known IANA time zone name{hint}; write it like "Europe/Berlin" or "America/Los_Angeles"'


def local_zone() -> tzinfo:
    """The machine's zone (tzlocal); a fixed offset where it names none that zoneinfo knows (a POSIX ``TZ``)."""
    import tzlocal

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tzlocal warns where TZ and /etc/localtime disagree; TZ wins
            zone: tzinfo = tzlocal.reload_localzone()  # not its per-process cache: TZ as it is now
        return zone
    except _BAD_NAME:
        return datetime.now().astimezone().tzinfo or UTC


def display_zone(name: str | None) -> tzinfo:
    """The zone of ``[display] timezone`` (checked when the config was loaded), else the machine's."""
    return ZoneInfo(name) if name else local_zone()


# The payload key where an importer says it assumed a record's local start from the display zone (a
# Strava export row names no zone): such a value ranks after every recorded one (``merge.fields``).
ASSUMED_ZONE_KEY = "start_date_local_zone"


def assumed_local(raw: Any) -> bool:
    """Whether a record's kept payload says its local start was assumed from a zone, not recorded."""
    return isinstance(raw, dict) and ASSUMED_ZONE_KEY in raw


def zone_key(zone: tzinfo) -> str | None:
    """The IANA name of ``zone`` (to hand a worker process), or None for a bare offset."""
    key = getattr(zone, "key", None)
    return key if isinstance(key, str) else None


def wall_clock(moment: datetime, zone: tzinfo) -> str:
    """A UTC moment as the wall clock in ``zone``, without an offset: ``start_time_local``'s form."""
    return moment.astimezone(zone).replace(tzinfo=None, microsecond=0).isoformat()


def local_day(start_time: str, start_time_local: str | None, zone: tzinfo) -> date:
    """The calendar day a workout was lived on: its recorded local date, else its UTC start's date in ``zone``."""
    if start_time_local:
        try:
            return date.fromisoformat(start_time_local[:10])
        except ValueError:
            pass
    try:
        return parse_utc(start_time).astimezone(zone).date()
    except ValueError:
        return date.fromisoformat(start_time[:10])


def show_start(start: str, zone: tzinfo) -> str:
    """``views.local_start``'s text for a person: a recorded wall clock as it is; a UTC start
    (``2024-05-18 08:00Z``) in ``zone``, without the Z."""
    if not start.endswith("Z"):
        return start
    try:
        moment = datetime.fromisoformat(start[:-1]).replace(tzinfo=UTC)
    except ValueError:
        return start
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def show_stamp(stamp: str | None, zone: tzinfo, *, label: bool = True, seconds: bool = False) -> str:
    """A cache stamp (``2026-11-30T07:44:49Z``) as a person reads it: ``2026-11-30 08:44 CET``.

    ``label=False`` leaves the zone's name off (a table says it once); text that is no cache
    stamp is returned as it is, so a display never fails on an odd value.
    """
    if not stamp:
        return stamp or ""
    try:
        moment = parse_utc(stamp).astimezone(zone)
    except ValueError:
        return stamp
    text = moment.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    return f"{text} {abbreviation(moment)}" if label else text


def show_moment(moment: datetime, zone: tzinfo, *, label: bool = True) -> str:
    """An aware datetime in ``zone``, as ``show_stamp`` writes it."""
    local = moment.astimezone(zone)
    text = local.strftime("%Y-%m-%d %H:%M")
    return f"{text} {abbreviation(local)}" if label else text


# A cache stamp inside a sentence (a skip reason, "rate limited until ..."): what ``localise`` rewrites.
_STAMP = re.compile(r"\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?Z\b")


def localise(text: str, zone: tzinfo) -> str:
    """``text`` with every cache stamp in it shown in ``zone`` (a library's reason, made for JSON, read by a person)."""
    return _STAMP.sub(lambda m: show_stamp(m.group(0), zone), text)


def abbreviation(moment: datetime) -> str:
    """The zone's name at ``moment`` as clocks show it (CET, PDT, +04; ``UTC+03:00`` for a bare offset)."""
    name = moment.tzname()
    if name:
        return name
    offset = moment.utcoffset()
    return "UTC" if not offset else moment.strftime("UTC%z")


def zone_label(zone: tzinfo, at: datetime | None = None) -> str:
    """The zone as a header names it: its IANA name where it has one, else its abbreviation now."""
    key = zone_key(zone)
    return key if key else abbreviation((at or datetime.now(UTC)).astimezone(zone))
