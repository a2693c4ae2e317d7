"""What one export did, for people (``human``) and scripts (``to_json``)."""

from __future__ import annotations

from typing import Any

import msgspec


class TableCounts(msgspec.Struct):
    before: int
    after: int | None


class ExportReport(msgspec.Struct, kw_only=True):
    """What one export did; ``to_json`` is the ``--json`` document."""

    target: str
    engine: str
    dry_run: bool
    full_refresh: bool
    processed: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    orphans: int = 0
    deleted: int = 0
    seconds: float = 0.0
    rows: dict[str, TableCounts] = {}
    size_mb_before: float = 0.0
    size_mb_after: float | None = None
    sent: dict[str, int] = {}  # rows sent (or, for a dry run, that would be sent) per table
    statements: int = 0  # every statement sent to the database, reads included
    cache_sha256: str | None = None
    cache_unchanged: bool = False
    notes: list[str] = []

    @property
    def changed(self) -> int:
        return self.inserted + self.updated

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = msgspec.to_builtins(self)
        out["size_mb"] = {"before": out.pop("size_mb_before"), "after": out.pop("size_mb_after")}
        return out

    def human(self) -> str:
        verb = "to send" if self.dry_run else "sent"
        head = f"export {self.engine} {self.target}: "
        if self.cache_unchanged:
            head += f"cache unchanged since the last export; processed {self.processed} activities, 0 sent"
        else:
            head += (
                f"processed {self.processed} activities, {self.changed} actually changed "
                f"({self.inserted} new, {self.updated} updated, {self.unchanged} unchanged)"
            )
        lines = [head + f" in {self.seconds:.2f} s" + (" [dry run: nothing written]" if self.dry_run else "")]
        lines.extend(self.notes)
        if self.orphans or self.deleted:
            if self.deleted:
                lines.append(f"orphans: {self.orphans}, {'would delete' if self.dry_run else 'deleted'} {self.deleted}")
            else:
                lines.append(
                    f"orphans: {self.orphans} row(s) for activities no longer in the cache "
                    "(kept, marked orphaned_at; --delete-orphans removes them)"
                )
        if any(self.sent.values()):
            lines.append(f"rows {verb}: " + ", ".join(f"{t} {n}" for t, n in self.sent.items() if n))
        if self.rows:
            width = max(len(t) for t in self.rows)
            lines.append(f"{'table':<{width}}  {'before':>9}  {'after':>9}")
            for name, c in self.rows.items():
                after = "-" if c.after is None else str(c.after)
                lines.append(f"{name:<{width}}  {c.before:>9}  {after:>9}")
        after_mb = "-" if self.size_mb_after is None else f"{self.size_mb_after:.1f}"
        lines.append(f"database size: {self.size_mb_before:.1f} MB -> {after_mb} MB")
        return "\n".join(lines)
