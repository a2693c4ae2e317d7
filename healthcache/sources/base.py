"""What every API source shares: its state file, its report, rate-limit and retry rules.

The state of a source (``tracking/sync_state/<source>.json``) is what lets a
run decide cheaply: when it last succeeded (the smart skip), until when a rate
limit holds (skip without a request), and a digest of every payload it last
merged (so a fetch that brings only known, unchanged payloads needs neither the
merge nor the cache).  It is written under the write lock, and after a good
save only, so it never runs ahead of the cache.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import msgspec

from healthcache import state
from healthcache.config import Paths
from healthcache.errors import SourceError
from healthcache.lock import write_lock
from healthcache.timeutil import parse_utc, utc_iso

SOURCES: tuple[str, ...] = ("garmin", "strava")

# Retries of a failing request (5xx, network): attempts after the first, and the
# first wait; each later wait doubles.  Tests set RETRY_BASE_SECONDS to 0.
RETRIES = 2
RETRY_BASE_SECONDS = 0.5

# Garmin publishes no reset time for its 429s; back off this long.
GARMIN_RATE_LIMIT_BACKOFF = timedelta(minutes=30)

Status = Literal["ok", "skipped", "failed", "rate_limited", "not_configured", "dry_run"]


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


class RateLimited(SourceError):
    """The source's request budget is spent; nothing more until ``until``."""

    def __init__(self, message: str, until: datetime, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.until = until


def load_state(paths: Paths, source: str) -> SourceState:
    return state.load(paths, source, SourceState, SourceState())


def payload_digest(raw: Any) -> str:
    """A short digest of a payload as the source sent it (key order included)."""
    return hashlib.blake2b(msgspec.json.encode(raw), digest_size=12).hexdigest()


def update_states_locked(
    paths: Paths,
    updates: dict[str, Callable[[Any], Any]],
    *,
    kinds: dict[str, tuple[type, Any]] | None = None,
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
    kinds: dict[str, tuple[type, Any]] | None = None,
) -> None:
    """Apply ``updates`` to the state files; the caller holds the write lock."""
    for name, update in updates.items():
        kind, default = (kinds or {}).get(name, (SourceState, SourceState()))
        current = state.load(paths, name, kind, default)
        state.save(paths.state_file(name), update(current))


def next_quarter_hour(now: datetime) -> datetime:
    """Strava's 15-minute budget resets at :00, :15, :30 and :45 UTC."""
    now = now.astimezone(UTC)
    floor = now.replace(minute=(now.minute // 15) * 15, second=0, microsecond=0)
    return floor + timedelta(minutes=15)


def next_utc_midnight(now: datetime) -> datetime:
    """Strava's daily budget resets at midnight UTC."""
    now = now.astimezone(UTC)
    return now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)


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


def retry_call[T](
    call: Callable[[], T],
    retryable: Callable[[BaseException], bool],
    *,
    retries: int | None = None,
    base_seconds: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``call``, retrying transient failures a few times with a doubling wait."""
    attempts = RETRIES if retries is None else retries
    wait = RETRY_BASE_SECONDS if base_seconds is None else base_seconds
    for attempt in range(attempts + 1):
        try:
            return call()
        except Exception as exc:
            if attempt >= attempts or not retryable(exc):
                raise
            if wait > 0:
                sleep(wait * (2**attempt))
    raise AssertionError("unreachable")  # pragma: no cover


@dataclass
class RequestCounter:
    """Counts HTTP responses through a ``requests`` response hook."""

    count: int = 0

    def hook(self, response: Any, *args: Any, **kwargs: Any) -> Any:
        self.count += 1
        return response

    def attach(self, session: Any) -> None:
        session.hooks.setdefault("response", []).append(self.hook)


@dataclass
class StepReport:
    """What one source did in one run: the per-step line of the sync report."""

    source: str
    status: Status = "ok"
    reason: str | None = None
    requests: int = 0
    seconds: float = 0.0
    seen: int = 0
    new: int = 0
    updated: int = 0
    merged: int = 0
    unchanged: int = 0
    ambiguous: int = 0
    tombstoned: int = 0
    skipped: int = 0  # records rejected (bad payloads)
    saved: bool = False  # the cache file was rewritten
    backup: str | None = None
    errors: list[str] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)  # dry run: what would change
    notes: list[str] = field(default_factory=list)  # worth telling, not a failure

    @property
    def failed(self) -> bool:
        return self.status in ("failed", "rate_limited")

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "status": self.status,
            "reason": self.reason,
            "requests": self.requests,
            "seconds": round(self.seconds, 3),
            "seen": self.seen,
            "new": self.new,
            "updated": self.updated,
            "merged": self.merged,
            "unchanged": self.unchanged,
            "ambiguous": self.ambiguous,
            "tombstoned": self.tombstoned,
            "skipped": self.skipped,
            "saved": self.saved,
            "backup": self.backup,
            "errors": list(self.errors),
            "changes": list(self.changes),
            "notes": list(self.notes),
        }


def describe_failure(source: str, exc: BaseException) -> str:
    """One line for a report; never the payload or a token."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"{source}: {text}"


def first_line(items: Iterable[str]) -> str | None:
    for item in items:
        return item
    return None


# Typed readers of API payload fields: a wrong type is an error naming the key,
# so one malformed payload is reported and skipped instead of half-imported.


def payload_number(raw: dict[str, Any], key: str) -> float | None:
    """A numeric field: absent/null is None; anything but a finite number is an error."""
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{key}: expected a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{key}: not a finite number: {value!r}")
    return value


def payload_text(raw: dict[str, Any], key: str) -> str | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{key}: expected text, got {value!r}")
    return value
