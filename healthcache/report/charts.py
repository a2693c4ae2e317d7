"""The report's charts: Vega-Lite specs built with altair, drawn to SVG by vl-convert.

Why this pair: the SVG is rendered here, in Python, so the page carries no
JavaScript at all: it opens from disk with nothing to load, draws the same in
any browser, and each chart costs tens of kilobytes whatever the size of the
cache (plotly would inline ~3.5 MB of JavaScript per file; matplotlib is slower
to import and its SVG text is paths).  vl-convert is told to fetch nothing.

Both libraries are the optional ``report`` extra; ``require`` names the install
command when they are missing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from healthcache.errors import HealthcacheError
from healthcache.report.data import LONG_RUN_KM, ReportData, Row

WIDTH = 640
HEIGHT = 220
INSTALL_HINT = "pip install 'healthcache[report]'"
EMPTY = {
    "hr-drift": f"no data for this chart yet: no run with per-km heart rate over at least {LONG_RUN_KM} km",
    "hr-trend": "no data for this chart yet: no activity has an average heart rate",
}


class MissingExtra(HealthcacheError):
    """The plotting libraries of the ``report`` extra are not installed."""


@dataclass(frozen=True)
class Chart:
    key: str
    title: str
    svg: str  # empty when there was nothing to draw
    empty_reason: str = ""


def require() -> tuple[Any, Any]:
    """Import altair and vl-convert, or say how to install them."""
    try:
        import altair as alt
        import vl_convert as vlc
    except ImportError as exc:
        raise MissingExtra(
            f"the HTML report needs the plotting libraries altair and vl-convert ({exc.name} is missing)",
            hint=f"Install them with: {INSTALL_HINT}",
        ) from exc
    return alt, vlc


_ROOT_NS = re.compile(r'\s+xmlns(?::xlink)?="[^"]*"')


def inline_svg(svg: str) -> str:
    """SVG ready to sit inside HTML: namespace declarations (which HTML does not need) removed
    from the root element, so the page names no URL at all, not even a namespace."""
    end = svg.index(">")
    return _ROOT_NS.sub("", svg[:end]) + svg[end:]


def _time(field: str, title: str, alt: Any, **kw: Any) -> Any:
    # Dates are calendar days: UTC scale, so the viewer's time zone cannot shift them.
    return alt.X(f"{field}:T", title=title, scale=alt.Scale(type="utc"), axis=alt.Axis(format="%b %Y"), **kw)


def _every_fourth(weeks: list[str]) -> str:
    """A Vega expression that keeps the label of every fourth week (the axis would be unreadable otherwise)."""
    keep = ",".join(f"'{w}'" for w in weeks[::4])
    return f"indexof([{keep}], datum.value) >= 0 ? datum.value : ''"


Spec = tuple[str, str, list[Row], Any]  # key, title, rows, altair chart


class _Kit:
    """What every chart builder shares: altair, the sport colour, a sized chart over rows."""

    def __init__(self, alt: Any) -> None:
        self.alt = alt
        self.sport = alt.Color("sport:N", title="sport")

    def base(self, rows: list[Row]) -> Any:
        return self.alt.Chart(self.alt.Data(values=rows)).properties(width=WIDTH, height=HEIGHT)


def _weekly(data: ReportData, k: _Kit) -> Spec:
    alt, rows = k.alt, data.weekly
    chart = (
        k.base(rows)
        .mark_bar()
        .encode(
            # One band per week, all of the window's weeks even when empty; every 4th labelled.
            x=alt.X(
                "week:O",
                title="week (Monday)",
                scale=alt.Scale(domain=data.weeks),
                axis=alt.Axis(labelAngle=-45, labelExpr=_every_fourth(data.weeks)),
            ),
            y=alt.Y("km:Q", title="km", stack="zero"),
            color=k.sport,
            tooltip=["week:O", "sport:N", "km:Q"],
        )
    )
    return "weekly-distance", f"Weekly distance per sport, {data.weekly_note}", rows, chart


def _monthly(data: ReportData, k: _Kit) -> Spec:
    alt, rows = k.alt, data.monthly
    chart = (
        k.base(rows)
        .mark_bar()
        .encode(
            x=_time("month", "month", alt, timeUnit="utcyearmonth"),
            y=alt.Y("sum(km):Q", title="km", stack="zero"),
            color=k.sport,
            tooltip=["month:N", "sport:N", "km:Q", "count:Q", "hours:Q"],
        )
    )
    return "monthly-distance", "Monthly distance per sport", rows, chart


def _hr_trend(data: ReportData, k: _Kit) -> Spec:
    alt, rows = k.alt, data.hr_trend
    chart = (
        k.base(rows)
        .mark_line(point=True)
        .encode(
            x=_time("month", "month", alt),
            y=alt.Y("mean_hr:Q", title="mean avg HR (bpm)", scale=alt.Scale(zero=False)),
            color=k.sport,
            tooltip=["month:N", "sport:N", "mean_hr:Q", "n:Q"],
        )
    )
    return "hr-trend", "Mean heart rate per month (activities with an average HR)", rows, chart


def _hr_drift(data: ReportData, k: _Kit) -> Spec:
    alt, rows = k.alt, data.drift
    title = (
        f"Heart rate by kilometre on long runs ({data.long_runs} runs with per-km HR over at least "
        f"{LONG_RUN_KM} km), per year"
    )
    chart = (
        k.base(rows)
        .mark_line(point=True)
        .encode(
            x=alt.X("km:Q", title="kilometre", axis=alt.Axis(tickMinStep=1)),
            y=alt.Y("mean_hr:Q", title="mean HR (bpm)", scale=alt.Scale(zero=False)),
            color=alt.Color("year:N", title="year"),
            tooltip=["year:N", "km:Q", "mean_hr:Q", "runs:Q"],
        )
    )
    return "hr-drift", title, rows, chart


def _hr_coverage(data: ReportData, k: _Kit) -> Spec:
    alt = k.alt
    rows = [
        {"year": r["year"], "what": what, "pct": r[key]}
        for r in data.hr_coverage
        for what, key in (("avg HR", "pct_hr"), ("per-km HR", "pct_splits"))
    ]
    chart = (
        k.base(rows)
        .mark_bar()
        .encode(
            x=alt.X("year:O", title="year"),
            xOffset="what:N",
            y=alt.Y("pct:Q", title="% of activities", scale=alt.Scale(domain=[0, 100])),
            color=alt.Color("what:N", title=""),
            tooltip=["year:O", "what:N", "pct:Q"],
        )
    )
    return "hr-coverage", "Heart-rate coverage by year (% of activities)", rows, chart


def _records_over_time(data: ReportData, k: _Kit) -> Spec:
    alt, rows = k.alt, data.records_over_time
    chart = (
        k.base(rows)
        .mark_line(point=True)
        .encode(
            x=alt.X("at:T", title="saved", scale=alt.Scale(type="utc"), axis=alt.Axis(format="%Y-%m-%d")),
            y=alt.Y("records:Q", title="records"),
            color=alt.Color("source:N", title="source"),
            tooltip=["at:T", "source:N", "records:Q", "origin:N"],
        )
    )
    title = f"Records per source over time ({data.backups_sampled} backups sampled, and now)"
    return "records-over-time", title, rows, chart


# Every chart, in page order: a new chart is one builder and one line here.
CHARTS: tuple[Callable[[ReportData, _Kit], Spec], ...] = (
    _weekly,
    _monthly,
    _hr_trend,
    _hr_drift,
    _hr_coverage,
    _records_over_time,
)


def specs(data: ReportData) -> list[Spec]:
    """(key, title, rows, altair chart) for every chart, in page order."""
    alt, _ = require()
    kit = _Kit(alt)
    return [build(data, kit) for build in CHARTS]


def render(data: ReportData) -> list[Chart]:
    """Every chart as inline SVG; a chart without data says why instead of drawing empty axes."""
    _, vlc = require()
    charts = []
    for key, title, rows, chart in specs(data):
        if not rows:
            charts.append(Chart(key, title, "", empty_reason=EMPTY.get(key, "no data for this chart yet")))
            continue
        spec = chart.to_dict()
        svg = vlc.vegalite_to_svg(spec, allowed_base_urls=[])
        charts.append(Chart(key, title, inline_svg(svg)))
    return charts
