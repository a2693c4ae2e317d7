"""One error hierarchy; each error carries the exit code the CLI returns for it.

The CLI is the only place that turns these into messages and exit statuses, so
the library never calls ``sys.exit`` and callers can catch a precise type.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTEGRITY = 3
EXIT_CORRUPT = 4
EXIT_LOCK_BUSY = 75
EXIT_INTERRUPTED = 130

EXIT_CODES: dict[int, str] = {
    EXIT_OK: "success",
    EXIT_ERROR: "error (network, authentication, a source or file that failed, bad configuration)",
    EXIT_USAGE: "usage error (bad command line)",
    EXIT_INTEGRITY: "integrity refusal: the save would have lost data; nothing was written",
    EXIT_CORRUPT: "corrupt input: the cache, a backup, the baseline or a saved login cannot be read; nothing was "
    "written. A bookkeeping file in tracking/sync_state/ that cannot be read is only a hint: it is read as empty, "
    "said once, and rewritten",
    EXIT_LOCK_BUSY: "another healthcache run holds the write lock",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C); every file is either as it was or completely written",
}


class HealthcacheError(Exception):
    """Base of every error the program reports to a user."""

    exit_code: int = EXIT_ERROR

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n{self.hint}"

    def json_fields(self) -> dict[str, Any]:
        """What a ``--json`` failure object carries beside ``error`` and ``exit_code``."""
        return {}


class UsageError(HealthcacheError):
    exit_code = EXIT_USAGE


class ConfigError(HealthcacheError):
    exit_code = EXIT_ERROR


class CorruptInput(HealthcacheError):
    """A file we must read is not what it claims to be; nothing was written."""

    exit_code = EXIT_CORRUPT

    def __init__(self, path: Path | str, reason: str, *, hint: str | None = None) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}", hint=hint)


class NewerSchema(CorruptInput):
    """The file was written by a newer healthcache; refusing beats guessing."""


class IntegrityRefused(HealthcacheError):
    """The guard refused a save because it would lose data."""

    exit_code = EXIT_INTEGRITY

    def __init__(self, message: str, violations: Sequence[object], *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.violations = violations

    def json_fields(self) -> dict[str, Any]:
        # Every violation, however many the message had room for.
        return {"violations": [_plain(v) for v in self.violations]}


def _plain(value: object) -> object:
    import msgspec  # loaded by then: a violation is a msgspec Struct

    if isinstance(value, msgspec.Struct):
        return msgspec.structs.asdict(value)
    return str(value)


class LockBusy(HealthcacheError):
    exit_code = EXIT_LOCK_BUSY

    def __init__(self, lock_path: Path, holder: str | None) -> None:
        who = f"pid {holder}" if holder else "another process"
        super().__init__(
            f"the write lock {lock_path} is held by {who}",
            hint="Another healthcache run is writing; try again when it finishes "
            "(or pass --lock-timeout SECONDS to wait).",
        )
        self.lock_path = lock_path
        self.holder = holder


class SourceError(HealthcacheError):
    """A source (API or importer) failed; other sources still run."""

    exit_code = EXIT_ERROR


class AuthRequired(SourceError):
    """Stored credentials are missing or no longer accepted."""


class StorageError(HealthcacheError, OSError):
    """The OS refused a write (disk full, no free inodes, quota, read-only, permission).

    Names the path, the step that failed and what is safe, so the user knows
    whether anything changed.  It is an ``OSError`` too (``errno`` is the
    cause's), so code that handles OS errors keeps working.
    """

    exit_code = EXIT_ERROR

    def __init__(self, path: Path | str, step: str, cause: OSError, safe: str) -> None:
        self.path = Path(path)
        self.step = step
        self.cause = cause
        self.safe = safe
        what = cause.strerror or str(cause) or type(cause).__name__
        HealthcacheError.__init__(self, f"could not {step} {self.path}: {what}", hint=safe)
        self.errno = cause.errno
        self.strerror = cause.strerror
        self.filename = str(self.path)

    def __str__(self) -> str:
        return HealthcacheError.__str__(self)

    def with_safe(self, safe: str) -> StorageError:
        """The same failure, with what is safe told more exactly by a caller who knows more."""
        return StorageError(self.path, self.step, self.cause, safe)

    def json_fields(self) -> dict[str, Any]:
        return {"path": str(self.path), "errno": self.errno}
