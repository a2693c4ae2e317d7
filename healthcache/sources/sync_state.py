"""What a source remembers between runs (``tracking/sync_state/<source>.json``) and the smart skip.

The state of a source is what lets a run decide cheaply: when it last
succeeded (the smart skip), until when a rate limit holds (skip without a
request), and a digest of every payload it last merged (so a fetch that brings
only known, unchanged payloads needs neither the merge nor the cache).  It is
written under the write lock, and after a good save only, so it never runs
ahead of the cache.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

import msgspec

from healthcache import notices, state
from healthcache.config import Paths
from healthcache.lock import write_lock
from healthcache.timeutil import parse_utc, utc_iso

# Payload digests are kept for activities that started within this many days (or
# the window of the run, if longer): enough for the daily windows of a sync,
# small enough that reading and rewriting the state stays cheap.
SEEN_KEEP_DAYS = 35


class Seen(msgspec.Struct, array_like=True):
    """What was last merged of one activity: [payload digest, its UTC start]."""

    digest: str
    start: str


class SourceState(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Bookkeeping of one source, in ``sync_state/<source>.json``."""

    last_success: str | None = None
    last_attempt: str | None = None
    last_error: str | None = None
    window_start: str | None = None  # UTC span the last successful fetch covered
    window_end: str | None = None
    rate_limited_until: str | None = None
    rate_limit_reason: str | None = None
    # source_id -> [digest of the raw payload last merged, start]: "nothing new" without the cache.
    seen: dict[str, Seen] = {}
    # The cache lineage ``seen`` was last checked against: under another one, ``seen`` is only a hint.
    lineage: str | None = None


