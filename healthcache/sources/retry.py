"""The one retry rule of every API source: transient failures, a doubling wait, and Retry-After.

Built on tenacity (a well-kept retry library: stop, wait and retry conditions
as composable values) rather than a hand-written loop.  What is retried is the
caller's decision (``retryable``: a 5xx, a dropped connection); how long to
wait is decided here: the server's ``Retry-After`` when its answer carries one,
else ``RETRY_BASE_SECONDS`` doubling per attempt.  A server asking for more
than ``MAX_RETRY_AFTER_S`` is not waited for: a command line run must not hang,
so the failure is reported at once and the next run tries again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

# Attempts after the first, and the first wait; each later wait doubles.  Tests set
# RETRY_BASE_SECONDS to 0 (or ``pause`` to a recorder) so nothing really waits.
RETRIES = 2
RETRY_BASE_SECONDS = 0.5
MAX_RETRY_AFTER_S = 60.0

# Where the pauses go; tests replace it with a recorder to see the waits without taking them.
pause: Callable[[float], None] = time.sleep


def _responses(exc: BaseException) -> list[Any]:
    """The HTTP responses an exception carries, itself first, then along its causes."""
    out: list[Any] = []
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        response = getattr(cur, "response", None)
        if response is not None:
            out.append(response)
        cur = cur.__cause__ or cur.__context__
    return out


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After value (delta-seconds or an HTTP date), or None.  Pure."""
    text = (value or "").strip()
    if not text:
        return None
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def retry_after(exc: BaseException, now: datetime | None = None) -> float | None:
    """What the server's answer behind ``exc`` asked us to wait, if it said."""
    for response in _responses(exc):
        headers = getattr(response, "headers", None) or {}
        seconds = parse_retry_after(headers.get("Retry-After"), now or datetime.now(UTC))
        if seconds is not None:
            return seconds
    return None


def wait_for(attempt: int, asked: float | None, base: float) -> float:
    """The pause before retry number ``attempt`` (1-based): the server's word, else doubling.  Pure."""
    return asked if asked is not None else base * (2 ** (attempt - 1))


def call[T](
    func: Callable[[], T],
    retryable: Callable[[BaseException], bool],
    *,
    retries: int | None = None,
    base_seconds: float | None = None,
    sleep: Callable[[float], None] | None = None,
) -> T:
    """Run ``func``; retry what ``retryable`` accepts, waiting as ``wait_for`` says; re-raise the last failure."""
    import tenacity

    attempts = 1 + (RETRIES if retries is None else retries)
    base = RETRY_BASE_SECONDS if base_seconds is None else base_seconds
    nap = sleep or (lambda seconds: pause(seconds))  # the module's, looked up when the pause comes

    def should_retry(exc: BaseException) -> bool:
        if not retryable(exc):
            return False
        asked = retry_after(exc)
        return asked is None or asked <= MAX_RETRY_AFTER_S  # a longer pause is the next run's to take

    def wait(state: tenacity.RetryCallState) -> float:
        failure = state.outcome.exception() if state.outcome is not None else None
        return wait_for(state.attempt_number, retry_after(failure) if failure else None, base)

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(attempts),
        wait=wait,
        retry=tenacity.retry_if_exception(should_retry),
        sleep=lambda seconds: nap(seconds) if seconds > 0 else None,
        reraise=True,
    )
    return retrying(func)
