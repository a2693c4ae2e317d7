"""``log``, ``cron install|show|remove`` and ``notify --test``: parse, call the library, render."""

from __future__ import annotations

from datetime import UTC, tzinfo
from typing import Any

import click

from healthcache.cli import Ctx, common_options, group_options
from healthcache.outcome import Failure, Outcome

# --------------------------------------------------------------------------- log


def _figures(figures: dict[str, int]) -> str:
    shown = ("seen", "new", "updated", "merged", "skipped", "failed", "removed", "activities")
    return "  ".join(f"{k} {figures[k]}" for k in shown if figures.get(k))


def render_log(records: list[Any], unreadable: list[Any], where: tzinfo = UTC) -> str:
    """One block per run, newest first: when (in the display zone ``where``), command, outcome, each step,
    what was lost, who was told."""
    from healthcache.zone import localise, show_stamp

    if not records and not unreadable:
        return "no runs recorded yet (writing commands and verify record each run in tracking/history/)"
    lines: list[str] = []
    whens = [show_stamp(r.started, where, seconds=True) for r in records]
    width = max(map(len, whens), default=0)  # CET and CEST in one list: the columns stay aligned
    for r, when in zip(records, whens, strict=True):
        when = when.ljust(width)
        args = f" {' '.join(r.args)}" if r.args else ""
        lines.append(f"{when}  {r.seconds:7.2f} s  exit {r.exit_code:<3} {r.outcome:<9} {r.command}{args}")
        for s in r.steps:
            detail = localise(s.reason.splitlines()[0], where) if s.reason else _figures(s.figures)
            lines.append(f"    {s.name:<16} {s.status:<14} {detail}".rstrip())
        for e in r.errors[:3]:
            lines.append(f"    error: {localise(e.splitlines()[0], where)}")
        if r.lost_count:
            more = f" (+{r.lost_count - len(r.lost[:5])} more)" if r.lost_count > len(r.lost[:5]) else ""
            lines.append(f"    lost or at risk: {', '.join(r.lost[:5])}{more}")
        for d in r.notifications:
            state = "sent" if d.ok else f"NOT delivered: {d.error}"
            lines.append(f"    notified {d.target} ({', '.join(d.events)}): {state}")
    if unreadable:
        lines.append(f"{len(unreadable)} unreadable record(s) skipped: {', '.join(str(p) for p in unreadable)}")
    return "\n".join(lines)


@click.command()
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True, help="How many runs.")
@common_options
def log(ctx: Ctx, limit: int) -> None:
    """Show the recent runs of writing commands (and verify), newest first, from tracking/history/.

    Examples:

    \b
      healthcache log
      healthcache log --limit 5 --json
    """
    import msgspec

    from healthcache import history

    records, unreadable = history.read(ctx.paths, limit=limit)
    data = {"runs": msgspec.to_builtins(records), "unreadable": [str(p) for p in unreadable]}

    def human() -> str:
        from healthcache.zone import display_zone

        return render_log(records, unreadable, display_zone(ctx.config().display.timezone))

    ctx.emit(data, human)


# --------------------------------------------------------------------------- cron


def _render_cron(results: list[Any]) -> str:
    lines: list[str] = []
    for r in results:
        verb = {"added": "installed", "replaced": "updated", "unchanged": "already installed"}.get(r.action, r.action)
        if r.dry_run and r.action in ("added", "replaced", "removed"):
            verb = f"would be {verb}"
        lines.append(f"{r.kind}: {verb} for {r.home}")
        if r.line:
            lines.append(f"  {r.line}")
        lines += [f"  {f}" for f in r.files]
        lines += [f"  environment: {k}={v}" for k, v in r.env.items()]
        lines += [f"  removed: {x}" for x in r.removed]
        if r.next_run:
            lines.append(f"  runs daily at {r.at}; next run {r.next_run}")
        elif r.at:
            lines.append(f"  set to run daily at {r.at} once enabled")
        if r.note:
            lines.append(f"  {r.note}")
        lines += [f"  $ {c}" for c in r.commands]
    return "\n".join(lines) or "nothing is installed for this home"