class BackfillState(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Activities backfill-hr looked at and found without usable HR samples."""

    no_hr: dict[str, str] = {}  # "<source>:<id>" -> when we found out


BACKFILL_STATE = "backfill-hr"


def load_state(paths: Paths, source: str, *, tell: bool = True) -> SourceState:
    """A source's state; an unreadable one is a fresh one (told, unless ``tell`` is False).

    Safe because it is only a hint: a lost last sync makes the source due now,
    a lost seen set sends what is fetched through the merge (which finds what
    the cache holds), a lost rate limit costs at most one refused request,
    which records it again; the fetch window comes from ``--days``, not from here.
    """
    st, why = state.load_hint(paths, source, SourceState, SourceState())
    if why is not None and tell:
        where = state.shown(paths, paths.state_file(source))
        notices.notice(
            f"{where} could not be read ({why}): {source} is synced as on a first sync (what it fetches "
            "is merged with the cache, so nothing doubles); the file is rewritten when it next syncs"
        )
    return st


def payload_digest(raw: Any) -> str:
    """A short digest of a payload as the source sent it (key order included)."""
    return hashlib.blake2b(msgspec.json.encode(raw), digest_size=12).hexdigest()


def update_states_locked(
    paths: Paths,
    updates: dict[str, Callable[[Any], Any]],
    *,
    kinds: Mapping[str, tuple[type, Any]] | None = None,
    lock_timeout: float | None = 0.0,
    on_wait: Callable[[str | None], None] | None = None,
) -> None:
    """Rewrite state files under the write lock without reading the cache.

    The store's transaction would parse the cache first; a run that found
    nothing new must not pay that, so it takes the same lock itself.  Each
    update function gets the state as it is on disk now (not as read before
    the fetch), so two runs cannot overwrite each other's bookkeeping.
    """
    with write_lock(paths.lock, timeout=lock_timeout, on_wait=on_wait):
        write_states(paths, updates, kinds=kinds)


def write_states(
    paths: Paths,
    updates: dict[str, Callable[[Any], Any]],
    *,
    kinds: Mapping[str, tuple[type, Any]] | None = None,
) -> None:
    """Apply ``updates`` to the state files; the caller holds the write lock."""
    for name, update in updates.items():
        kind, default = (kinds or {}).get(name, (SourceState, SourceState()))
        current, _ = state.load_hint(paths, name, kind, default)  # unreadable: told when it was read
        state.save(paths.state_file(name), update(current))


def parse_state_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return parse_utc(text)
    except ValueError:
        return None


def rate_limit_reason(st: SourceState, now: datetime) -> str | None:
    """Why ``st``'s source must not be asked now because of a rate limit, or None.  Pure.

    It holds even under ``--force``: asking again would only spend the budget
    that is being waited for.
    """
    until = parse_state_time(st.rate_limited_until)
    if until is not None and now < until:
        why = f" ({st.rate_limit_reason})" if st.rate_limit_reason else ""
        return f"rate limited until {utc_iso(until)}{why}; no request sent"
    return None


class SkipRule(msgspec.Struct, frozen=True):
    """The thresholds of the smart skip (``[sync]`` in healthcache.toml), in minutes and days.

    Never again within ``min_minutes``; always after ``max_minutes``; between,
    after ``active_minutes`` when the source had an activity in the last
    ``active_days`` days, after ``quiet_minutes`` when not.  A scheduler that
    runs hourly thus asks an athlete's sources every 2 hours in training weeks
    and every 4 in quiet ones, sparing a per-application budget such as Strava's.
    """

    min_minutes: float = 60.0
    active_minutes: float = 120.0
    quiet_minutes: float = 240.0
    max_minutes: float = 360.0
    active_days: float = 7.0

    @classmethod
    def of(cls, sync: Any) -> SkipRule:
        """The rule a ``config.SyncConfig`` sets."""
        return cls(
            min_minutes=sync.min_interval_minutes,
            active_minutes=sync.active_interval_minutes,
            quiet_minutes=sync.quiet_interval_minutes,
            max_minutes=sync.max_interval_minutes,
            active_days=sync.active_days,
        )


class SyncDecision(msgspec.Struct, frozen=True):
    """Whether to sync a source now, why, and when it is due next (None: now, or unknown)."""

    sync: bool
    reason: str
    next_at: datetime | None = None


def latest_start(st: SourceState) -> datetime | None:
    """The newest activity start the source's state remembers (its seen set), without the cache."""
    newest = max((entry.start for entry in st.seen.values()), default=None)
    return parse_state_time(newest)


def decide_sync(st: SourceState, now: datetime, rule: SkipRule, *, force: bool = False) -> SyncDecision:
    """Sync ``st``'s source now or not: the smart skip, with its reason and the next due time.  Pure.

    A rate limit wins over everything, ``--force`` included; then ``force``;
    a source never synced is synced; otherwise the interval that applies
    (``SkipRule``) is measured from the last successful sync.
    """
    limited = rate_limit_reason(st, now)
    if limited is not None:
        return SyncDecision(False, limited, parse_state_time(st.rate_limited_until))
    if force:
        return SyncDecision(True, "forced (--force)")
    last = parse_state_time(st.last_success)
    if last is None:
        return SyncDecision(True, "never synced")
    age = now - last
    if age < timedelta(0):
        return SyncDecision(True, f"last sync at {utc_iso(last)} is in the future (the clock changed)")
    newest = latest_start(st)
    active = newest is not None and now - newest <= timedelta(days=rule.active_days)
    days = _number(rule.active_days)
    if active:
        interval, why = rule.active_minutes, f"every {_span(rule.active_minutes)}: an activity in the last {days} days"
    else:
        interval, why = rule.quiet_minutes, f"every {_span(rule.quiet_minutes)}: no activity in the last {days} days"
    if interval < rule.min_minutes:
        interval, why = rule.min_minutes, f"never within {_span(rule.min_minutes)}"
    if interval > rule.max_minutes:
        interval, why = rule.max_minutes, f"always after {_span(rule.max_minutes)}"
    due = last + timedelta(minutes=interval)
    ago = f"synced {_span(age.total_seconds() / 60)} ago"
    if now >= due:
        return SyncDecision(True, f"{ago} ({why})", due)
    return SyncDecision(False, f"{ago} ({why}); next after {utc_iso(due)}; no request sent; --force to sync now", due)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _span(minutes: float) -> str:
    """45 min, 2 h, 2 h 5 min; under a minute: less than a minute."""
    whole = math.floor(minutes)
    if whole < 1:
        return "less than a minute"
    hours, rest = divmod(whole, 60)
    if not hours:
        return f"{rest} min"
    return f"{hours} h" + (f" {rest} min" if rest else "")
