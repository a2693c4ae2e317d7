"""list, show, stats, diff and rebuild: look at the training and at the data's history.

Each command reads the cache (no lock: saves replace the file by rename), calls
one library function (healthcache.views, .diff, .rebuild) and renders.  Tables
are drawn by rich; colour only at a terminal, never with NO_COLOR, --json or -q.
"""

from __future__ import annotations

import io
import os
import shutil
import sys
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import click
import msgspec

from healthcache.cli import Ctx, common_options
from healthcache.cli.complete import complete_activity, complete_state
from healthcache.cli.progress import at_terminal, progress_for

DATE = click.DateTime(formats=["%Y-%m-%d"])


def _is_tty() -> bool:
    return at_terminal()


def _colour(ctx: Ctx) -> bool:
    """Colour only at a terminal, and never with NO_COLOR, --json or --quiet."""
    return _is_tty() and not ctx.as_json and not ctx.quiet and not os.environ.get("NO_COLOR")


def _width() -> int:
    """The width tables are drawn at: $COLUMNS when set (a pipe too), else the terminal's, else 80."""
    return shutil.get_terminal_size((80, 24)).columns


def _render(ctx: Ctx, *items: Any, width: int | None = None) -> str:
    """Rich renderables as text: ``width`` columns wide (default ``_width()``), coloured as ``_colour`` says."""
    from rich.console import Console

    colour = _colour(ctx)
    buf = io.StringIO()
    console = Console(
        file=buf,
        width=width or _width(),
        force_terminal=colour,
        no_color=not colour,
        color_system="auto" if colour else None,
        highlight=False,
        emoji=False,
        markup=False,  # names are the user's text: "[easy]" is a name, not a style
    )
    for item in items:
        console.print(item)
    return "\n".join(line.rstrip() for line in buf.getvalue().rstrip("\n").splitlines())


def fit_flexible(fixed: Sequence[int], width: int, *, floor: int = 8) -> tuple[int, int]:
    """(the flexible column's width, the width to draw at) for a table of ``fixed`` columns, one space
    apart, and one flexible column: it takes what is left, at least ``floor``.  Where that does not fit,
    the drawing is wider than ``width``: an id or a time cut short is worse than a wrapped line."""
    room = width - sum(fixed) - len(fixed)
    return max(room, floor), max(width, sum(fixed) + len(fixed) + floor)


def _fitted(ctx: Ctx, table: Any, rows: Sequence[Sequence[str]], flexible: int) -> str:
    """``table`` (its columns added, no rows yet) drawn with ``rows``: every column but ``flexible`` as wide
    as its widest cell, never shrunk; ``flexible`` takes what is left of the width and is cut with "…"."""
    from rich.cells import cell_len

    columns = table.columns
    widths = [max([cell_len(str(c.header)), *(cell_len(r[i]) for r in rows)]) for i, c in enumerate(columns)]
    room, draw = fit_flexible([w for i, w in enumerate(widths) if i != flexible], _width())
    for i, column in enumerate(columns):
        column.no_wrap = True
        if i == flexible:
            column.overflow, column.max_width, column.min_width = "ellipsis", room, min(room, widths[i])
        else:
            column.min_width = widths[i]
    for row in rows:
        table.add_row(*row)
    return _render(ctx, table, width=draw)


def _day(value: datetime | None) -> date | None:
    return value.date() if value is not None else None


