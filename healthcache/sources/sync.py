"""``sync``: fetch each API source's window, normalise, merge and save, one source at a time.

Per source: a smart skip (``sync_state.decide_sync``: synced recently enough
for how active the athlete is, or rate limited) that sends no request and
imports no client; a fetch that keeps what it got when it
fails half-way; records normalised one by one (a bad payload is reported and
skipped, never half-imported); then either

- nothing new (every payload known and unchanged since it was last merged, and
  the cache still holds its record): only the state file is written, under the
  lock, and the cache is not touched.  The state is a hint: it is believed
  without parsing the cache only when it was written under the cache's current
  lineage (``cacheindex.trusted_lineage``); otherwise (after ``restore --force``,
  an edit outside healthcache) each known payload is checked against the
  records the cache holds (``freshness.decide``), and what is missing is
  merged again; or
- ``ingest``: merge, guard, back up and save, with the state written in the
  same lock after the save.

One source failing never stops the next; the result names every failure.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import msgspec

from healthcache import progress as prog
from healthcache.config import Config, Paths
from healthcache.errors import (
    EXIT_ERROR,
    AuthRequired,
    HealthcacheError,
    SourceError,
)
from healthcache.freshness import decide, held_keys, needs_check
from healthcache.model.records import SourceRecord
from healthcache.outcome import Failure, Outcome, exit_status
from healthcache.sources import registry
from healthcache.sources.http import RateLimited
from healthcache.sources.protocol import Session, get_source
from healthcache.sources.report import StepReport, describe_failure
from healthcache.sources.sync_state import (
    SEEN_KEEP_DAYS,
    Seen,
    SkipRule,
    SourceState,
    decide_sync,
    load_state,
    payload_digest,
    update_states_locked,
    write_states,
)
from healthcache.timeutil import now_utc, utc_iso

if TYPE_CHECKING:  # the skip path must stay cheap: merge, ingest and the store load on use
    from healthcache.merge import ReportEntry
    from healthcache.store import SaveResult, Store, Transaction


Opener = Callable[[str], Session]


def open_session(source: str, paths: Paths, config: Config, clock: Callable[[], datetime] = now_utc) -> Session:
    """Resume the saved login of ``source`` (this is where a client library is imported)."""
    return get_source(source).resume(paths, config, clock=clock)


@dataclass(frozen=True)
class SyncOptions:
    days: int = 7
    sources: tuple[str, ...] = field(default_factory=registry.names)
    explicit: bool = False  # sources named by the user: a missing login is then an error
    dry_run: bool = False
    force: bool = False


@dataclass
class SyncResult:
    steps: list[StepReport] = field(default_factory=list)
    dry_run: bool = False
    exit_codes: dict[str, int] = field(default_factory=dict)

    @property
    def failed(self) -> list[StepReport]:
        return [s for s in self.steps if s.failed]

    def failures(self) -> list[Failure]:
        """What went wrong, typed: each failed source, and no source set up at all
        (a cron job must never succeed silently)."""
        out = [
            Failure(
                Outcome.of_code(self.exit_codes.get(s.source, EXIT_ERROR)),
                f"sync failed for {s.source}: {s.failure_message()}",
                hint=s.hint,
            )
            for s in self.failed
        ]
        if self.steps and all(s.status == "not_configured" for s in self.steps):
            out.append(
                Failure(
                    Outcome.ERROR,
                    "no source is set up: nothing was synced",
                    hint="Run `healthcache auth garmin` or `healthcache auth strava`, then sync again.",
                )
            )
        return out

    @property
    def exit_code(self) -> int:
        """The status ``outcome.exit_status`` gives these failures (0 when none)."""
        return exit_status(self.failures())

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "ok": not self.failures(),
            "failed": [s.source for s in self.failed],
            "steps": [s.as_dict() for s in self.steps],
        }


def sync(
    store: Store,
    options: SyncOptions,
    *,
    clock: Callable[[], datetime] = now_utc,
    opener: Opener | None = None,
    lock_timeout: float | None = 0.0,
    on_wait: Callable[[str | None], None] | None = None,
    tracker: prog.Progress = prog.SILENT,
) -> SyncResult:
    """Sync every requested source; never raises for one source's failure.  ``tracker`` hears of
    each page a source returns (how many in all is not known in advance)."""
    result = SyncResult(dry_run=options.dry_run)
    run = _Run(store, options, clock, opener, lock_timeout, on_wait, tracker=tracker)
    planned = run.planned
    for source in options.sources:
        step, code = _sync_source(run, source)
        result.steps.append(step)
        if code:
            result.exit_codes[source] = code
    if options.dry_run and any(planned.values()):
        from healthcache.ingest import ingest

        everything = [r for records in planned.values() for r in records]
        preview = ingest(store, everything, dry_run=True, lock_timeout=lock_timeout, on_wait=on_wait)
        for step in result.steps:
            mine = [e for e in preview.report.entries if e.key.startswith(f"{step.source}:")]
            _record_result(step, mine, None, planned.get(step.source, []))
    return result


@dataclass
class _Run:
    """What every source's step of one ``sync`` shares."""

    store: Store
    options: SyncOptions
    clock: Callable[[], datetime]
    opener: Opener | None
    lock_timeout: float | None
    on_wait: Callable[[str | None], None] | None
    planned: dict[str, list[SourceRecord]] = field(default_factory=dict)  # dry run: merged together at the end
    tracker: prog.Progress = prog.SILENT


