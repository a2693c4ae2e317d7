"""Commands over the store itself: verify, restore, backups, delete, status, paths."""

from __future__ import annotations

from typing import Any

import click

from healthcache.cli import Ctx, common_options, group_options, not_empty, writes_cache
from healthcache.cli.complete import complete_activity, complete_backup
from healthcache.config import RetentionPolicy


@click.command()
@click.option("--baseline", is_flag=True, help="After a clean check, record the counts no later save may go below.")
@click.option("--backups", "check_backups", is_flag=True, help="Also re-hash every backup against its name.")
@click.option("--strict", is_flag=True, help="Also validate with the reference jsonschema implementation (slow).")
@common_options
@writes_cache
def verify(ctx: Ctx, baseline: bool, check_backups: bool, strict: bool) -> None:
    """Check the cache's schema and invariants, the baseline, and (--backups) every backup.

    Exit 0 when clean, 4 when a file is corrupt, 3 when the cache is below the baseline.

    Examples:

    \b
      healthcache verify
      healthcache verify --backups --strict
      healthcache verify --baseline
    """
    from healthcache import verify as v
    from healthcache.cli.render import render_baseline
    from healthcache.restore import restore_advice

    store = ctx.store()
    if baseline:
        report = v.record_baseline(store, lock_timeout=ctx.lock_timeout, on_wait=ctx.on_lock_wait)
    else:
        report = v.verify(store, strict=strict, check_backups=check_backups)
    if baseline and check_backups and not report.problems:
        extra = v.verify(store, strict=strict, check_backups=True)
        report.problems, report.backups_checked = extra.problems, extra.backups_checked

    def text() -> str:
        lines = [f"{report.cache}: {report.activities} activities, {report.records} records"]
        if report.backups_checked:
            lines.append(f"backups checked: {report.backups_checked}")
        lines += [f"problem: {p}" for p in report.problems]
        if report.outside is not None and not report.outside.lost:
            lines.append(report.outside.describe())
        elif report.outside is not None:
            lines.append(report.outside.hint(ctx.paths.home))
        if report.replaced_unreadable is not None:
            lines.append(
                f"the previous baseline could not be read ({report.replaced_unreadable}): the new one holds the "
                "counts of now (`healthcache verify --backups` and `healthcache diff` show what the backups hold)"
            )
        if report.baseline_recorded and report.baseline is not None:
            lines.append(f"baseline recorded: {render_baseline(report.baseline)}")
        elif baseline and report.problems:
            lines.append("baseline NOT recorded: fix the problems above first")
        lines.append("OK" if not report.problems else f"{len(report.problems)} problem(s)")
        return "\n".join(lines)

    if report.problems and ctx.quiet and not ctx.as_json:
        ctx.warn(text())
    ctx.emit(report.as_dict(), text)
    ctx.fail(report.failures(hint=restore_advice(store.paths) if report.cache_corrupt else None))


