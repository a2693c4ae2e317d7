"""``verify``: read-only checks that collect every problem instead of stopping at the first.

Plain ``verify`` uses the compiled validator (the typed decode) so a daily cron
run stays cheap; ``--strict`` adds the reference ``jsonschema`` validation of
the shipped schema.  ``--baseline`` records counts after a clean check.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import msgspec

from healthcache import backup, codec, guard
from healthcache.cacheindex import read_index
from healthcache.config import Paths
from healthcache.errors import CorruptInput
from healthcache.model.records import Cache, sort_key
from healthcache.outcome import Failure, Outcome, exit_status
from healthcache.store import Loaded, OutsideEdit, Store, outside_edit, read_baseline, what_was_lost
from healthcache.timeutil import utc_iso


@dataclass(frozen=True)
class Problem:
    kind: str  # "corrupt" | "schema" | "invariant" | "baseline" | "backup"
    subject: str
    detail: str

    def __str__(self) -> str:
        return f"[{self.kind}] {self.subject}: {self.detail}"


# What each kind of problem means for the exit status: unreadable or invalid is corrupt, below the baseline a loss.
PROBLEM_OUTCOME: dict[str, Outcome] = {
    "corrupt": Outcome.CORRUPT,
    "schema": Outcome.CORRUPT,
    "invariant": Outcome.CORRUPT,
    "backup": Outcome.CORRUPT,
    "baseline": Outcome.INTEGRITY,
    "outside": Outcome.INTEGRITY,
}


@dataclass
class VerifyReport:
    cache: Path
    problems: list[Problem] = field(default_factory=list)
    activities: int = 0
    records: int = 0
    sha256: str | None = None
    baseline: guard.Baseline | None = None
    baseline_recorded: bool = False
    backups_checked: int = 0
    strict: bool = False
    outside: OutsideEdit | None = None  # the file is not the one healthcache last saved
    replaced_unreadable: str | None = None  # verify --baseline: why the baseline it replaced could not be read

    def failures(self, hint: str | None = None) -> list[Failure]:
        """The problems as typed failures, one per outcome; ``hint`` is the next step for a corrupt cache."""
        by_outcome: dict[Outcome, list[Problem]] = {}
        for p in self.problems:
            by_outcome.setdefault(PROBLEM_OUTCOME.get(p.kind, Outcome.ERROR), []).append(p)
        out = []
        for outcome, problems in by_outcome.items():
            first = problems[0]
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            next_step = hint if outcome is Outcome.CORRUPT and self.cache_corrupt else None
            out.append(Failure(outcome, f"verify: {first}{more}", hint=next_step))
        return out

    @property
    def cache_corrupt(self) -> bool:
        """The cache file itself cannot be read (a restore is the way back)."""
        return any(p.kind == "corrupt" and p.subject == str(self.cache) for p in self.problems)

    @property
    def exit_code(self) -> int:
        return exit_status(self.failures())

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": not self.problems,
            "cache": str(self.cache),
            "sha256": self.sha256,
            "activities": self.activities,
            "records": self.records,
            "strict": self.strict,
            "baseline": None if self.baseline is None else msgspec.to_builtins(self.baseline),
            "baseline_recorded": self.baseline_recorded,
            "replaced_unreadable_baseline": self.replaced_unreadable,
            "backups_checked": self.backups_checked,
            "problems": [{"kind": p.kind, "subject": p.subject, "detail": p.detail} for p in self.problems],
            "outside": None
            if self.outside is None
            else {
                "since": self.outside.since,
                "last_saved": None if self.outside.last_saved is None else str(self.outside.last_saved),
                "lost": [{"kind": v.kind, "subject": v.subject, "detail": v.detail} for v in self.outside.lost],
            },
        }


def schema() -> dict[str, Any]:
    """The shipped JSON Schema of the cache file (the reference definition)."""
    text = resources.files("healthcache.model").joinpath("schema.json").read_text(encoding="utf-8")
    result: dict[str, Any] = json.loads(text)
    return result


def strict_validate(doc: Any) -> list[str]:
    """Validate a parsed document with the reference ``jsonschema`` implementation."""
    import jsonschema  # the slow reference validator: only for --strict and tests

    validator = jsonschema.Draft202012Validator(schema())
    return [
        f"{'/'.join(str(p) for p in err.absolute_path) or '(root)'}: {err.message}"
        for err in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
    ]


def invariants(cache: Cache) -> list[Problem]:
    """Everything the schema cannot say: unique ids, sort order, tombstones, links."""
    problems = [Problem("invariant", "ids", p) for p in codec.hard_invariants(cache)]
    previous = None
    for act in cache.activities:
        key = sort_key(act)
        if previous is not None and key < previous:
            problems.append(Problem("invariant", act.id, "activities are not sorted by (start_time, id)"))
            break
        previous = key
    live: set[str] = set()
    for act in cache.activities:
        if act.source not in act.source_ids:
            problems.append(Problem("invariant", act.id, f"preferred source {act.source!r} has no source id"))
        kms = [s.km for s in act.hr_splits or []]
        if kms != sorted(set(kms)):
            problems.append(Problem("invariant", act.id, "hr_splits are not in ascending km order"))
        live.update(act.record_keys())
    for tomb in cache.tombstones:
        if tomb.id in live:
            problems.append(Problem("invariant", tomb.id, "is both deleted (tombstone) and present"))
    return problems


def verify(store: Store, *, strict: bool = False, check_backups: bool = False) -> VerifyReport:
    with codec.gc_paused():
        return _verify(store, strict=strict, check_backups=check_backups)


def _verify(store: Store, *, strict: bool, check_backups: bool) -> VerifyReport:
    paths = store.paths
    report = VerifyReport(cache=paths.cache, strict=strict)
    try:
        data = paths.cache.read_bytes()
    except FileNotFoundError:
        data = None
    except IsADirectoryError:
        report.problems.append(Problem("corrupt", str(paths.cache), "is a folder, not a cache file"))
        return report
    cache: Cache | None = None
    index = None
    if data is not None:
        report.sha256 = hashlib.sha256(data).hexdigest()
        index = read_index(paths)
        try:
            cache = codec.decode(
                data, paths.cache, trusted=index is not None and index.sha256 == report.sha256, invariants=False
            )
        except CorruptInput as exc:
            report.problems.append(Problem("corrupt", str(paths.cache), exc.reason))
        if strict:
            try:
                doc = codec.strict_json(data, paths.cache)
            except CorruptInput:
                doc = None  # already reported above
            if doc is not None:
                report.problems.extend(Problem("schema", "jsonschema", m) for m in strict_validate(codec.migrated(doc)))
    if cache is not None:
        report.activities = len(cache.activities)
        report.records = guard.record_counts(cache)[0]
        report.problems.extend(invariants(cache))
        _check_outside(report, paths, Loaded(cache=cache, exists=True, sha256=report.sha256, index=index))
    try:
        report.baseline = read_baseline(paths)
    except CorruptInput as exc:
        report.problems.append(Problem("corrupt", str(paths.baseline), exc.reason))
    if report.baseline is not None and cache is not None:
        report.problems.extend(
            Problem("baseline", v.subject, v.detail) for v in guard.check_baseline(cache, report.baseline)
        )
    if check_backups:
        items = backup.list_backups(paths.backups, include_corrupt=True)
        report.backups_checked = len(items)
        report.problems.extend(Problem("backup", b.name, why) for b, why in backup.verify_backups(paths.backups))
    return report


def _check_outside(report: VerifyReport, paths: Paths, loaded: Loaded) -> None:
    """Compare a file healthcache did not write last with the state it last saved (its newest backup)."""
    edit = outside_edit(paths, loaded, loaded.index)
    if edit is None or not edit.changed:
        return
    report.outside = edit
    since = f" since {edit.since}" if edit.since else ""
    report.problems.extend(
        Problem("outside", v.subject, f"{what_was_lost(v)} (changed outside healthcache{since})") for v in edit.lost
    )


def record_baseline(store: Store, *, lock_timeout: float | None = 0.0, on_wait: Any = None) -> VerifyReport:
    """Check, and only if clean, record the current counts as the new baseline."""
    with store.transaction(lock_timeout=lock_timeout, on_wait=on_wait) as tx:
        report = verify(store)
        # A baseline is a promise about the future; a drop below the old one is
        # exactly what the new one must not paper over.  An old one that cannot be
        # read promises nothing: it is the one problem recording a new one mends.
        damaged = [p for p in report.problems if p.kind == "corrupt" and p.subject == str(store.paths.baseline)]
        if len(damaged) < len(report.problems):
            return report
        baseline = guard.make_baseline(tx.cache, sha256=report.sha256, recorded_at=utc_iso(store.clock()))
        tx.write_state(store.paths.baseline, baseline)
        report.problems = []
        report.baseline = baseline
        report.baseline_recorded = True
        report.replaced_unreadable = damaged[0].detail if damaged else None
        return report