@dataclass
class _Fetched:
    raws: list[Any] = field(default_factory=list)
    error: HealthcacheError | None = None
    requests: int = 0


def _fetch(
    source: str,
    opener: Opener,
    start: datetime,
    end: datetime,
    report: StepReport,
    tracker: prog.Progress = prog.SILENT,
) -> tuple[_Fetched, Session | None]:
    fetched = _Fetched()
    session: Session | None = None
    try:
        session = opener(source)
        with prog.step(tracker, None, f"{source}: fetching pages"):
            for n, page in enumerate(session.pages(start, end), 1):
                fetched.raws.extend(page)
                tracker.advance(1, f"page {n}, {len(fetched.raws)} activities so far")
    except HealthcacheError as exc:
        fetched.error = exc
    except Exception as exc:  # a library bug must not take the other sources down
        fetched.error = SourceError(f"unexpected failure talking to {source}: {type(exc).__name__}: {exc}")
    finally:
        if session is not None:
            fetched.requests = session.requests
            try:
                session.close()  # keep renewed tokens even when the fetch failed
            except Exception as exc:
                report.errors.append(f"{source}: could not save the renewed login: {exc}")
    return fetched, session


def _normalise(source: str, raws: Sequence[Any], report: StepReport) -> tuple[list[SourceRecord], dict[str, Seen]]:
    """Records and their payload digests; bad payloads are counted and named, not fatal."""
    src = get_source(source)
    by_id: dict[str, SourceRecord] = {}
    digests: dict[str, Seen] = {}
    for raw in raws:
        try:
            record = src.normalise(raw)
        except (KeyError, TypeError, ValueError) as exc:
            report.skipped += 1
            ident = raw.get(src.id_key, "?") if isinstance(raw, dict) else "?"
            report.errors.append(f"{source}:{ident}: unusable payload: {exc}")
            continue
        by_id[record.source_id] = record  # a page overlap repeats a record: keep the last
        digests[record.source_id] = Seen(payload_digest(raw), record.start_time)
    return list(by_id.values()), digests


def _record_result(
    report: StepReport, entries: Sequence[ReportEntry], save: SaveResult | None, records: Sequence[SourceRecord]
) -> None:
    from healthcache.merge import UNRESOLVED  # loaded by the merge already

    counts = Counter(e.outcome for e in entries)
    report.new, report.updated, report.merged = counts["new"], counts["updated"], counts["merged"]
    report.unchanged, report.tombstoned = counts["unchanged"], counts["tombstoned"]
    report.joined_closest, report.kept_apart = counts["joined_closest"], counts["kept_apart"]
    report.conflict = counts["conflict"]
    if save is not None:
        report.saved = save.changed
        report.backup = str(save.backup) if save.backup else None
    by_key = {r.key: r for r in records}
    for entry in entries:
        if entry.outcome in ("new", "updated", "merged", *UNRESOLVED):
            rec = by_key.get(entry.key)
            report.changes.append(
                {
                    "key": entry.key,
                    "outcome": entry.outcome,
                    "activity_id": entry.activity_id,
                    "rule": entry.rule,
                    "fields": list(entry.fields),
                    "candidates": list(entry.candidates),
                    "start_time": rec.start_time if rec else None,
                    "sport": rec.sport if rec else None,
                    "name": rec.name if rec else None,
                }
            )


