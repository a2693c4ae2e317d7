"""Which backups to keep: borg ``prune`` semantics as a pure function.

Rules apply in order, fine to coarse.  Each keeps the newest backup of each of
its periods, up to its count; a backup kept by an earlier rule does not count
toward a later one.  A rule that runs out of backups before its count keeps the
oldest one too.  The newest backup is always kept.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

import msgspec

from healthcache.config import RetentionPolicy
from healthcache.errors import UsageError


class Item(msgspec.Struct, frozen=True):
    """A backup as retention sees it: an opaque name and its time."""

    name: str
    when: datetime


# (rule name, period of a backup); a new rule is one line.  "last" gives every
# backup its own period: several saves in one second are still N backups.
RULES: tuple[tuple[str, Callable[[Item], str]], ...] = (
    ("last", lambda i: i.name),
    ("daily", lambda i: i.when.strftime("%Y-%m-%d")),
    ("weekly", lambda i: i.when.strftime("%G-%V")),
    ("monthly", lambda i: i.when.strftime("%Y-%m")),
)


class Decision(msgspec.Struct, frozen=True):
    item: Item
    keep: bool
    rule: str | None  # e.g. "daily", "monthly[oldest]", "newest"
    index: int | None  # the n-th kept by that rule

    def reason(self) -> str:
        if not self.keep:
            return "prune"
        if self.index is None:
            return f"keep ({self.rule})"
        return f"keep ({self.rule} #{self.index})"


def counts(policy: RetentionPolicy) -> dict[str, int]:
    return {
        "last": policy.keep_last,
        "daily": policy.keep_daily,
        "weekly": policy.keep_weekly,
        "monthly": policy.keep_monthly,
    }


def validate(policy: RetentionPolicy) -> None:
    values = counts(policy)
    if any(v < 0 for v in values.values()):
        raise UsageError("retention counts cannot be negative")
    if not any(values.values()):
        raise UsageError("every retention rule is 0: that would prune all but the newest backup; set at least one")


def plan(items: Sequence[Item], policy: RetentionPolicy) -> list[Decision]:
    """Decide for each item; returns decisions newest first."""
    validate(policy)
    ordered = sorted(items, key=lambda i: (i.when, i.name), reverse=True)
    kept: dict[str, tuple[str, int | None]] = {}
    if ordered:
        kept[ordered[0].name] = ("newest", None)
    wanted = counts(policy)
    for rule, period_of in RULES:
        n = wanted[rule]
        if n == 0:
            continue
        kept_here = 0
        last_period: str | None = None
        for item in ordered:
            period = period_of(item)
            if period == last_period:
                continue
            last_period = period
            if item.name in kept and kept[item.name][0] != "newest":
                continue
            kept_here += 1
            kept[item.name] = (rule, kept_here)
            if kept_here == n:
                break
        else:
            oldest = ordered[-1] if ordered else None
            if oldest is not None and kept_here < n and oldest.name not in kept:
                kept[oldest.name] = (f"{rule}[oldest]", kept_here + 1)
    return [
        Decision(
            item=i, keep=i.name in kept, rule=kept.get(i.name, (None, None))[0], index=kept.get(i.name, (None, None))[1]
        )
        for i in ordered
    ]
