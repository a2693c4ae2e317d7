"""``run``, the daily job: parse, call ``daily.run_daily``, render.

A module of its own: the command cron runs every day loads only its own
options, not those of ``log``, ``cron`` and ``notify`` (about 2 ms of click
objects on a day with nothing new).
"""

from __future__ import annotations

from typing import Any

import click

from healthcache.cli import Ctx, common_options, writes_cache


def render_run(result: Any) -> str:
    """One line per step: status, seconds, figures, or why it was skipped or failed; then the summary."""
    from healthcache.daily import FIGURES, summary

    lines: list[str] = []
    for s in result.steps:
        name = s.name.ljust(16)
        head = f"{name} {s.status:<8} {s.seconds:6.2f} s"
        counts = "  ".join(f"{k} {getattr(s, k)}" for k in FIGURES)
        if s.status == "skipped":
            lines.append(f"{name} {s.status:<8} {'':>8}  {s.reason}")
        elif s.reason and s.status != "ok":
            lines.append(f"{head}  {s.reason}")
        else:
            lines.append(f"{head}  {counts}" + (f"  ({s.reason})" if s.reason else ""))
    lines.append(summary(result))
    return "\n".join(lines)


@click.command("run")
@click.option("--dry-run", is_flag=True, help="Sync and import as a preview, verify; write nothing at all.")
@click.option("--force", is_flag=True, help="Sync each source even if the smart skip would wait (not a rate limit).")
@common_options
@writes_cache
def run(ctx: Ctx, dry_run: bool, force: bool) -> None:
    """Run the daily job: sync, import the watched paths, backfill-hr, verify, export.

    Only the steps that are configured run (a source with a saved login,
    [import] paths, [export] targets; [run] steps may narrow them); the report
    gives each step's status, seconds and figures, or why it was skipped or
    failed.  One failing step never stops the others; the exit status is the
    worst outcome (corrupt 4 > integrity 3 > lock 75 > error 1).  A run with
    nothing new reads no cache and writes nothing but its history record.

    Examples:

    \b
      healthcache run
      healthcache run --quiet
      healthcache run --dry-run --json
    """
    from healthcache.cli import quiet_client_logs
    from healthcache.daily import DailyOptions, run_daily

    options = DailyOptions(dry_run=dry_run, force=force)
    result = run_daily(
        ctx.paths,
        ctx.config(),
        ctx.store,  # made when a step first needs it: a day with nothing new loads no store
        options,
        lock_timeout=ctx.lock_timeout,
        on_wait=ctx.on_lock_wait,
        before_sync=quiet_client_logs,
    )

    def human() -> str:  # the zone is looked up only for a person reading (not under --quiet or --json)
        from healthcache.zone import display_zone, localise

        return localise(render_run(result), display_zone(ctx.config().display.timezone))

    ctx.emit(result.as_dict(), human)
    if ctx.quiet:
        for step in result.steps:
            for problem in step.errors:
                ctx.warn(f"warning: {step.name}: {problem}")
    ctx.fail(result.failures())
