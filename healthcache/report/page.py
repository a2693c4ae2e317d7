"""One self-contained HTML page: inline CSS, inline SVG charts, no script, nothing to fetch.

A Content-Security-Policy of ``default-src 'none'`` makes the promise binding:
even if a future change slipped in a link to a font or an image, the browser
would refuse to fetch it (and the browser test would see the refusal).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from html import escape
from typing import Any

from healthcache import __version__
from healthcache.report.charts import Chart
from healthcache.report.data import ReportData, Row, fmt_bytes

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
MONTHS_TABLED = 12

CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
main{max-width:980px;margin:0 auto;padding:24px}
h1{font-size:26px;margin:0 0 4px} h2{font-size:20px;margin:32px 0 8px;border-bottom:2px solid #d9dde4}
h3{font-size:16px;margin:20px 0 6px}
.meta{color:#5b6475;margin:0 0 16px}
.card{background:#fff;border:1px solid #e1e4ea;border-radius:8px;padding:12px 16px;margin:12px 0}
figure.chart{margin:0;overflow-x:auto} figure.chart svg{max-width:100%;height:auto}
figcaption{font-weight:600;margin-bottom:6px}
table{border-collapse:collapse;width:100%;font-size:14px}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eceef2} td.n,th.n{text-align:right}
.ok{color:#17803d;font-weight:600} .bad{color:#b42318;font-weight:600} .muted{color:#6b7383}
.badge{display:inline-block;padding:2px 10px;border-radius:12px;font-weight:600}
.badge.ok{background:#dcfce7} .badge.bad{background:#fee4e2}
"""


