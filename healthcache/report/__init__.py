"""``healthcache report --html FILE``: the data's health and the training, in one offline page.

``collect`` (data.py) reads the workspace and computes plain rows; ``charts``
draws them to SVG; ``page`` assembles one HTML string with nothing to fetch;
``write_report`` puts it on disk through the atomic save path.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from healthcache import atomic
from healthcache.errors import HealthcacheError, UsageError
from healthcache.report.data import BACKUP_SAMPLES, ReportData, collect

__all__ = ["BACKUP_SAMPLES", "ReportData", "ReportResult", "collect", "render_html", "write_report"]
from healthcache.store import Store


@dataclass(frozen=True)
class ReportResult:
    path: Path
    bytes: int
    activities: int
    charts: tuple[str, ...]
    empty_charts: tuple[str, ...]
    verify_ok: bool
    lost: int

    def as_dict(self) -> dict[str, object]:
        return {
            "path": str(self.path),
            "bytes": self.bytes,
            "activities": self.activities,
            "charts": list(self.charts),
            "empty_charts": list(self.empty_charts),
            "verify_ok": self.verify_ok,
            "lost": self.lost,
        }


def render_html(data: ReportData) -> tuple[str, list[str], list[str]]:
    """The page, and which charts were drawn and which had no data."""
    from healthcache.report.charts import render
    from healthcache.report.page import render_page

    charts = render(data)
    return render_page(data, charts), [c.key for c in charts if c.svg], [c.key for c in charts if not c.svg]


def check_target(store: Store, target: Path) -> Path:
    """Refuse a report path inside the workspace's data folders: it could replace the cache or a backup."""
    paths = store.paths
    resolved = target.expanduser().absolute().resolve()
    for folder in (paths.tracking, paths.backups, paths.credentials):
        root = folder.absolute().resolve()
        if resolved == root or root in resolved.parents:
            raise UsageError(
                f"refusing to write the report to {target}: it is inside {folder}, which holds your data",
                hint="Choose a path outside tracking/, backups/ and the credentials folder.",
            )
    if resolved.is_dir():
        raise UsageError(f"{target} is a folder; give the report's file name, e.g. {target / 'report.html'}")
    return resolved


def write_report(store: Store, target: Path, *, backup_samples: int = BACKUP_SAMPLES) -> ReportResult:
    """Compute, draw and write the report; the workspace is only read."""
    dest = check_target(store, target)
    data = collect(store, backup_samples=backup_samples)
    html, drawn, empty = render_html(data)
    raw = html.encode("utf-8")
    try:
        # 0600 like every file healthcache writes: the page is personal health data.
        atomic.save_atomic(dest, raw)
    except OSError as exc:
        raise HealthcacheError(f"cannot write the report to {target}: {exc.strerror or exc}") from exc
    return ReportResult(
        path=dest,
        bytes=len(raw),
        activities=data.activities,
        charts=tuple(drawn),
        empty_charts=tuple(empty),
        verify_ok=bool(data.verify["ok"]),
        lost=data.lost_total,
    )