def _sync_source(run: _Run, source: str) -> tuple[StepReport, int]:
    started = time.perf_counter()
    report = StepReport(source=source)
    try:
        return _run_source(run, source, report), 0
    except HealthcacheError as exc:
        report.status = "rate_limited" if isinstance(exc, RateLimited) else "failed"
        report.reason, report.hint = str(exc), exc.hint
        report.errors.append(describe_failure(source, exc))
        return report, exc.exit_code
    finally:
        report.seconds = time.perf_counter() - started


def _gate(run: _Run, source: str, now: datetime, st: SourceState, report: StepReport) -> bool:
    """Whether to ask ``source`` at all; when not, ``report`` says why (no request, no client)."""
    paths, config = run.store.paths, run.store.config
    decision = decide_sync(st, now, SkipRule.of(config.sync), force=run.options.force)
    if not decision.sync:
        report.status, report.reason = "skipped", decision.reason
        return False
    if run.opener is None and not get_source(source).is_configured(paths):
        if run.options.explicit:
            raise AuthRequired(f"no {source} login is saved", hint=f"Log in with: healthcache auth {source}")
        if st.last_success is not None:  # set up once: a login gone is a failure to tell, not a skip
            raise AuthRequired(
                f"no {source} login is saved, though {source} was synced before (last at {st.last_success}): "
                "the login was removed, or the credentials folder is not the one it was saved in",
                hint=f"Log in with: healthcache auth {source}",
            )
        report.status = "not_configured"
        report.reason = f"not set up; run healthcache auth {source} to add it"
        return False
    return True


@dataclass(frozen=True)
class _NextState:
    """How this run rewrites the source's state, given what it fetched and how that went."""

    source: str
    stamp: str  # when the run ended (last_attempt, last_success)
    start: datetime
    now: datetime
    horizon: str  # digests of activities that started before this are forgotten
    error: HealthcacheError | None
    rejected: bool
    problems: tuple[str, ...]  # the first unusable payloads, for last_error

    def __call__(
        self, current: SourceState, merged: dict[str, Seen], held: frozenset[str] | None, lineage: str | None
    ) -> SourceState:
        """The state after this run; ``held``: the cache's record keys, when known, to drop what it lacks;
        ``lineage``: the lineage the kept entries were checked against (None: keep the recorded one)."""
        seen = {
            sid: entry
            for sid, entry in current.seen.items()
            if entry.start >= self.horizon and (held is None or f"{self.source}:{sid}" in held)
        }
        seen.update(merged)
        changes: dict[str, Any] = {"last_attempt": self.stamp, "seen": seen}
        if lineage is not None:
            changes["lineage"] = lineage
        if self.error is None and not self.rejected:
            changes.update(
                last_success=self.stamp,
                last_error=None,
                window_start=utc_iso(self.start),
                window_end=utc_iso(self.now),
                rate_limited_until=None,
                rate_limit_reason=None,
            )
        else:
            problems = [describe_failure(self.source, self.error)] if self.error is not None else []
            changes["last_error"] = "; ".join([*problems, *self.problems])
        if isinstance(self.error, RateLimited):
            changes["rate_limited_until"] = utc_iso(self.error.until)
            changes["rate_limit_reason"] = self.error.message
        return msgspec.structs.replace(current, **changes)


@dataclass
class _Known:
    """Which fetched records the cache already holds unchanged, and whether the cache had to be read to say."""

    all_known: bool
    held: frozenset[str] | None = None  # the cache's record keys, when it was read
    checked_at: str | None = None  # the lineage of the cache ``held`` was read from, when it is trusted


