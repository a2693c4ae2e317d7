"""``healthcache import PATH... [--full] [--dry-run]``: files, folders and account exports."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import click

from healthcache.cli import Ctx, common_options, refresh_mirrors, writes_cache
from healthcache.cli.render import outcome_words, plural, render_merge_report
from healthcache.outcome import Failure, Outcome

MAX_LISTED = 5  # without -v, a longer list (warnings) is a count and a hint


def _line(f: Any, name: Callable[[str], str]) -> str:
    return f"  {name(f.path)}: {f.reason}" if f.reason else f"  {name(f.path)}"


def _summary(merge: Any) -> dict[str, int]:
    return merge.summary() if merge is not None else {}


def headline(report: Any) -> str:
    """The one line first: what happened to the cache."""
    c = report.counts()
    saved = report.save is not None and report.save.changed
    failed = f"{plural(c['failed'] + c['members_failed'], 'file')} failed (listed below)"
    if report.dry_run:
        end = "dry run: nothing was written"
    elif saved:
        end = "saved"
    elif report.manifests_written:
        end = "no activity changed; the import manifests were updated"
    else:
        end = "nothing was written"
    if not c["distinct"]:
        return f"nothing imported; {failed}; {end}" if report.failures else f"nothing new: {end}"
    verb = "would import" if report.dry_run else "imported" if saved else "read"
    members = f" ({plural(c['members_imported'], 'archive member')})" if c["members_imported"] else ""
    files = plural(c["imported"], "file")
    head = f"{verb} {plural(c['distinct'], 'record')} from {files}{members}: "
    head += ", ".join(outcome_words(_summary(report.merge))) or "nothing to merge"
    return head + (f"; {failed}" if report.failures else "") + f"; {end}"


def _tally(c: dict[str, int], prefix: str, *, verbose: bool) -> str:
    """``N seen: imported, skipped, unchanged, failed`` (they add up to N)."""
    g = {s: c[prefix + s] for s in ("imported", "skipped", "unchanged", "failed")}
    skipped = f"{g['skipped']} skipped" + (" (-v lists them)" if g["skipped"] and not verbose else "")
    unchanged = f"{g['unchanged']} unchanged"
    if not prefix and c["unopened"]:
        unchanged += " and not opened" if c["unopened"] == g["unchanged"] else f" ({c['unopened']} not opened)"
    return f"{c[prefix + 'seen']} seen: {g['imported']} imported, {skipped}, {unchanged}, {g['failed']} failed"


def _records(c: dict[str, int], merge: Any) -> str:
    """``records read`` = read twice + distinct; distinct = the merge's outcomes, in words."""
    out = f"records: {c['records']} read"
    if c["read_twice"]:
        out += (
            f"; {c['read_twice']} of them a second time (the same record in two files, merged once); "
            f"{c['distinct']} distinct"
        )
    return out + ": " + ", ".join(outcome_words(_summary(merge), all_common=True))


def _timings(report: Any) -> str:
    t = report.timings
    parts = [f"scan {t.get('scan', 0):.2f} s"]
    if "reconcile" in t:
        parts.append(f"check against the cache {t['reconcile']:.2f} s")
    workers = f" in {report.jobs} worker processes" if report.jobs > 1 else ""
    parts += [f"read {t.get('read', 0):.2f} s{workers}", f"merge and save {t.get('merge_save', 0):.2f} s"]
    return "timings: " + ", ".join(parts)


def render(report: Any, given: Sequence[str] = (), *, verbose: bool = False) -> str:
    """A one-line summary, then the counts (which add up), then what failed; -v lists every file and record."""
    from healthcache.importers.report import namer

    name = namer(given)
    c = report.counts()
    out = [headline(report)]
    if report.reconcile_note:
        out.append(report.reconcile_note)
    out.append("files: " + _tally(c, "", verbose=verbose))
    if c["members_seen"]:
        out.append("archive members: " + _tally(c, "members_", verbose=verbose))
    if c["records"] or report.merge is not None:
        out.append(_records(c, report.merge))
    if report.merge is not None:  # absorbed ids and records that ask for a decision (-v: every record)
        out.extend(render_merge_report(report.merge, verbose=verbose).splitlines()[1:])
    warned = [f for f in report.files if f.warnings]
    if warned:
        out.append(f"imported with warnings ({len(warned)}):")
        shown = warned if verbose else warned[:MAX_LISTED]
        for f in shown:
            out.extend(f"  {name(f.path)}: {w}" for w in f.warnings)
        if len(shown) < len(warned):
            out.append(f"  ... and {len(warned) - len(shown)} more (-v lists them)")
    if verbose:
        listed = [f for f in report.files if f.status != "failed"]
        if listed:
            out.append("each file:")
            out.extend(f"  {f.status:<9} {_line(f, name)[2:]}" + _records_of(f) for f in listed)
        out.append(_timings(report))
    if report.failures:
        out.append(f"failed ({len(report.failures)}):")
        out.extend(_line(f, name) for f in report.failures)
    if report.save is not None and report.save.changed and report.save.backup:
        out.append(f"the previous cache was backed up to {report.save.backup}")
    return "\n".join(out)


def _records_of(f: Any) -> str:
    return f" ({plural(f.records, 'record')})" if f.records else ""


def _pool_note(ctx: Ctx, jobs: int) -> None:
    """At a terminal or in a log: the workers have started (on stderr, so stdout stays the report)."""
    if not ctx.quiet and not ctx.as_json:
        click.echo(f"decoding new files in {jobs} worker processes", err=True)


def _given(ctx: click.Context, param: click.Parameter, paths: tuple[str, ...]) -> tuple[str, ...]:
    """An empty PATH is a usage error (exit 2) before anything is opened or created: it would be the current folder."""
    from healthcache.errors import UsageError
    from healthcache.importers.walk import require_paths

    try:
        require_paths(paths)
    except UsageError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None
    return paths


@click.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(), callback=_given)
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
    from healthcache.importers.report import namer
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
    ctx.emit(report.to_dict(), lambda: render(report, paths, verbose=ctx.verbose))
    if report.failures:
        if ctx.quiet:
            for f in report.failures:
                ctx.warn(f"import failed:{_line(f, namer(paths))[1:]}")
        n, first = len(report.failures), report.failures[0]
        where = "in the report's failures" if ctx.as_json else "listed above"
        saved = report.save is not None and report.save.changed
        ctx.fail(
            [
                Failure(
                    Outcome.ERROR,
                    f"{n} file{'s' if n != 1 else ''} could not be imported ({where}; the first: {first.path}: "
                    f"{first.reason})",
                    hint=("The other files were imported and saved" if saved else "Nothing else was written")
                    + "; the next import tries the failed ones again.",
                )
            ]
        )
    if not dry_run:
        ctx.fail(refresh_mirrors(ctx))
