"""UTC timestamps as the cache stores them: ISO 8601 with a trailing Z."""

from __future__ import annotations

import re
from datetime import UTC, datetime

# Seconds precision for activity times; optional fraction for bookkeeping stamps.
UTC_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$"
_UTC_RE = re.compile(UTC_PATTERN)


def utc_iso(dt: datetime, *, micro: bool = False) -> str:
    """Render an aware datetime (naive ones are taken as UTC) in the cache's form."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    dt = dt.astimezone(UTC)
    if not micro:
        dt = dt.replace(microsecond=0)
    text = dt.isoformat()
    return text.replace("+00:00", "Z")


def parse_utc(text: str) -> datetime:
    """Parse a cache timestamp; raises ValueError on anything not in the cache's form."""
    if not _UTC_RE.match(text):
        raise ValueError(f"not a UTC timestamp ending in Z: {text!r}")
    return datetime.fromisoformat(text[:-1] + "+00:00")


def now_utc() -> datetime:
    return datetime.now(UTC)


def stamp(dt: datetime, *, micro: bool = False) -> str:
    """Compact sortable stamp for file names: 20261122T203343Z (or 20261122T203343.123456Z)."""
    return dt.astimezone(UTC).strftime("%Y%m%dT%H%M%S.%fZ" if micro else "%Y%m%dT%H%M%SZ")
