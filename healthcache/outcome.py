"""Typed outcomes, and the one decision that turns them into an exit status.

Library results and errors report *what happened* (an ``Outcome``, or a
``Failure`` that also says why); ``exit_status`` is the only function that
picks the process's exit code, by the project's priority: interrupted >
corrupt > integrity > lock busy > usage > error > ok.  The numbers stay those
of ``healthcache.errors`` (the README's table).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable, Mapping
from enum import IntEnum
from typing import Any

import msgspec

from healthcache import errors


class Outcome(IntEnum):
    """What a command (or one of its steps) came to; the value is its exit code."""

    OK = errors.EXIT_OK
    ERROR = errors.EXIT_ERROR
    USAGE = errors.EXIT_USAGE
    INTEGRITY = errors.EXIT_INTEGRITY
    CORRUPT = errors.EXIT_CORRUPT
    LOCK_BUSY = errors.EXIT_LOCK_BUSY
    INTERRUPTED = errors.EXIT_INTERRUPTED

    @classmethod
    def of_code(cls, code: int) -> Outcome:
        """The outcome an exit code stands for (an unknown non-zero code is an error)."""
        try:
            return cls(code)
        except ValueError:
            return cls.ERROR


# Most telling first: a corrupt file explains a refusal, a refusal a busy lock, and so on.
PRIORITY: tuple[Outcome, ...] = (
    Outcome.INTERRUPTED,
    Outcome.CORRUPT,
    Outcome.INTEGRITY,
    Outcome.LOCK_BUSY,
    Outcome.USAGE,
    Outcome.ERROR,
)


class Failure(msgspec.Struct, frozen=True):
    """One thing that went wrong: its outcome, a message, the next step, and JSON extras.

    ``fields`` holds what a ``--json`` failure object carries beside ``error``
    and ``exit_code``: ``violations``, ``lost`` and the like, complete.
    """

    outcome: Outcome
    message: str
    hint: str | None = None
    fields: Mapping[str, Any] = msgspec.field(default_factory=dict)


def exit_status(outcomes: Iterable[Outcome | Failure]) -> int:
    """The exit code of a run that came to ``outcomes``: the most telling one, else 0."""
    seen = {o.outcome if isinstance(o, Failure) else o for o in outcomes}
    for outcome in PRIORITY:
        if outcome in seen:
            return int(outcome)
    return int(Outcome.OK)


# What to do about an OS error that ended a command, by its errno: most are reads (a write that fails
# is a StorageError, which says itself what is safe), so "free space" is only said where it helps.
_PERMISSIONS = "Fix the permissions of that file or of its folder, then run the command again."
OS_ERROR_HINTS: dict[int, str] = {
    errno.EACCES: _PERMISSIONS,
    errno.EPERM: _PERMISSIONS,
    errno.EISDIR: "A folder stands where healthcache expects a file: move it aside, then run the command again.",
    errno.ENOTDIR: "A file stands where healthcache expects a folder: move it aside, then run the command again.",
    errno.ENOSPC: "Free space on that file system, then run the command again.",
    errno.EDQUOT: "Free space within your disk quota, then run the command again.",
    errno.EROFS: "That file system is mounted read-only: make it writable, or use a home on another one.",
    errno.ENOENT: "Something removed that file or folder while the command ran: run the command again.",
}
_ATOMIC = "Every file healthcache writes is written atomically: each is as it was or complete."


def os_error_hint(code: int | None) -> str:
    """The next step for an ``OSError`` of this errno, and why nothing is half-written."""
    return f"{OS_ERROR_HINTS.get(code or 0, 'Fix the cause above, then run the command again.')} {_ATOMIC}"


def failure_of(exc: BaseException) -> Failure:
    """What an exception that ended a command means for the user: message, next step, outcome."""
    if isinstance(exc, KeyboardInterrupt):
        return Failure(
            Outcome.INTERRUPTED,
            "interrupted",
            hint="Every write is atomic: each file is either as it was or completely written.",
        )
    if isinstance(exc, errors.HealthcacheError):
        return Failure(Outcome.of_code(exc.exit_code), exc.message, hint=exc.hint, fields=exc.json_fields())
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        what = exc.strerror or (os.strerror(exc.errno) if exc.errno else str(exc) or type(exc).__name__)
        return Failure(Outcome.ERROR, f"{where}{what}", hint=os_error_hint(exc.errno))
    return Failure(Outcome.ERROR, f"{type(exc).__name__}: {exc}")


def json_failure(failures: Iterable[Failure], code: int, base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The one ``--json`` object of a failed run: the command's own result (if any),
    ``error``, ``exit_code``, every failure's extras (``violations``, ``lost``), and ``hint``."""
    failures = list(failures)
    out: dict[str, Any] = dict(base or {})
    out["error"] = "; ".join(f.message for f in failures) or "failed"
    out["exit_code"] = code
    hints = [f.hint for f in failures if f.hint]
    if hints:
        out["hint"] = "\n".join(dict.fromkeys(hints))
    for failure in failures:
        for key, value in failure.fields.items():
            if isinstance(value, list) and isinstance(out.get(key), list):
                out[key] = [*out[key], *value]
            else:
                out[key] = value
    return out
