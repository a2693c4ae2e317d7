"""``healthcache export sqlite PATH`` and ``healthcache export postgres [URL]``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from healthcache.cli import Ctx, common_options, group_options, not_empty
from healthcache.export.core import DEFAULT_BATCH_SIZE, ExportReport, Target
from healthcache.export.core import export as run_export


@click.group(
    "export",
    help="Mirror the cache into SQLite or PostgreSQL, sending only what changed.\n\n"
    "The cache stays the single source of truth; the mirror is derived from it. "
    "Each export is one transaction: readers see the old mirror or the new one, never half.",
)
@group_options
def export() -> None:
    pass


def _export_options(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option("--dry-run", is_flag=True, help="Report what would be sent; write nothing.")(func)
    func = click.option(
        "--batch-size",
        type=click.IntRange(min=1),
        default=DEFAULT_BATCH_SIZE,
        show_default=True,
        metavar="N",
        help="Activities per batch (each batch is a few statements, not a round trip per row).",
    )(func)
    func = click.option(
        "--delete-orphans",
        is_flag=True,
        help="Delete rows of activities no longer in the cache (deleted, or absorbed by a merge; "
        "an absorbed id stays findable in the aliases table).",
    )(func)
    func = click.option(
        "--full-refresh",
        is_flag=True,
        help="Rebuild every table from the cache in one transaction (readers never see empty tables).",
    )(func)
    return func


def _run(ctx: Ctx, target: Target, *, full_refresh: bool, delete_orphans: bool, batch_size: int, dry_run: bool) -> None:
    from healthcache.cli.progress import progress_for

    store = ctx.store()
    mirror = target.open()

    def on_wait(message: str) -> None:
        if not ctx.quiet:
            ctx.warn(message)

    with progress_for(ctx) as tracker:
        report: ExportReport = run_export(
            mirror,
            store,
            full_refresh=full_refresh,
            delete_orphans=delete_orphans,
            batch_size=batch_size,
            dry_run=dry_run,
            tracker=tracker,
            on_lock_wait=on_wait,
        )
    ctx.emit(report.to_json(), report.human)


@export.command("sqlite")
@click.argument("path", type=click.Path(dir_okay=False), callback=not_empty)
@_export_options
@common_options
def sqlite(path: str, ctx: Ctx, **options: Any) -> None:
    """Export to a SQLite file.

    PATH is created when missing; it is a plain SQLite database (WAL mode) that
    Datasette, sqlite-utils and any SQLite client open as it is.

    Examples:

    \b
      healthcache export sqlite training.db
      healthcache export sqlite training.db --full-refresh
    """
    _run(ctx, Target("sqlite", path), **options)


@export.command("postgres")
@click.argument("url", required=False, metavar="[URL]")
@_export_options
@common_options
def postgres(url: str | None, ctx: Ctx, **options: Any) -> None:
    """Export to PostgreSQL.

    URL is a postgresql:// URL or a libpq key=value string; without it, [export]
    postgres_url in healthcache.toml or $HEALTHCACHE_PG_URL, else libpq's own PG*
    variables.  Prefer ~/.pgpass or PGPASSWORD to a password in the URL; it is
    never printed either way.

    Examples:

    \b
      healthcache export postgres postgresql://me@localhost/training
      healthcache export postgres --dry-run
    """
    if url is None:
        url = ctx.config().export.postgres_url or ""
    _run(ctx, Target("postgres", url), **options)
