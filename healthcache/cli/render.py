"""Human renderings shared by every command that merges (sync, import, link, unlink)."""

from __future__ import annotations

from typing import Any

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


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 file``, ``2 files``; ``many`` where adding an s is wrong (``activities``)."""
    return f"{n} {word if n == 1 else many or word + 's'}"


def render_baseline(baseline: Any) -> str:
    """A baseline's counts in words (never the dict ``per_source`` is)."""
    per = ", ".join(f"{source} {n}" for source, n in sorted(baseline.per_source.items())) or "no source"
    return (
        f"{plural(baseline.records, 'record')} in {plural(baseline.activities, 'activity', 'activities')} "
        f"({per}); {baseline.with_hr} with HR, {baseline.with_hr_splits} with HR splits"
    )


IMPORT_PREFIX = "import_"
# A sync source's state (``sources.sync_state.SourceState``, summarised by ``status``): the words for each key.
_SYNC_WORDS = {
    "last_success": "last synced {}",
    "last_attempt": "last tried {}",
    "last_error": "last error: {}",
    "rate_limited_until": "rate limited until {}",
}
_VERBOSE_ONLY = {"lineage", "window_start", "window_end", "seen", "rate_limit_reason"}


def render_states(states: dict[str, dict[str, Any]], *, verbose: bool = False) -> list[str]:
    """``status``'s lines for the state files: per import kind how many files are known; per sync
    source when it last worked and what went wrong.  Bookkeeping (the cache lineage a state was
    checked against, remembered payloads) only with -v: a person never needs it to act."""
    imports = {n.removeprefix(IMPORT_PREFIX): s for n, s in states.items() if n.startswith(IMPORT_PREFIX)}
    lines: list[str] = []
    if imports:
        parts = []
        for kind, st in imports.items():
            part = f"{kind} {plural(int(st.get('files') or 0), 'file')}"
            if st.get("sessions"):
                part += f" ({plural(int(st['sessions']), 'session')})"
            parts.append(part + (" (unreadable state file)" if "error" in st else ""))
        lines.append("imported files known: " + ", ".join(parts))
        if verbose:
            lines += [f"  import {kind}: cache lineage {st.get('lineage') or '-'}" for kind, st in imports.items()]
    for name, st in states.items():
        if name.startswith(IMPORT_PREFIX):
            continue
        lines.append(f"{name}: " + "; ".join(_state_words(st, verbose=verbose)))
    return lines


def _state_words(st: dict[str, Any], *, verbose: bool) -> list[str]:
    if "error" in st:
        return [str(st["error"])]
    same = st.get("last_attempt") == st.get("last_success")  # the last try worked: one stamp says it
    why = f" ({st['rate_limit_reason']})" if st.get("rate_limit_reason") else ""
    words = [
        _SYNC_WORDS[k].format(v) + (why if k == "rate_limited_until" else "")
        for k, v in st.items()
        if k in _SYNC_WORDS and v is not None and not (k == "last_attempt" and same)
    ]
    if "no_hr" in st:  # backfill-hr's memory
        words.append(f"{plural(int(st['no_hr']), 'activity', 'activities')} known to have no HR samples")
    if verbose:
        if st.get("window_start") or st.get("window_end"):
            words.append(f"last window {st.get('window_start') or '?'} to {st.get('window_end') or '?'}")
        if "seen" in st:
            words.append(f"{plural(int(st['seen']), 'payload')} remembered")
        if st.get("lineage"):
            words.append(f"cache lineage {st['lineage']}")
    known = set(_SYNC_WORDS) | _VERBOSE_ONLY | {"no_hr"}
    words += [f"{k.replace('_', ' ')} {v}" for k, v in st.items() if k not in known and v is not None]
    return words or ["nothing recorded yet"]


def outcome_words(counts: dict[str, int], *, all_common: bool = False) -> list[str]:
    """What a merge did, in words: new activities, updated, merged, unchanged (all four, or only those
    that happened), then the rare outcomes that happened."""
    words = {o: f"{counts.get(o, 0)} {label}" for o, label in COUNT_LABELS}
    words["new"] = plural(counts.get("new", 0), "new activity", "new activities")
    shown = [words[o] for o, _ in COUNT_LABELS if all_common or counts.get(o)]
    return shown + [f"{counts[o]} {label}" for o, label in RARE_LABELS if counts.get(o)]


def sync_headline(result: Any) -> str:
    """``sync``'s first line: how many sources were asked, what the merge did, whether the cache was saved."""
    steps = result.steps
    asked = [s for s in steps if s.status not in ("skipped", "not_configured")]
    counts = {o: sum(getattr(s, o) for s in asked) for o, _ in (*COUNT_LABELS, *RARE_LABELS)}
    head = f"{'would sync' if result.dry_run else 'synced'} {len(asked) - len(result.failed)} of {len(steps)} sources"
    by = [
        (w, sum(1 for s in steps if s.status == st))
        for w, st in (("skipped", "skipped"), ("not set up", "not_configured"))
    ]
    aside = [f"{n} {what}" for what, n in (*by, ("failed", len(result.failed))) if n]
    head += f" ({', '.join(aside)})" if aside else ""
    head += ": " + (", ".join(outcome_words(counts)) or "nothing new")
    if result.dry_run:
        return head + "; dry run: nothing was written"
    return head + ("; saved" if any(s.saved for s in steps) else "; nothing was written")
