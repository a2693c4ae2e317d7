"""What one source did in one run: the per-step line of the sync report."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Status = Literal["ok", "skipped", "failed", "rate_limited", "not_configured", "dry_run"]


@dataclass
class StepReport:
    """One source's step of a sync: what it asked, saw and changed."""

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
    joined_closest: int = 0  # joined one match; others it matched stay apart (merge.OUTCOMES)
    kept_apart: int = 0  # added as new: the activities its ids name cannot take it
    conflict: int = 0  # not stored: its id names an activity holding another record of the source
    tombstoned: int = 0
    skipped: int = 0  # records rejected (bad payloads)
    saved: bool = False  # the cache file was rewritten
    backup: str | None = None
    errors: list[str] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)  # dry run: what would change
    notes: list[str] = field(default_factory=list)  # worth telling, not a failure
    hint: str | None = None  # a failure's next step (also the last line of ``reason``, for the person)

    @property
    def failed(self) -> bool:
        return self.status in ("failed", "rate_limited")

    def failure_message(self) -> str:
        """``reason`` without its next step, which a failure carries as its own ``hint``."""
        reason = self.reason or self.status
        return reason.removesuffix(f"\n{self.hint}") if self.hint else reason

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
            "joined_closest": self.joined_closest,
            "kept_apart": self.kept_apart,
            "conflict": self.conflict,
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