def _known(
    run: _Run, st: SourceState, records: list[SourceRecord], digests: dict[str, Seen], report: StepReport
) -> _Known:
    """Decide, without the cache when the state can be believed, whether anything fetched is new."""
    from healthcache.cacheindex import trusted_lineage

    paths = run.store.paths
    unchanged = {r.source_id: st.seen.get(r.source_id) == digests[r.source_id] for r in records}
    trusted = trusted_lineage(paths)
    known = _Known(all_known=False)
    if any(unchanged.values()) and needs_check(st.lineage, trusted):
        # The state was not written for this cache (restored, changed outside): check it against the cache.
        known.held = held_keys(run.store.read().cache)
        known.checked_at = trusted if trusted is not None and trusted_lineage(paths) == trusted else None
    decisions = [decide(unchanged[r.source_id], [r.key], known.held) for r in records]
    known.all_known = bool(records) and not any(d.open for d in decisions)
    if known.held is not None:
        again = sum(1 for d in decisions if d.missing)
        report.notes.append(
            "the cache is not the one the sync state describes (restored or changed since): "
            f"checked {sum(unchanged.values())} known payload(s) against it, {again} to merge again"
        )
    return known


def _run_source(run: _Run, source: str, report: StepReport) -> StepReport:
    paths, config, clock, options = run.store.paths, run.store.config, run.clock, run.options
    now = clock()
    st = load_state(paths, source)
    if not _gate(run, source, now, st, report):
        return report

    start = now - timedelta(days=options.days)
    open_ = run.opener or (lambda s: open_session(s, paths, config, clock))
    fetched, _ = _fetch(source, open_, start, now, report, run.tracker)
    report.requests = fetched.requests
    records, digests = _normalise(source, fetched.raws, report)
    report.seen = len(fetched.raws)
    update = _NextState(
        source=source,
        stamp=utc_iso(clock(), micro=True),
        start=start,
        now=now,
        horizon=utc_iso(now - timedelta(days=max(options.days, SEEN_KEEP_DAYS))),
        error=fetched.error,
        rejected=report.skipped > 0,
        problems=tuple(report.errors[:3]),
    )
    known = _known(run, st, records, digests, report)
    if options.dry_run:
        run.planned[source] = records  # merged with the other sources' in one preview by ``sync``
        report.status = "dry_run"
    elif records and not known.all_known:
        _merge(run, source, records, digests, update, report)
    else:
        _bookkeeping(run, source, records, known, update, report)

    if fetched.error is not None:
        raise fetched.error
    if update.rejected:
        report.status = "failed"
        report.reason = f"{report.skipped} record(s) with unusable payloads were skipped"
    return report


def _merge(
    run: _Run,
    source: str,
    records: list[SourceRecord],
    digests: dict[str, Seen],
    update: _NextState,
    report: StepReport,
) -> None:
    """Merge, guard, back up and save; the state is written in the same lock, after the save."""
    from healthcache.ingest import ingest

    def after_save(tx: Transaction, save: SaveResult) -> None:
        # Only what the saved cache really holds counts as merged, whatever the
        # merge decided for it (a record in conflict is left out); and
        # only what it holds stays in ``seen``, now checked against this very cache.
        saved_keys = held_keys(tx.cache)
        merged = {sid: d for sid, d in digests.items() if f"{source}:{sid}" in saved_keys}
        lineage = save.lineage or tx.lineage
        write_states(tx.paths, {source: lambda cur: update(cur, merged, saved_keys, lineage)})

    result = ingest(run.store, records, lock_timeout=run.lock_timeout, on_wait=run.on_wait, after_save=after_save)
    _record_result(report, result.report.entries, result.save, records)


def _bookkeeping(
    run: _Run, source: str, records: list[SourceRecord], known: _Known, update: _NextState, report: StepReport
) -> None:
    """Nothing new (or nothing fetched): only the state file is written; the cache is not read."""
    from healthcache.cacheindex import trusted_lineage

    report.unchanged = len(records) if known.all_known else 0
    paths = run.store.paths

    def bookkeeping(cur: SourceState) -> SourceState:
        # The checked entries are blessed with the lineage only if the cache is still the one checked.
        checked = known.checked_at
        lineage = checked if checked is not None and trusted_lineage(paths) == checked else None
        return update(cur, {}, known.held, lineage)

    update_states_locked(paths, {source: bookkeeping}, lock_timeout=run.lock_timeout, on_wait=run.on_wait)
