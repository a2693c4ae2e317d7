"""What a source remembers between runs (``tracking/sync_state/<source>.json``) and the skip rule.

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

from healthcache import state
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


def load_state(paths: Paths, source: str) -> SourceState:
    return state.load(paths, source, SourceState, SourceState())


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
        current = state.load(paths, name, kind, default)
        state.save(paths.state_file(name), update(current))


def parse_state_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return parse_utc(text)
    except ValueError:
        return None


def skip_reason(st: SourceState, now: datetime, min_interval_minutes: float, *, force: bool) -> str | None:
    """Why this source must not be asked now, or None.  Pure.

    A rate limit holds even under ``--force``: asking again would only spend
    the budget that is being waited for.
    """
    until = parse_state_time(st.rate_limited_until)
    if until is not None and now < until:
        why = f" ({st.rate_limit_reason})" if st.rate_limit_reason else ""
        return f"rate limited until {utc_iso(until)}{why}; no request sent"
    if force:
        return None
    last = parse_state_time(st.last_success)
    if last is not None and min_interval_minutes > 0:
        age = now - last
        if timedelta(0) <= age < timedelta(minutes=min_interval_minutes):
            minutes = age.total_seconds() / 60
            return (
                f"synced {_minutes(minutes)} ago (at most every {_minutes(min_interval_minutes)}); "
                "no request sent; --force to sync now"
            )
    return None


def _minutes(value: float) -> str:
    whole = math.floor(value)
    return "less than a minute" if whole < 1 else f"{whole} min"
