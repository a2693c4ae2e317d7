"""Human renderings shared by every command that merges (sync, import, link, unlink)."""

from __future__ import annotations

from healthcache.merge import UNRESOLVED, MergeReport, ReportEntry

# Outcome -> words on the counts line, in the order shown; always shown.
COUNT_LABELS: tuple[tuple[str, str], ...] = (
    ("new", "new"),
    ("updated", "updated"),
    ("merged", "merged as duplicates"),
    ("unchanged", "unchanged"),
)
# Outcome -> words on the counts line, shown only when some record had it.
RARE_LABELS: tuple[tuple[str, str], ...] = (
    ("joined_closest", "joined the closest of several matches"),
    ("kept_apart", "added apart from activities they name"),
    ("conflict", "not stored (conflicts)"),
    ("tombstoned", "skipped (deleted)"),
)


def render_entry(entry: ReportEntry) -> str:
    """One line: outcome, record -> activity, rule, changed fields, candidates, why."""
    line = f"  {entry.outcome:<10} {entry.key}"
    if entry.activity_id and entry.activity_id != entry.key:
        line += f" -> {entry.activity_id}"
    if entry.rule:
        line += f" [{entry.rule}]"
    if entry.fields:
        line += f" fields: {', '.join(entry.fields)}"
    if entry.candidates:
        line += f"; candidates: {', '.join(entry.candidates)}"
    if entry.detail:
        line += f" ({entry.detail})"
    return line


def render_merge_report(report: MergeReport, *, verbose: bool = False) -> str:
    """The counts line; verbose adds a line per record that was not unchanged.

    Records joined to the closest of several matches, kept apart, or not stored
    (``UNRESOLVED``) are listed even when not verbose: they may ask for a
    decision (``healthcache link``/``unlink``).
    """
    counts = report.summary()
    parts = [f"{counts[outcome]} {label}" for outcome, label in COUNT_LABELS]
    parts += [f"{counts[outcome]} {label}" for outcome, label in RARE_LABELS if counts[outcome]]
    lines = [", ".join(parts)]
    if report.absorbed:
        lines.append(f"absorbed as aliases (proved the same workout): {', '.join(report.absorbed)}")
    for entry in report.entries:
        if entry.outcome in UNRESOLVED or (verbose and entry.outcome != "unchanged"):
            lines.append(render_entry(entry))
    return "\n".join(lines)