def _hms(seconds: float | None) -> str:
    if seconds is None:
        return ""
    s = round(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _num(value: float | None, digits: int = 0) -> str:
    if value is None:
        return ""
    return f"{value:.{digits}f}"


def _table(**kwargs: Any) -> Any:
    """A borderless table with one space between columns: 80 columns hold a lot."""
    from rich.table import Table

    return Table(box=None, padding=(0, 1), pad_edge=False, collapse_padding=True, header_style="bold", **kwargs)


def _load(ctx: Ctx) -> Any:
    return ctx.store().read().cache


# --- list ---------------------------------------------------------------------


@click.command("list")
@click.option("--sport", help="Only this sport, or family (running includes trail and treadmill running).")
@click.option("--since", type=DATE, help="Only from this local day on (YYYY-MM-DD).")
@click.option("--until", type=DATE, help="Only up to this local day, inclusive (YYYY-MM-DD).")
@click.option("--source", help="Only activities holding a record of this source (garmin, strava, fit, ...).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most N activities (newest first).")
@common_options
def list_(
    ctx: Ctx, sport: str | None, since: datetime | None, until: datetime | None, source: str | None, limit: int | None
) -> None:
    """List activities, newest first: short id, local start, sport, name, km, time, HR, sources.

    The short id (8 hex digits, longer only where two would clash) is accepted
    wherever a command takes an activity ID, as are full ids, aliases and
    source:source_id keys.

    Examples:

    \b
      healthcache list --limit 5
      healthcache list --sport running --since 2024-05-01
      healthcache list --source strava --json
    """
    from healthcache.views import Filter, list_rows, source_code, why_none_match
    from healthcache.zone import display_zone, show_start

    where = display_zone(ctx.config().display.timezone)
    filt = Filter(sport=sport, since=_day(since), until=_day(until), source=source, zone=where)
    cache = _load(ctx)
    rows = list_rows(cache, filt, limit)

    def text() -> str:
        if not rows:
            why = why_none_match(cache.activities, filt)
            return "no activities match" + (f": {why}" if why else "")
        used = dict.fromkeys(s for r in rows for s in r.sources)
        legend = "sources: " + ", ".join(f"{source_code(s)} {s}" for s in used)
        table = _table()
        table.add_column("id", style="cyan")
        for name in ("start", "sport", "name"):
            table.add_column(name)
        for name in ("km", "time", "HR"):
            table.add_column(name, justify="right")
        table.add_column("src")
        cells = [
            (
                r.short_id,
                show_start(r.start, where),
                r.sport,
                r.name or "",
                _num(r.distance_km, 2),
                _hms(r.duration_s),
                _num(r.avg_hr),
                "".join(source_code(s) for s in r.sources),
            )
            for r in rows
        ]
        return _fitted(ctx, table, cells, flexible=3) + "\n" + legend

    ctx.emit(msgspec.to_builtins(rows), text)


# --- show ---------------------------------------------------------------------


def _cell(value: Any, stored: Any) -> str:
    if value is None:
        return "-"
    if value == stored:
        return "="
    return _plain(value)


def _plain(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}" if abs(value) < 1e6 else f"{value:.0f}"
    return str(value)


@click.command()
@click.argument("activity_id", metavar="ID", shell_complete=complete_activity)
@common_options
def show(ctx: Ctx, activity_id: str) -> None:
    """Every field of one activity, the source each comes from, each source's own values,
    the per-km HR splits, and how its records were joined.

    ID: a short id as `list` prints it, the activity id, an alias, or source:source_id.

    Examples:

    \b
      healthcache show f1a22412
      healthcache show strava:11530000003 --json
    """
    from healthcache.lookup import require
    from healthcache.views import detail
    from healthcache.zone import display_zone, show_stamp, show_start

    store = ctx.store()
    where = display_zone(store.config.display.timezone)
    cache = store.read().cache
    d = detail(cache, require(cache, activity_id), store.config.preference)

    def text() -> str:
        head = [
            f"{d.id}  (short id {d.short_id})",
            f"{show_start(d.start, where)}  {d.activity.get('sport')}  {d.activity.get('name') or ''}".rstrip(),
            "records: " + ", ".join(s.key for s in d.sources),
        ]
        if d.aliases:
            head.append("aliases: " + ", ".join(d.aliases))
        head.append(f"first seen {show_stamp(d.first_seen_at, where)}, updated {show_stamp(d.updated_at, where)}")
        for s in d.sources:
            if not s.readable:
                head.append(f"{s.key}: cannot be re-read ({s.problem})")
        fields = _table()
        fields.add_column("field", no_wrap=True)
        fields.add_column("value", overflow="fold")
        fields.add_column("from", no_wrap=True)
        for f in d.fields:
            fields.add_row(f.name, _plain(f.value), f.provider or "")
        readable = [s.source for s in d.sources if s.readable]
        own = _table()
        own.add_column("each source says", no_wrap=True)
        for source in readable:
            own.add_column(source, overflow="fold")
        for f in d.fields:
            own.add_row(f.name, *(_cell(f.sources.get(s), f.value) for s in readable))
        sport_raw = d.activity.get("sport_raw", {})
        own.add_row("sport as named", *(sport_raw.get(s, "-") for s in readable))
        parts = ["\n".join(head), _render(ctx, fields)]
        notes = [f"{f.name}: {f.note}" for f in d.fields if f.note]
        if notes:
            parts.append("\n".join(notes))
        if readable:
            parts.append(_render(ctx, own) + "\n'=' the stored value, '-' no value")
        if d.hr_splits:
            splits = _table(title="per-km heart rate", title_justify="left")
            for name in ("km", "time", "avg HR", "max HR"):
                splits.add_column(name, justify="right")
            for sp in d.hr_splits:
                splits.add_row(str(sp.km), _hms(sp.duration_s), _num(sp.avg_hr), _num(sp.max_hr))
            parts.append(_render(ctx, splits))
        else:
            parts.append("no per-km heart-rate splits")
        if len(d.joined) > 1:
            lines = ["how it was joined:", f"  {d.joined[0].key}  (the activity's first record)"]
            lines += [f"  {m.key}  {m.rule}: {m.detail}" for m in d.joined[1:]]
            parts.append("\n".join(lines))
        return "\n\n".join(parts)

    ctx.emit(msgspec.to_builtins(d), text)


# --- stats --------------------------------------------------------------------


@click.command()
@click.option(
    "--by",
    type=click.Choice(["week", "month", "year"]),
    default="week",
    show_default=True,
    help="One row per ISO week, calendar month or year, and sport.",
)
@click.option("--sport", help="Only this sport, or family (running includes trail and treadmill running).")
@click.option("--since", type=DATE, help="Only from this local day on (YYYY-MM-DD).")
@common_options
def stats(ctx: Ctx, by: str, sport: str | None, since: datetime | None) -> None:
    """Per period and sport: count, distance, moving time, elevation, mean avg HR, HR coverage.

    Weeks are ISO weeks (2024-W19); days are local days.  Moving time is elapsed
    time where a source gave none; HR coverage is the share of activities with an avg HR.

    Examples:

    \b
      healthcache stats --by month
      healthcache stats --by year --sport running --since 2020-01-01
    """
    from healthcache.views import Filter, why_none_match
    from healthcache.views import stats as compute
    from healthcache.zone import display_zone

    where = display_zone(ctx.config().display.timezone)
    cache, filt = _load(ctx), Filter(sport=sport, since=_day(since), zone=where)
    rows = compute(cache, by, filt)  # type: ignore[arg-type]

    def text() -> str:
        if not rows:
            why = why_none_match(cache.activities, filt)
            return "no activities match" + (f": {why}" if why else "")
        table = _table()
        table.add_column(by)
        table.add_column("sport")
        for name in ("n", "km", "moving", "elev m", "avg HR", "HR cov"):
            table.add_column(name, justify="right")
        cells = [
            (
                r.period,
                r.sport,
                str(r.count),
                _num(r.distance_km, 1),
                _hms(r.moving_time_s),
                _num(r.elevation_gain_m),
                _num(r.mean_avg_hr),
                f"{r.hr_coverage:.0%}",
            )
            for r in rows
        ]
        return _fitted(ctx, table, cells, flexible=1)

    ctx.emit(msgspec.to_builtins(rows), text)


# --- diff ---------------------------------------------------------------------


@click.command()
@click.argument("states", nargs=-1, metavar="[A [B]]", shell_complete=complete_state)
@common_options
def diff(ctx: Ctx, states: Sequence[str]) -> None:
    """What changed from state A to state B (default: latest -> current).

    A state is a backup (its file name, or a unique prefix of its stamp or hash),
    `latest` (the newest backup whose content differs from the current file: the
    newest backup can be the current file itself), `current`, or `baseline`
    (which records counts only, so against it only counts are compared).

    Examples:

    \b
      healthcache diff
      healthcache diff baseline current
      healthcache diff 20240519 latest
    """
    from healthcache import diff as d
    from healthcache.errors import UsageError

    if len(states) > 2:
        raise UsageError("diff takes at most two states: A [B]")
    if "" in states:  # a "$(...)" that printed nothing: not the default it would look like
        raise UsageError(
            'an empty state was given (""), as a command substitution gives when the command inside prints nothing',
            hint="A state is a backup's name or a prefix of its stamp or hash, latest, current or baseline: "
            "healthcache backups list",
        )
    a = states[0] if states else "latest"
    b = states[1] if len(states) > 1 else "current"
    result = d.diff(ctx.paths, a, b)
    ctx.emit(msgspec.to_builtins(result), lambda: _paint_diff(ctx, _local_header(ctx, d.render(result))))


def _local_header(ctx: Ctx, text: str) -> str:
    """The diff's first line (the two states: a baseline's recording time) in the display zone;
    the lines below are the data's own values, shown as stored."""
    from healthcache.zone import display_zone, localise

    head, sep, rest = text.partition("\n")
    return localise(head, display_zone(ctx.config().display.timezone)) + sep + rest


_DIFF_COLOURS = {"+ ": "green", "- ": "red", "~ ": "yellow"}


def _paint_diff(ctx: Ctx, text: str) -> str:
    """Added green, removed red, changed yellow: at a terminal only."""
    if not _colour(ctx):
        return text
    return "\n".join(
        click.style(line, fg=_DIFF_COLOURS[line[:2]]) if line[:2] in _DIFF_COLOURS else line
        for line in text.splitlines()
    )


# --- rebuild ------------------------------------------------------------------


@click.command()
@click.option("--dry-run", is_flag=True, help="Show what would change; write nothing.")
@common_options
def rebuild(ctx: Ctx, dry_run: bool) -> None:
    """Re-derive every activity from its kept raw payloads with this version's normalisers
    and merge, and save it after you type REBUILD.

    Prints the diff first.  Anything but REBUILD on standard input (or no input)
    aborts with nothing written (exit 1).  The save goes through the guard and
    backs up the current file, like every save.  Which records form one
    workout is kept; activities whose payloads cannot be re-read are kept as they are.

    Examples:

    \b
      healthcache rebuild --dry-run
      healthcache rebuild
    """
    from healthcache import diff as d
    from healthcache import rebuild as r

    def summary(plan: r.RebuildPlan) -> str:
        lines = [d.render(plan.diff), f"re-derived: {plan.rebuilt}"]
        if plan.kept:
            lines.append(f"kept as is: {len(plan.kept)}, no raw payload that can be re-read")
            lines += [f"  {k.id}: {k.reason}" for k in plan.kept[:20]]
        return "\n".join(lines)

    def confirm(plan: r.RebuildPlan) -> bool:
        to_err = ctx.as_json or ctx.quiet
        click.echo(summary(plan), err=to_err)
        click.echo("Type REBUILD to save this (anything else aborts): ", nl=False, err=True)
        answer = sys.stdin.readline() if sys.stdin is not None else ""
        click.echo("", err=True)
        return answer.strip() == "REBUILD"

    with progress_for(ctx) as tracker:
        result = r.rebuild(
            ctx.store(),
            confirm=confirm,
            dry_run=dry_run,
            lock_timeout=ctx.lock_timeout,
            on_wait=ctx.on_lock_wait,
            tracker=tracker,
        )
    plan = result.plan
    data = {
        "dry_run": dry_run,
        **plan.as_dict(),
        "changed_file": bool(result.save and result.save.changed),
        "previous_saved_as": str(result.save.backup) if result.save and result.save.backup else None,
    }

    def text() -> str:
        if result.save is None:
            tail = "dry run: nothing was written" if plan.changed else "nothing to rebuild; nothing was written"
            return summary(plan) + "\n" + tail
        n = len(plan.diff.changed)
        lines = [f"rebuilt: {n} {'activity' if n == 1 else 'activities'} changed"]
        if result.save.backup is not None:
            lines.append(f"the previous file was saved as {result.save.backup.name}")
        return "\n".join(lines)

    ctx.emit(data, text)
