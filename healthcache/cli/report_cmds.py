"""``healthcache report --html FILE``: one offline HTML page of the data's health and the training."""

from __future__ import annotations

from pathlib import Path

import click

from healthcache.cli import Ctx, common_options


@click.command()
@click.option(
    "--html",
    "html_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Write the report to FILE: one self-contained page that opens offline (nothing is fetched).",
)
@click.option(
    "--backup-samples",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Read at most N backups, spread over the history, for the records-over-time chart (default 12).",
)
@common_options
def report(ctx: Ctx, html_path: Path, backup_samples: int | None) -> None:
    """Write an HTML report: verify status, baseline, records over time, HR coverage,
    the last run of each step, backups, anything lost; weekly and monthly distance,
    the heart-rate trend and HR drift on long runs.

    Needs the optional plotting libraries: pip install 'healthcache[report]'.
    The workspace is only read; the page holds personal data (it is created 0600).

    Examples:

    \b
      healthcache report --html report.html
      healthcache report --html ~/report.html --backup-samples 30
    """
    from healthcache.report import BACKUP_SAMPLES, write_report

    result = write_report(
        ctx.store(), html_path, backup_samples=backup_samples if backup_samples is not None else BACKUP_SAMPLES
    )

    def text() -> str:
        lines = [
            f"report written to {result.path} ({result.bytes / 1000:.0f} kB, {result.activities} activities, "
            f"{len(result.charts)} charts)"
        ]
        if result.empty_charts:
            lines.append("no data yet for: " + ", ".join(result.empty_charts))
        if not result.verify_ok:
            lines.append("verify found problems: see the report's Data health section (or run healthcache verify)")
        if result.lost:
            lines.append(f"{result.lost} record(s) from a backup are missing now: see the report")
        return "\n".join(lines)

    ctx.emit(result.as_dict(), text)
