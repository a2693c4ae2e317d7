"""``healthcache import PATH... [--full] [--dry-run]``: files, folders and account exports."""

from __future__ import annotations

from collections import Counter
from typing import Any

import click

from healthcache.cli import Ctx, common_options, refresh_mirrors, writes_cache
from healthcache.cli.render import render_merge_report
from healthcache.outcome import Failure, Outcome

MAX_LISTED = 20


def _line(f: Any) -> str:
    return f"  {f.path}: {f.reason}" if f.reason else f"  {f.path}"


def render(report: Any) -> str:
    c = report.counts()
    t = report.timings
    out = [
        f"scan: {c['seen']} file(s) in {t.get('scan', 0):.2f} s; "
        f"{c['unopened']} unchanged and not opened, {c['opened']} read in {t.get('read', 0):.2f} s"
    ]
    if report.reconcile_note:
        out.append(report.reconcile_note)
    members = {s: c[f"members_{s}"] for s in ("imported", "skipped", "unchanged", "failed")}
    out.append(
        f"files: {c['imported']} imported, {c['skipped']} skipped, {c['unchanged']} unchanged, {c['failed']} failed; "
        f"{c['records']} activities read"
    )
    if any(members.values()):
        out.append("archive members: " + ", ".join(f"{n} {s}" for s, n in members.items()))
    warned = [f for f in report.files if f.warnings]
    if warned:
        out.append(f"imported with warnings ({len(warned)}):")
        for f in warned[:MAX_LISTED]:
            out.extend(f"  {f.path}: {w}" for w in f.warnings)
        if len(warned) > MAX_LISTED:
            out.append(f"  ... and {len(warned) - MAX_LISTED} more (see --json)")
    skipped = [f for f in report.files if f.status == "skipped"]
    if skipped:
        reasons = Counter(f.reason for f in skipped)
        out.append(f"skipped ({len(skipped)}):")
        if len(skipped) <= MAX_LISTED:
            out.extend(_line(f) for f in skipped)
        else:
            out.extend(f"  {n} x {r}" for r, n in reasons.most_common(MAX_LISTED))
    if report.failures:
        out.append(f"failed ({len(report.failures)}):")
        out.extend(_line(f) for f in report.failures)
    if report.merge is not None:
        out.append(f"merge ({t.get('merge_save', 0):.2f} s): " + render_merge_report(report.merge))
    if report.dry_run:
        out.append("dry run: nothing was written")
    elif report.save is not None and report.save.changed:
        out.append(f"saved; previous cache backed up to {report.save.backup}" if report.save.backup else "saved")
    elif report.manifests_written:
        out.append("no activity changed; the import manifests were updated")
    else:
        out.append("nothing was written" if report.failures else "nothing new: nothing was written")
    return "\n".join(out)


def _pool_note(ctx: Ctx, jobs: int) -> None:
    """At a terminal or in a log: the workers have started (on stderr, so stdout stays the report)."""
    if not ctx.quiet and not ctx.as_json:
        click.echo(f"decoding new files in {jobs} worker processes", err=True)


@click.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--full", is_flag=True, help="Read every file again, even those the manifests say are imported.")
@click.option("--dry-run", is_flag=True, help="Read and merge in memory, report, and write nothing at all.")
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    help="Processes decoding new files (default: the usable cores; 1: no worker processes).",
)
@common_options
@writes_cache
def import_(paths: tuple[str, ...], full: bool, dry_run: bool, jobs: int | None, ctx: Ctx) -> None:
    """Import activity files, account exports, Polar sessions and Apple Health exports.

    Each PATH is a file, a folder (searched recursively; hidden entries are
    left out) or a zip: FIT, GPX, TCX, a Garmin or Strava account export,
    Polar Flow training-session JSON, Apple Health export.zip or export.xml.
    Types are detected from the content.  A file whose size and modification
    time match the last import is skipped without being opened.  Files that
    cannot be read are listed with the reason; the rest is imported and the
    exit status is 1.

    Examples:

    \b
      healthcache import ~/Downloads/export.zip
      healthcache import activities/ ride.fit --dry-run
    """
    from healthcache.cli.progress import TerminalProgress, progress_for
    from healthcache.importers.run import run_import

    store = ctx.store()
    with progress_for(ctx) as tracker:
        report = run_import(
            store,
            list(paths),
            full=full,
            dry_run=dry_run,
            lock_timeout=ctx.lock_timeout,
            on_wait=ctx.on_lock_wait,
            progress=tracker.read_bytes if isinstance(tracker, TerminalProgress) else None,
            jobs=jobs,
            on_pool=lambda n: _pool_note(ctx, n),
            tracker=tracker,
        )
    ctx.emit(report.to_dict(), lambda: render(report))
    if report.failures:
        if ctx.quiet:
            for f in report.failures:
                ctx.warn(f"import failed:{_line(f)[1:]}")
        n = len(report.failures)
        ctx.fail([Failure(Outcome.ERROR, f"{n} file{'s' if n != 1 else ''} could not be imported (listed above)")])
    if not dry_run:
        ctx.fail(refresh_mirrors(ctx))