def _table(rows: Sequence[Row], columns: Sequence[tuple[str, str]], numeric: set[str] | None = None) -> str:
    numeric = numeric or set()
    head = "".join(f"<th{' class=n' if k in numeric else ''}>{escape(t)}</th>" for k, t in columns)
    body = "".join(
        "<tr>"
        + "".join(
            f"<td{' class=n' if k in numeric else ''}>{escape('' if r.get(k) is None else str(r.get(k)))}</td>"
            for k, _ in columns
        )
        + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _chart(chart: Chart, extra: str = "") -> str:
    """A chart in its card (with ``extra`` HTML below it), or the reason it has nothing to draw."""
    if not chart.svg:
        return (
            f'<div class="card"><p class="figtitle"><strong>{escape(chart.title)}</strong></p>'
            f'<p class="muted empty-chart" data-chart="{escape(chart.key)}">{escape(chart.empty_reason)}</p>'
            f"{extra}</div>"
        )
    return (
        f'<div class="card"><figure class="chart" data-chart="{escape(chart.key)}">'
        f"<figcaption>{escape(chart.title)}</figcaption>{chart.svg}</figure>{extra}</div>"
    )


def _health(data: ReportData, charts: dict[str, Chart]) -> list[str]:
    """The data-health half of the page, one card per question, in page order."""
    return [
        "<h2>Data health</h2>",
        _verify_card(data),
        _baseline_card(data),
        _chart(charts["records-over-time"], _records_notes(data)),
        _chart(charts["hr-coverage"], _coverage_table(data) if data.hr_coverage else ""),
        _steps_card(data),
        _backups_card(data),
        _lost_card(data),
    ]


def _verify_card(data: ReportData) -> str:
    v = data.verify
    if v["ok"]:
        status = (
            f'<p><span class="badge ok" id="verify-status">OK</span> {v["activities"]} activities, '
            f"{v['records']} records, schema and invariants checked"
            + (", baseline met" if data.baseline_recorded_at else "")
            + ".</p>"
        )
    else:
        status = (
            f'<p><span class="badge bad" id="verify-status">{len(v["problems"])} problem(s)</span></p><ul>'
            + "".join(f"<li>{escape(p)}</li>" for p in v["problems"])
            + "</ul>"
        )
    return (
        '<div class="card"><h3>Verify</h3>'
        + status
        + '<p class="muted">Backups were not re-hashed here: <code>healthcache verify --backups</code> does that.</p></div>'
    )


def _baseline_card(data: ReportData) -> str:
    if not data.baseline:
        body = "<p>No baseline recorded yet: <code>healthcache verify --baseline</code> records one.</p>"
    else:
        rows = [
            {**r, "delta": f"{r['delta']:+d}", "status": "ok" if r["ok"] else "BELOW BASELINE"} for r in data.baseline
        ]
        body = f'<p class="muted">Baseline recorded {escape(str(data.baseline_recorded_at))}.</p>' + _table(
            rows,
            [("what", "count"), ("baseline", "baseline"), ("now", "now"), ("delta", "change"), ("status", "")],
            {"baseline", "now", "delta"},
        )
    return '<div class="card"><h3>Baseline against now</h3>' + body + "</div>"


def _records_notes(data: ReportData) -> str:
    """What the records-over-time points are, and which backups could not be read."""
    stored = sum(1 for r in data.backups if not r["corrupt"])
    notes = (
        '<p class="muted">Records are counted as the guard counts them (every source id, alias and tombstone). '
        f"The points are {data.backups_sampled} of the {stored} backups, spread over the history, and the cache "
        "now; healthcache keeps no run history yet, so nothing between them is known.</p>"
    )
    if data.backups_unreadable:
        notes += (
            '<p class="bad">Unreadable backups (not drawn): '
            + escape(", ".join(data.backups_unreadable))
            + "; check them with <code>healthcache verify --backups</code>.</p>"
        )
    return notes


def _coverage_table(data: ReportData) -> str:
    return _table(
        data.hr_coverage,
        [
            ("year", "year"),
            ("activities", "activities"),
            ("with_hr", "with avg HR"),
            ("pct_hr", "%"),
            ("with_splits", "with per-km HR"),
            ("pct_splits", "%"),
        ],
        {"activities", "with_hr", "pct_hr", "with_splits", "pct_splits"},
    )


def _steps_card(data: ReportData) -> str:
    if data.steps:
        body = _table(
            data.steps, [("step", "step"), ("last", "last run (UTC)"), ("detail", "detail"), ("error", "problem")]
        )
    else:
        body = "<p>Nothing has run in this workspace yet.</p>"
    return '<div class="card"><h3>Last run of each step</h3>' + body + "</div>"


def _backup_note(r: Row) -> str:
    return "; ".join(
        n
        for n, on in (
            ("a corrupt cache set aside by restore", r["corrupt"]),
            ("the same file as the cache (hard link)", r["shared_with_cache"]),
        )
        if on
    )


def _backups_card(data: ReportData) -> str:
    if not data.backups:
        body = "<p>No backups yet: one is made before every save that changes the cache.</p>"
    else:
        # A backup hard-linked to the cache (or to another backup) takes no space of its own.
        inodes = {r["inode"]: r["bytes"] for r in data.backups if not r["shared_with_cache"]}
        rows = [{**r, "size": fmt_bytes(r["bytes"]), "note": _backup_note(r)} for r in data.backups]
        body = f"<p>{len(rows)} backups, {fmt_bytes(sum(inodes.values()))} on disk.</p>" + _table(
            rows, [("name", "file"), ("when", "saved (UTC)"), ("size", "size"), ("note", "")], {"size"}
        )
    return '<div class="card"><h3>Backups</h3>' + body + "</div>"


def _lost_card(data: ReportData) -> str:
    parts = ['<div class="card"><h3>Lost, deleted, refused</h3>', _lost(data)]
    if data.deleted:
        parts.append(f"<p>{len(data.deleted)} activities deleted explicitly (tombstones):</p>")
        parts.append(_table(data.deleted, [("id", "record"), ("deleted_at", "deleted (UTC)"), ("reason", "reason")]))
    else:
        parts.append("<p>No activity was deleted.</p>")
    parts.append(
        '<p class="muted">A save the guard refuses writes nothing and is not recorded in the workspace, so '
        "refusals cannot be listed here; input files an import refused are in the steps table above.</p></div>"
    )
    return "".join(parts)


def _lost(data: ReportData) -> str:
    """The records a sampled backup holds that are gone now without a tombstone, or that there are none."""
    if not data.lost_total:
        return (
            f'<p class="ok" id="lost-count">No record lost: every record in the {data.backups_sampled} sampled '
            "backups is in the cache or was deleted explicitly.</p>"
        )
    text = (
        f'<p class="bad" id="lost-count">{data.lost_total} record(s) held by a sampled backup are missing now '
        "without a tombstone (restore them with <code>healthcache restore BACKUP --merge</code>):</p>"
    ) + _table(
        data.lost,
        [("key", "record"), ("start_time", "start (UTC)"), ("sport", "sport"), ("last_seen_in", "last seen in")],
    )
    if data.lost_total > len(data.lost):
        text += f"<p>... and {data.lost_total - len(data.lost)} more.</p>"
    return text


def _training(data: ReportData, charts: dict[str, Chart]) -> list[str]:
    parts = ["<h2>Training</h2>", _chart(charts["weekly-distance"]), _chart(charts["monthly-distance"])]
    by_month: dict[str, list[Row]] = defaultdict(list)
    for r in data.monthly:
        by_month[r["month"]].append(r)
    recent = sorted(by_month)[-MONTHS_TABLED:]
    if recent:
        rows = [
            {
                "month": m,
                "count": sum(r["count"] for r in by_month[m]),
                "km": round(sum(r["km"] for r in by_month[m]), 1),
                "hours": round(sum(r["hours"] for r in by_month[m]), 1),
                "sports": ", ".join(f"{r['sport']} {r['km']:g} km" for r in by_month[m]),
            }
            for m in reversed(recent)
        ]
        parts.append(f'<div class="card"><h3>Monthly totals (last {len(rows)} months with activity)</h3>')
        parts.append(
            _table(
                rows,
                [
                    ("month", "month"),
                    ("count", "activities"),
                    ("km", "km"),
                    ("hours", "hours"),
                    ("sports", "per sport"),
                ],
                {"count", "km", "hours"},
            )
        )
        parts.append("</div>")
    parts.append(_chart(charts["hr-trend"]))
    parts.append(_chart(charts["hr-drift"]))
    return parts


def render_page(data: ReportData, charts: Sequence[Chart]) -> str:
    """The whole report as one HTML string."""
    by_key = {c.key: c for c in charts}
    span = f", {data.first_day} to {data.last_day}" if data.first_day else ""
    body: list[Any] = [
        "<h1>healthcache report</h1>",
        f'<p class="meta">Generated {escape(data.generated_at)} by healthcache {escape(__version__)} '
        f"from {escape(data.home)}: {data.activities} activities{escape(span)}.</p>",
        *_health(data, by_key),
        *_training(data, by_key),
    ]
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>healthcache report</title>"
        f"<style>{CSS}</style></head><body><main>" + "".join(body) + "</main></body></html>\n"
    )