@click.group(help="Install, show or remove the daily job that runs `healthcache run --quiet` for this home.")
@group_options
def cron() -> None:
    pass


@cron.command("install")
@click.option("--at", "at", default="06:15", show_default=True, metavar="HH:MM", help="Time of day (local).")
@click.option("--systemd", is_flag=True, help="A user service and timer under $XDG_CONFIG_HOME/systemd/user.")
@click.option("--dry-run", is_flag=True, help="Show what would be installed; change nothing.")
@common_options
def cron_install(ctx: Ctx, at: str, systemd: bool, dry_run: bool) -> None:
    """Install the daily job: a crontab entry (default) or a systemd user timer (--systemd). Idempotent.

    The home must be a workspace (healthcache init makes one); its path is resolved (symlinks, ..), so
    one home gets one job however it is spelled. $HEALTHCACHE_CREDENTIALS_DIR, when set, goes into the
    job, whose environment is otherwise nearly empty.

    Examples:

    \b
      healthcache cron install --at 06:15
      healthcache cron install --systemd --dry-run
      healthcache cron install --home ~/training --at 21:30
    """
    from healthcache import cron as c

    result = c.install(ctx.paths.home, at, systemd=systemd, dry_run=dry_run)
    ctx.emit(result.as_dict(), lambda: _render_cron([result]))


@cron.command("show")
@common_options
def cron_show(ctx: Ctx) -> None:
    """Show the daily job installed for this home, whether a systemd timer is enabled, and when it runs next.

    Examples:

    \b
      healthcache cron show
      healthcache cron show --json
    """
    from healthcache import cron as c

    results = c.show(ctx.paths.home)
    ctx.emit([r.as_dict() for r in results], lambda: _render_cron(results))


@cron.command("remove")
@click.option("--dry-run", is_flag=True, help="Show what would be removed; change nothing.")
@common_options
def cron_remove(ctx: Ctx, dry_run: bool) -> None:
    """Remove this home's daily job; every other crontab line stays byte-identical.

    Examples:

    \b
      healthcache cron remove --dry-run
      healthcache cron remove
    """
    from healthcache import cron as c

    results = c.remove(ctx.paths.home, dry_run=dry_run)
    ctx.emit([r.as_dict() for r in results], lambda: _render_cron(results))


# --------------------------------------------------------------------------- notify


@click.command()
@click.option("--test", "test", is_flag=True, required=True, help="Send the test message (required).")
@common_options
def notify(ctx: Ctx, test: bool) -> None:
    """Send a test notification to every [notify] URL and report each delivery.

    Examples:

    \b
      healthcache notify --test
      healthcache notify --test --json
    """
    from healthcache import notify as n

    config = ctx.config()
    if not config.notify.urls:
        ctx.fail(
            [
                Failure(
                    Outcome.ERROR,
                    "no notification URL is set",
                    hint=f'Add [notify] urls = ["mailto://you@example.com"] to {ctx.paths.config_file}',
                )
            ]
        )
        return
    sent = n.send_test(ctx.paths, config)
    ctx.deliveries = sent.deliveries
    rows = [{"target": d.target, "ok": d.ok, "error": d.error} for d in sent.deliveries]
    ctx.emit(
        {"deliveries": rows, "delivered": sum(d.ok for d in sent.deliveries), "failed": len(sent.failed)},
        lambda: "\n".join(
            f"{d.target}: {'delivered' if d.ok else 'NOT delivered: ' + str(d.error)}" for d in sent.deliveries
        ),
    )
    if sent.failed:
        ctx.fail(
            [
                Failure(
                    Outcome.ERROR,
                    f"{len(sent.failed)} of {len(sent.deliveries)} notification(s) not delivered",
                    hint="Check each URL (apprise's syntax) and that the service is reachable, then run notify --test again.",
                )
            ]
        )
