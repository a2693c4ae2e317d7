"""The import report: one line per file and archive member, the counts, the timings, what was written."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from healthcache.importers.manifest import Reconciled, path_key

if TYPE_CHECKING:  # only for the annotations: an import with nothing new loads neither
    from healthcache.merge import MergeReport
    from healthcache.store import SaveResult

Outcome = Literal["imported", "skipped", "unchanged", "failed"]


def namer(given: Sequence[str]) -> Callable[[str], str]:
    """How the human report names a file: relative to the one folder given, under the input as typed
    when there were several, and a file given by name as given (``path!member`` alike).

    The labels are absolute (``walk``: ``abspath``, no symlink resolved), as JSON and the manifests keep them.
    """
    roots = sorted(((path_key(os.path.abspath(g)), path_key(g)) for g in given), key=lambda r: -len(r[0]))
    alone = len(roots) == 1

    def name(label: str) -> str:
        for key, typed in roots:
            if label == key or label.startswith(key + "!"):
                return typed + label[len(key) :]
            if label.startswith(key.rstrip(os.sep) + os.sep):
                rest = label[len(key.rstrip(os.sep)) + 1 :]
                return rest if alone else os.path.join(typed, rest)
        return label

    return name


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


class ImportReport(msgspec.Struct, kw_only=True):
    """What one import did: a line per file and member, the merge and save, timings, manifests written."""

    files: list[FileResult] = msgspec.field(default_factory=list)
    merge: MergeReport | None = None
    save: SaveResult | None = None
    dry_run: bool = False
    timings: dict[str, float] = msgspec.field(default_factory=dict)
    manifests_written: list[str] = msgspec.field(default_factory=list)
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
        """Counts that add up: ``seen`` = imported + skipped + unchanged + failed (files, and archive
        members apart), and ``records`` (read) = ``read_twice`` + ``distinct``, where ``distinct`` =
        the sum of the merge's outcomes.

        ``read_twice``: a record read from more than one file (a FIT file alone and inside an
        export, a copy of a file) is merged once (``run_import`` keeps one per record key), so the
        merge has exactly one outcome per distinct record.
        """
        top = [f for f in self.files if not f.member]
        members = [f for f in self.files if f.member]
        records = sum(f.records for f in self.files)
        distinct = len(self.merge.entries) if self.merge is not None else 0
        out = {
            "seen": len(top),
            "opened": sum(1 for f in top if f.opened),
            "unopened": sum(1 for f in top if not f.opened and f.status == "unchanged"),
            "records": records,
            "distinct": distinct,
            "read_twice": records - distinct,
            "members_seen": len(members),
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
