"""The import report: one line per file and archive member, the counts, the timings, what was written."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from healthcache.importers.manifest import Reconciled

if TYPE_CHECKING:  # only for the annotations: an import with nothing new loads neither
    from healthcache.merge import MergeReport
    from healthcache.store import SaveResult

Outcome = Literal["imported", "skipped", "unchanged", "failed"]


class FileResult(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One file's (or archive member's) line of the report."""

    path: str
    status: Outcome
    kind: str | None = None
    reason: str | None = None
    records: int = 0
    warnings: list[str] = []
    opened: bool = True
    member: bool = False


@dataclass
class ImportReport:
    files: list[FileResult] = field(default_factory=list)
    merge: MergeReport | None = None
    save: SaveResult | None = None
    dry_run: bool = False
    timings: dict[str, float] = field(default_factory=dict)
    manifests_written: list[str] = field(default_factory=list)
    reconciled: Reconciled | None = None  # the manifests were checked against the cache
    jobs: int = 1  # the processes that decoded: 1 when no pool was started

    @property
    def reconcile_note(self) -> str | None:
        """What checking the manifests against the cache found, for the report."""
        r = self.reconciled
        if r is None:
            return None
        return (
            "the cache is not the one the import state describes (restored or changed since): "
            f"checked {r.checked} file(s) against it, {r.stale} to read again"
        )

    def counts(self) -> dict[str, int]:
        top = [f for f in self.files if not f.member]
        members = [f for f in self.files if f.member]
        out = {
            "seen": len(top),
            "opened": sum(1 for f in top if f.opened),
            "unopened": sum(1 for f in top if not f.opened and f.status == "unchanged"),
            "records": sum(f.records for f in self.files),
        }
        for s in ("imported", "skipped", "unchanged", "failed"):
            out[s] = sum(1 for f in top if f.status == s)
            out[f"members_{s}"] = sum(1 for f in members if f.status == s)
        return out

    @property
    def failures(self) -> list[FileResult]:
        return [f for f in self.files if f.status == "failed"]

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "counts": self.counts(),
            "merge": self.merge.summary() if self.merge is not None else None,
            "saved": bool(self.save and self.save.changed),
            "backup": str(self.save.backup) if self.save and self.save.backup else None,
            "timings_s": {k: round(v, 3) for k, v in self.timings.items()},
            "jobs": self.jobs,
            "manifests_written": self.manifests_written,
            "reconciled": None
            if self.reconciled is None
            else {"checked": self.reconciled.checked, "stale": self.reconciled.stale, "note": self.reconcile_note},
            "files": msgspec.to_builtins(self.files),
        }
