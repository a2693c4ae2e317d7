"""Strava's request budgets: read from its rate-limit headers, and when each is paid back.  Pure but the limiter.

stravalib's ``DefaultRateLimiter`` sleeps until the window resets when the
budget is spent (even at priority "high"), which a CLI run must never do, so
the client gets ``BudgetLimiter``: it only records the X-RateLimit (or
X-ReadRateLimit) usage of each response, and the pager stops before a request
the budget cannot pay for.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any


def next_quarter_hour(now: datetime) -> datetime:
    """Strava's 15-minute budget resets at :00, :15, :30 and :45 UTC."""
    now = now.astimezone(UTC)
    floor = now.replace(minute=(now.minute // 15) * 15, second=0, microsecond=0)
    return floor + timedelta(minutes=15)


def next_utc_midnight(now: datetime) -> datetime:
    """Strava's daily budget resets at midnight UTC."""
    now = now.astimezone(UTC)
    return now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)


@dataclass(frozen=True)
class Budget:
    """Usage and limits from Strava's rate-limit headers: (15-minute, daily)."""

    short_usage: int
    long_usage: int
    short_limit: int
    long_limit: int

    def spent(self) -> str | None:
        """Which budget is spent, if any: 'daily' or '15-minute'."""
        if self.long_limit > 0 and self.long_usage >= self.long_limit:
            return "daily"
        if self.short_limit > 0 and self.short_usage >= self.short_limit:
            return "15-minute"
        return None


def budgets_from_headers(headers: Any) -> list[Budget]:
    """Every budget in a response: X-ReadRateLimit-* (reads) and X-RateLimit-* (all requests)."""
    low = {str(k).lower(): str(v) for k, v in dict(headers or {}).items()}
    out: list[Budget] = []
    for prefix in ("x-readratelimit", "x-ratelimit"):
        usage, limit = low.get(f"{prefix}-usage"), low.get(f"{prefix}-limit")
        if not usage or not limit:
            continue
        try:
            u = [int(x) for x in usage.split(",")]
            lim = [int(x) for x in limit.split(",")]
        except ValueError:
            continue
        if len(u) >= 2 and len(lim) >= 2:
            out.append(Budget(short_usage=u[0], long_usage=u[1], short_limit=lim[0], long_limit=lim[1]))
    return out


def spent(budgets: list[Budget]) -> str | None:
    """The budget that stops us, the daily one first (it resets last)."""
    kinds = {b.spent() for b in budgets}
    if "daily" in kinds:
        return "daily"
    return "15-minute" if "15-minute" in kinds else None


def reset_time(now: datetime, which: str | None) -> datetime:
    """When the named budget is paid back, as Strava documents it."""
    return next_utc_midnight(now) if which == "daily" else next_quarter_hour(now)


class BudgetLimiter:
    """A stravalib rate limiter that never sleeps: it remembers the last budget seen."""

    def __init__(self) -> None:
        self.budgets: list[Budget] = []
        self.rules: list[Any] = []

    def __call__(self, headers: Any, method: str) -> None:
        budgets = budgets_from_headers(headers)
        if budgets:
            self.budgets = budgets

    def spent(self) -> str | None:
        return spent(self.budgets)


def usage(budgets: list[Budget]) -> str:
    """The budgets in words, for the message that stops a run."""
    return "; ".join(
        f"used {b.short_usage}/{b.short_limit} in 15 min, {b.long_usage}/{b.long_limit} today" for b in budgets
    )
