"""``backfill-hr``: per-km heart-rate splits for activities that have none.

For each activity without ``hr_splits`` whose source payload says it has heart
rate, fetch the samples (Garmin activity details, else kilometre laps; Strava
time/distance/heartrate streams), compute the splits (``splits.per_km_splits``)
and merge them as a record re-derived from the stored payload plus the splits,
so HR is only ever added.  Saves every ``BATCH`` activities, so an interrupted
run keeps its work and the next run continues where it stopped; activities
found to have no usable samples are remembered and not asked again.  A spent
rate limit stops that source (recorded in its sync state, so ``sync`` waits
too) while the other source carries on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import msgspec

from healthcache import notices, state
from healthcache import progress as prog
from healthcache.errors import AuthRequired, HealthcacheError, SourceError
from healthcache.ingest import ingest
from healthcache.model.records import Activity, HRSplit, SourceRecord
from healthcache.sources import registry
from healthcache.sources.http import RateLimited
from healthcache.sources.protocol import Session, get_source
from healthcache.sources.sync import Opener, open_session
from healthcache.sources.sync_state import (
    BACKFILL_STATE,
    BackfillState,
    SourceState,
    load_state,
    rate_limit_reason,
    update_states_locked,
    write_states,
)
from healthcache.store import SaveResult, Store, Transaction
from healthcache.timeutil import now_utc, utc_iso

BATCH = 25
MAX_CONSECUTIVE_ERRORS = 3


@dataclass(frozen=True)
class BackfillOptions:
    days: int | None = None
    limit: int | None = None
    sources: tuple[str, ...] = field(default_factory=registry.names)


@dataclass
class BackfillReport:
    candidates: int = 0
    filled: int = 0
    no_hr: int = 0
    failed: int = 0
    not_reached: int = 0  # left for a later run (rate limit, login, errors)
    requests: int = 0
    seconds: float = 0.0
    saves: int = 0
    stopped: dict[str, str] = field(default_factory=dict)  # source -> why it stopped
    errors: list[str] = field(default_factory=list)
    exit_code: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "candidates": self.candidates,
            "filled": self.filled,
            "no_hr": self.no_hr,
            "failed": self.failed,
            "not_reached": self.not_reached,
            "requests": self.requests,
            "seconds": round(self.seconds, 3),
            "saves": self.saves,
            "stopped": dict(self.stopped),
            "errors": list(self.errors),
        }


def candidates(
    activities: list[Activity], *, since: str | None, sources: tuple[str, ...], no_hr: dict[str, str]
) -> list[tuple[Activity, str]]:
    """(activity, source to ask) for activities lacking splits, newest first.  Pure."""
    has_hr = {source: get_source(source).has_hr for source in sources}
    out: list[tuple[Activity, str]] = []
    for act in reversed(activities):
        if act.hr_splits:
            continue
        if since is not None and act.start_time < since:
            continue
        for source in sources:
            sid = act.source_ids.get(source)
            if sid is None or f"{source}:{sid}" in no_hr or not has_hr[source](act.raw.get(source)):
                continue
            out.append((act, source))
            break
    return out


def backfill_hr(
    store: Store,
    options: BackfillOptions,
    *,
    clock: Callable[[], datetime] = now_utc,
    opener: Opener | None = None,
    tracker: prog.Progress = prog.SILENT,
    lock_timeout: float | None = 0.0,
    on_wait: Callable[[str | None], None] | None = None,
) -> BackfillReport:
    """Ask the sources for the HR samples of activities without splits, saving every ``BATCH``;
    ``tracker`` hears of each activity asked (``source:id``)."""
    started = time.perf_counter()
    report = BackfillReport()
    now = clock()
    done_state, unreadable = state.load_hint(store.paths, BACKFILL_STATE, BackfillState, BackfillState())
    if unreadable is not None:  # a hint lost: what it spared is asked again, and the file is rewritten
        where = state.shown(store.paths, store.paths.state_file(BACKFILL_STATE))
        notices.notice(
            f"{where} could not be read ({unreadable}): activities it noted as having no heart rate at "
            "their source are asked again; it is rewritten now"
        )
    since = utc_iso(now - timedelta(days=options.days)) if options.days else None
    cache = store.read().cache
    todo = candidates(cache.activities, since=since, sources=options.sources, no_hr=done_state.no_hr)
    if options.limit is not None:
        todo = todo[: options.limit]
    report.candidates = len(todo)
    run = _Backfill(store, report, clock, opener, lock_timeout, on_wait, heal=unreadable is not None)
    try:
        with prog.step(tracker, len(todo), "backfilling HR splits"):
            for act, source in todo:
                run.fill(act, source)
                tracker.advance(1, f"{source}:{act.source_ids[source]}")
                if len(run.pending) >= BATCH:
                    run.flush()
        run.flush()
    finally:
        run.close()
        report.seconds = time.perf_counter() - started
    if not report.exit_code and (report.failed or report.not_reached):
        report.exit_code = 1  # something is left to do: cron should hear of it
    return report


@dataclass
class _Backfill:
    """One backfill run: the sessions it opened, what waits to be saved, what it learnt."""

    store: Store
    report: BackfillReport
    clock: Callable[[], datetime]
    opener: Opener | None
    lock_timeout: float | None
    on_wait: Callable[[str | None], None] | None
    sessions: dict[str, Session] = field(default_factory=dict)
    errors_in_row: dict[str, int] = field(default_factory=dict)
    pending: list[SourceRecord] = field(default_factory=list)
    new_no_hr: dict[str, str] = field(default_factory=dict)
    limits: dict[str, RateLimited] = field(default_factory=dict)
    heal: bool = False  # the state file could not be read: rewrite it even when nothing else is written

    def usable(self, source: str) -> bool:
        """Whether ``source`` can be asked: not stopped, not rate limited, set up, its login resumed."""
        report, paths = self.report, self.store.paths
        if source in report.stopped:
            return False
        if source in self.sessions:
            return True
        why = rate_limit_reason(load_state(paths, source), self.clock())
        if why is None and self.opener is None and not get_source(source).is_configured(paths):
            why = f"not set up; run healthcache auth {source}"
        if why is None:
            try:
                open_ = self.opener or (lambda s: open_session(s, paths, self.store.config, self.clock))
                self.sessions[source] = open_(source)
            except HealthcacheError as exc:
                why = exc.message
        if why is not None:
            report.stopped[source] = why
            return False
        return True

    def fill(self, act: Activity, source: str) -> None:
        """Ask ``source`` for the activity's HR samples and queue what they give."""
        report = self.report
        sid = act.source_ids[source]
        key = f"{source}:{sid}"
        if not self.usable(source):
            report.not_reached += 1
            return
        splits = self._splits(source, sid, key, act.raw.get(source))
        if splits is None:
            return
        if not splits:
            self.new_no_hr[key] = utc_iso(self.clock())
            report.no_hr += 1
            return
        try:
            record = get_source(source).normalise(act.raw[source])
        except (KeyError, TypeError, ValueError) as exc:
            report.failed += 1
            report.errors.append(f"{key}: stored payload unusable: {exc}")
        else:
            self.pending.append(msgspec.structs.replace(record, hr_splits=splits))
            report.filled += 1

    def _splits(self, source: str, sid: str, key: str, raw: Any) -> list[HRSplit] | None:
        """The splits, or None when the source failed (counted, and the source stopped when it must)."""
        report = self.report
        try:
            splits = self.sessions[source].hr_splits(sid, raw)
        except RateLimited as exc:
            report.stopped[source] = exc.message
            self.limits[source] = exc
            report.not_reached += 1
            return None
        except AuthRequired as exc:
            report.stopped[source] = str(exc)
            report.not_reached += 1
            report.exit_code = exc.exit_code
            return None
        except SourceError as exc:
            report.failed += 1
            report.errors.append(f"{key}: {exc.message}")
            self.errors_in_row[source] = self.errors_in_row.get(source, 0) + 1
            if self.errors_in_row[source] >= MAX_CONSECUTIVE_ERRORS:
                report.stopped[source] = f"{MAX_CONSECUTIVE_ERRORS} failures in a row; last: {exc.message}"
            return None
        self.errors_in_row[source] = 0
        return splits

    def flush(self) -> None:
        """Save what is queued (with the state, after the save), or only the state when nothing is."""
        if not self.pending and not self.new_no_hr and not self.limits and not self.heal:
            return
        updates = _state_updates(self.new_no_hr, self.limits, self.clock)
        if self.heal:  # read as empty (load_hint): written as it is now, readable again
            updates.setdefault(BACKFILL_STATE, lambda cur: cur)
            self.heal = False
        kinds = {BACKFILL_STATE: (BackfillState, BackfillState())}
        if self.pending:

            def after_save(tx: Transaction, save: SaveResult) -> None:
                write_states(tx.paths, updates, kinds=kinds)

            result = ingest(
                self.store, self.pending, lock_timeout=self.lock_timeout, on_wait=self.on_wait, after_save=after_save
            )
            if result.save is not None and result.save.changed:
                self.report.saves += 1
        else:
            update_states_locked(
                self.store.paths, updates, kinds=kinds, lock_timeout=self.lock_timeout, on_wait=self.on_wait
            )
        self.pending.clear()
        self.new_no_hr.clear()
        self.limits.clear()

    def close(self) -> None:
        """Count the requests and keep renewed tokens of every session opened."""
        for session in self.sessions.values():
            self.report.requests += session.requests
            try:
                session.close()
            except Exception as exc:
                self.report.errors.append(f"{session.name}: could not save the renewed login: {exc}")


def _state_updates(
    no_hr: dict[str, str], limits: dict[str, RateLimited], clock: Callable[[], datetime]
) -> dict[str, Callable[[Any], Any]]:
    found = dict(no_hr)
    updates: dict[str, Callable[[Any], Any]] = {}
    if found:

        def add_no_hr(cur: BackfillState) -> BackfillState:
            merged = dict(cur.no_hr)
            merged.update(found)
            return msgspec.structs.replace(cur, no_hr=merged)

        updates[BACKFILL_STATE] = add_no_hr
    for source, exc in limits.items():

        def limit(cur: SourceState, exc: RateLimited = exc) -> SourceState:
            return msgspec.structs.replace(
                cur,
                rate_limited_until=utc_iso(exc.until),
                rate_limit_reason=exc.message,
                last_error=f"backfill-hr: {exc.message}",
                last_attempt=utc_iso(clock(), micro=True),
            )

        updates[source] = limit
    return updates