@click.command()
@click.argument("backup", required=False, shell_complete=complete_backup, callback=not_empty)
@click.option("--latest", is_flag=True, help="Restore the newest readable backup that differs from the cache now.")
@click.option("--merge", is_flag=True, help="Take the union of the backup and the current file.")
@click.option("--force", is_flag=True, help="Replace even if activities present now would be dropped.")
@click.option("--dry-run", is_flag=True, help="Show what would change; write nothing.")
@common_options
def restore(ctx: Ctx, backup: str | None, latest: bool, merge: bool, force: bool, dry_run: bool) -> None:
    """Restore the cache from BACKUP (a name from `backups list`, or a path) or --latest.

    The current file is backed up first.  A restore that would drop activities
    present now is refused (exit 3) unless --merge or --force.

    Examples:

    \b
      healthcache restore --latest --dry-run
      healthcache restore 20240519 --merge
    """
    import msgspec

    from healthcache.diff import render as render_diff
    from healthcache.errors import UsageError
    from healthcache.restore import restore as do_restore

    if (backup is None) == (not latest):
        raise UsageError("name a BACKUP or pass --latest (not both)")
    result = do_restore(
        ctx.store(),
        backup,
        merge=merge,
        force=force,
        dry_run=dry_run,
        lock_timeout=ctx.lock_timeout,
        on_wait=ctx.on_lock_wait,
    )
    p = result.plan
    data: dict[str, Any] = {
        "backup": str(p.backup),
        "mode": result.mode,
        "dry_run": dry_run,
        "added": p.added,
        "dropped": p.dropped,
        "changed": p.changed,
        "violations": [str(v) for v in p.violations],
        "left_out": p.left_out,
        "diff": None if p.diff is None else msgspec.to_builtins(p.diff),
        "changed_file": bool(result.save and result.save.changed),
        "previous_saved_as": str(result.save.backup) if result.save and result.save.backup else None,
        "state": result.state_note,
    }

    def text() -> str:
        verb = "would restore" if dry_run else "restored"
        lines = [
            f"{verb} {p.backup.name} ({result.mode}): {len(p.added)} added, {len(p.dropped)} dropped, {len(p.changed)} changed"
        ]
        if p.diff is not None:  # the same diff `healthcache diff` prints
            lines.append(render_diff(p.diff))
        if p.dropped:
            lines.append("dropped: " + ", ".join(p.dropped[:20]) + (" ..." if len(p.dropped) > 20 else ""))
        if p.left_out:
            verb_left = "would be left out" if dry_run else "were left out"
            lines.append(f"records of the backup that {verb_left} (the current file keeps its decisions):")
            lines += [f"  - {why}" for why in p.left_out[:20]]
        if dry_run and p.violations and not force:
            lines.append("this restore would be refused (use --merge or --force):")
            lines += [f"  - {v}" for v in p.violations[:20]]
        if result.save and result.save.backup:
            lines.append(f"the previous file was saved as {result.save.backup.name}")
        if result.save and not result.save.changed:
            lines.append(
                "the cache already holds everything that backup does; nothing was written"
                if result.mode == "merge"
                else "the cache already equals that backup; nothing was written"
            )
        if result.state_note:
            lines.append(result.state_note)
        return "\n".join(lines)

    ctx.emit(data, text)


@click.group()
@group_options
def backups() -> None:
    """List and prune backups (one is written before every save)."""


@backups.command("list")
@common_options
def backups_list(ctx: Ctx) -> None:
    """List backups, newest first, with their size on disk and their content's size (all but the newest are compressed).

    Examples:

    \b
      healthcache backups list
      healthcache backups list --json
    """
    from healthcache.backup import describe_backups

    rows = describe_backups(ctx.paths.backups)

    def text() -> str:
        if not rows:
            return f"no backups in {ctx.paths.backups}"
        return "\n".join(
            f"{r['name']:<60} {r['size_bytes'] / 1e6:9.2f} MB"
            + (f" of {r['content_bytes'] / 1e6:.2f} MB" if r["compressed"] and r["content_bytes"] is not None else "")
            + ("  (corrupt file kept aside)" if r["corrupt"] else "")
            for r in rows
        )

    ctx.emit(rows, text)


@backups.command("prune")
@click.option("--keep-last", type=int, default=None, help="Keep the N newest backups.")
@click.option("--keep-daily", type=int, default=None, help="Keep the newest backup of each of the last N days.")
@click.option("--keep-weekly", type=int, default=None, help="Keep the newest backup of each of the last N ISO weeks.")
@click.option("--keep-monthly", type=int, default=None, help="Keep the newest backup of each of the last N months.")
@click.option("--dry-run", is_flag=True, help="Print the decision and the rule for each backup; delete nothing.")
@common_options
def backups_prune(
    ctx: Ctx,
    keep_last: int | None,
    keep_daily: int | None,
    keep_weekly: int | None,
    keep_monthly: int | None,
    dry_run: bool,
) -> None:
    """Delete backups not kept by the retention rules (borg prune semantics).

    Rules apply in order last, daily, weekly, monthly; a backup kept by an
    earlier rule does not count toward a later one; the newest is always kept.
    Defaults come from [backups] in healthcache.toml (10, 7, 4, 12).

    Examples:

    \b
      healthcache backups prune --dry-run
      healthcache backups prune --keep-last 5 --keep-daily 7
    """
    from healthcache.backup import prune
    from healthcache.lock import write_lock

    cfg = ctx.config().retention
    policy = RetentionPolicy(
        keep_last=cfg.keep_last if keep_last is None else keep_last,
        keep_daily=cfg.keep_daily if keep_daily is None else keep_daily,
        keep_weekly=cfg.keep_weekly if keep_weekly is None else keep_weekly,
        keep_monthly=cfg.keep_monthly if keep_monthly is None else keep_monthly,
    )
    paths = ctx.paths
    with write_lock(paths.lock, timeout=ctx.lock_timeout, on_wait=ctx.on_lock_wait):
        decisions, doomed = prune(paths.backups, policy, dry_run=dry_run, prove=True)
    rows = [{"name": d.item.name, "keep": d.keep, "rule": d.rule, "index": d.index} for d in decisions]

    def text() -> str:
        lines = [f"{'would prune' if dry_run and not d.keep else d.reason():<22} {d.item.name}" for d in decisions]
        lines.append(f"{'would remove' if dry_run else 'removed'} {len(doomed)} of {len(decisions)} backups")
        return "\n".join(lines)

    ctx.emit({"dry_run": dry_run, "decisions": rows, "removed": len(doomed)}, text)


@click.command()
@click.argument("activity_id", shell_complete=complete_activity)
@click.option("--reason", required=True, help="Why; kept in the tombstone.")
@click.option("--dry-run", is_flag=True, help="Show what would be deleted; write nothing.")
@common_options
@writes_cache
def delete(ctx: Ctx, activity_id: str, reason: str, dry_run: bool) -> None:
    """Delete one activity explicitly; a tombstone keeps its ids so sync never brings it back.

    Examples:

    \b
      healthcache delete f1a22412 --reason 'recorded twice' --dry-run
    """
    from healthcache.delete import delete_activity

    act, saved = delete_activity(
        ctx.store(),
        activity_id,
        reason=reason,
        dry_run=dry_run,
        lock_timeout=ctx.lock_timeout,
        on_wait=ctx.on_lock_wait,
    )
    data = {
        "id": act.id,
        "start_time": act.start_time,
        "sport": act.sport,
        "dry_run": dry_run,
        "backup": str(saved.backup) if saved and saved.backup else None,
    }
    ctx.emit(data, f"{'would delete' if dry_run else 'deleted'} {act.id} ({act.sport}, {act.start_time})")


@click.command()
@common_options
def status(ctx: Ctx) -> None:
    """Summarise the cache, its sources, backups and baseline.

    Examples:

    \b
      healthcache status
      healthcache status --json
    """
    from healthcache.cli.render import render_states
    from healthcache.status import status as get_status
    from healthcache.zone import display_zone, localise, show_stamp

    store = ctx.store()
    data = get_status(store)
    where = display_zone(store.config.display.timezone)

    def text() -> str:
        lines = [f"cache: {data['cache']}"]
        if not data["exists"]:
            lines.append("  (no cache yet: run `healthcache import` or `healthcache sync`)")
        else:
            lines.append(
                f"  {data['activities']} activities, {data['live_records']} live records, {data['size_bytes'] / 1e6:.2f} MB, updated {show_stamp(data['updated_at'], where)}"
            )
            lines.append(
                "  per source: " + (", ".join(f"{s} {n}" for s, n in data["live_per_source"].items()) or "none")
            )
            tombs = data["tombstones"]
            lines.append(f"  tombstones: {tombs['count']} (deleted records kept out: {tombs['records']})")
            lines += [f"    {show_stamp(t['deleted_at'], where)}  {t['id']}  {t['reason']}" for t in tombs["newest"]]
        lines.append(
            f"backups: {data['backups']['count']}"
            + (f", newest {data['backups']['newest']}" if data["backups"]["newest"] else "")
        )
        base = data["baseline"]
        lines.append(
            "baseline: "
            + (
                f"{base['records']} records, recorded {show_stamp(base['recorded_at'], where)}"
                if base
                else "none (record one with `healthcache verify --baseline`)"
            )
        )
        lines += [localise(line, where) for line in render_states(data["sources"], verbose=ctx.verbose)]
        for name, nxt in data["next_sync"].items():
            when = "at the next run" if nxt["due"] else (f"after {nxt['at']}" if nxt["at"] else "not scheduled")
            lines.append(localise(f"next sync {name}: {when} ({nxt['reason']})", where))
        fails = data["import_failures"]
        if fails:
            lines.append(f"files that failed to import ({len(fails)}; the next import tries them again):")
            lines += [f"  {f['path']}: {f['reason']}" for f in fails[:20]]
            if len(fails) > 20:
                lines.append(f"  ... and {len(fails) - 20} more (see --json)")
        return "\n".join(lines)

    ctx.emit(data, text)


@click.command()
@common_options
def paths(ctx: Ctx) -> None:
    """Print every resolved path of the workspace.

    Examples:

    \b
      healthcache paths
      healthcache paths --home ~/training
    """
    data = ctx.paths.as_dict()
    ctx.emit(data, "\n".join(f"{k:<11} {v}" for k, v in data.items()))
