"""``run``: the daily job: every configured step in order, one report, typed outcomes.

The steps are sync (each source that is set up, through the smart skip),
import of the watched ``[import] paths``, backfill-hr (at most ``[run]
backfill_limit`` activities), verify, and export to ``[export] targets``;
``[run] steps`` may narrow them.  ``plan`` decides (pure) which steps run and
why the others are skipped; ``run_daily`` calls each step's own core function
and collects what it came to.  One failing step never stops the next, and
never undoes a save: each step saves through the store on its own.  The exit
status is not decided here: the CLI's ``main`` asks ``outcome.exit_status`` for
the failures (corrupt > integrity > lock > error).

A run with nothing new reads no cache and loads only what deciding so needs: a
source inside its interval is skipped from its state alone (``waiting``),
import decides from ``stat`` alone (in one comparison of the watched paths'
listing, while the import state's note vouches for it: ``importers.settled``),
and backfill-hr, verify and the export to an SQLite mirror are skipped when the
cache is exactly the file their last run left with nothing to do (its sha256,
vouched for by the cache index, which describes the file on disk only while its
size and mtime match) and, for the mirror, its files are as that export left
them (``export_skip``). That memory (``sync_state/daily-run.json``) is a hint
that saves work, never a claim about the data: a cache the index does not vouch
for is verified and backfilled again, and a mirror anyone wrote to is opened
and asked.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec

from healthcache import state
from healthcache.config import RUN_STEPS, Config, Paths
from healthcache.errors import CorruptInput, HealthcacheError, LockBusy
from healthcache.outcome import Failure, Outcome, failure_of
from healthcache.sources import registry
from healthcache.timeutil import now_utc, utc_iso

STATE = "daily-run"  # sync_state/daily-run.json
FIGURES = ("seen", "new", "updated", "merged", "skipped", "failed")

OnWait = Callable[[str | None], None]


class Verified(msgspec.Struct, kw_only=True):
    """A verify that passed: of the cache with this sha256, against the baseline file with this one."""

    sha256: str
    baseline: str | None
    at: str


class Exported(msgspec.Struct, kw_only=True, array_like=True):
    """An export that left an SQLite mirror up to date with the cache of this sha256, and the mirror's
    files (the database and its write-ahead log) as that export left them: (size, mtime_ns, inode)."""

    sha256: str
    files: list[tuple[int, int, int] | None]
    at: str


class DailyState(msgspec.Struct, kw_only=True, omit_defaults=True):
    """What the daily job remembers so that a day with nothing new needs no cache read."""

    verified: Verified | None = None
    backfilled: str | None = None  # sha256 of the cache on which backfill-hr last left nothing to do
    exported: dict[str, Exported] = {}  # per SQLite target (keyed by a digest of its spec): its last export


# --------------------------------------------------------------------------- the plan (pure)
# (msgspec Structs rather than dataclasses here: a Struct class is built in C at import, where a
# dataclass runs generated code; every daily run imports this module.)


class Planned(msgspec.Struct, frozen=True):
    """One step of the plan: ``skip`` is why it does not run, None when it runs."""

    name: str  # "sync garmin", "import", "backfill-hr", "verify", "export"
    step: str  # its kind: one of RUN_STEPS
    skip: str | None = None


def plan(config: Config, set_up: Mapping[str, bool], *, dry_run: bool = False) -> list[Planned]:
    """Which steps run, in order, and why each other one does not.  Pure.

    ``set_up``: each API source, whether a login is saved.  What only running
    can tell (verify or backfill-hr with nothing to do) is decided later, by
    ``verify_skip`` and ``backfill_skip``.
    """
    chosen = set(config.run.steps)
    out: list[Planned] = []
    not_chosen = "not in [run] steps"
    for name, ok in set_up.items():
        why = not_chosen if "sync" not in chosen else None if ok else f"not set up; run healthcache auth {name}"
        out.append(Planned(f"sync {name}", "sync", why))
    why = not_chosen if "import" not in chosen else None if config.imports.paths else "no [import] paths"
    out.append(Planned("import", "import", why))
    if "backfill-hr" not in chosen:
        why = not_chosen
    elif not any(set_up.values()):
        why = "no source is set up"
    else:
        why = "dry run (backfill-hr saves as it goes)" if dry_run else None
    out.append(Planned("backfill-hr", "backfill-hr", why))
    out.append(Planned("verify", "verify", not_chosen if "verify" not in chosen else None))
    if "export" not in chosen:
        why = not_chosen
    elif not config.export.targets:
        why = "no [export] targets"
    else:
        why = "dry run (an export writes its mirror)" if dry_run else None
    out.append(Planned("export", "export", why))
    assert {p.step for p in out} <= set(RUN_STEPS)
    return out


def verify_skip(remembered: Verified | None, cache_sha: str | None, baseline_sha: str | None) -> str | None:
    """Why verify need not read the cache again, or None.  Pure.

    ``cache_sha`` is the sha256 the cache index vouches for (None when it does
    not describe the file on disk): only that very file, against the very same
    baseline, having passed before, may be taken as verified.
    """
    if remembered is None or cache_sha is None:
        return None
    if remembered.sha256 != cache_sha or remembered.baseline != baseline_sha:
        return None
    return f"cache unchanged since the last verify, which passed at {remembered.at}"


def backfill_skip(backfilled: str | None, cache_sha: str | None) -> str | None:
    """Why backfill-hr need not read the cache, or None.  Pure (same trust rule as ``verify_skip``)."""
    if backfilled is None or cache_sha is None or backfilled != cache_sha:
        return None
    return "cache unchanged since backfill-hr last left nothing to fill"


def export_skip(
    remembered: Exported | None, cache_sha: str | None, files: list[tuple[int, int, int] | None]
) -> str | None:
    """Why an SQLite mirror need not even be opened, or None.  Pure.

    Only when the cache is the very file the last export of this target sent
    (its sha256, vouched for by the index) and the mirror's files are exactly
    as that export left them (any write, by anyone, changes their size, mtime
    or inode) is the mirror known to be up to date without asking it.
    """
    if remembered is None or cache_sha is None or remembered.sha256 != cache_sha or remembered.files != files:
        return None
    return f"cache unchanged since the last export, at {remembered.at}, and the mirror as it left it"


def mirror_files(location: str) -> list[tuple[int, int, int] | None]:
    """(size, mtime_ns, inode) of an SQLite mirror and of its write-ahead log; None for one that is absent."""
    out: list[tuple[int, int, int] | None] = []
    for path in (location, location + "-wal"):
        try:
            st = os.stat(path)
        except OSError:
            out.append(None)
            continue
        out.append((st.st_size, st.st_mtime_ns, st.st_ino))
    return out


def target_key(spec: str) -> str:
    """A target's key in the daily state: a digest, so that no URL or password is ever written there."""
    return hashlib.sha256(spec.encode()).hexdigest()[:16]


def watched_paths(paths: Paths, config: Config) -> list[Path]:
    """``[import] paths`` with ``~`` expanded, relative ones taken from the home."""
    out: list[Path] = []
    for text in config.imports.paths:
        p = Path(text).expanduser()
        out.append(p if p.is_absolute() else paths.home / p)
    return out


# --------------------------------------------------------------------------- outcomes


class StepOutcome(msgspec.Struct):
    """What one step came to: status, why, how long, and its figures."""

    name: str
    status: str = "ok"  # ok | skipped | dry_run | failed | rate_limited | refused
    reason: str | None = None
    seconds: float = 0.0
    seen: int = 0
    new: int = 0
    updated: int = 0
    merged: int = 0
    skipped: int = 0
    failed: int = 0
    saved: bool = False  # this step rewrote the cache
    errors: list[str] = msgspec.field(default_factory=list)  # warnings and per-item problems
    failures: list[Failure] = msgspec.field(default_factory=list)
    source: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "status": self.status, "reason": self.reason}
        out["seconds"] = round(self.seconds, 3)
        out.update({k: getattr(self, k) for k in FIGURES})
        out["saved"] = self.saved
        if self.source is not None:
            out["source"] = self.source
        out["errors"] = list(self.errors)
        return out


class DailyResult(msgspec.Struct):
    steps: list[StepOutcome] = msgspec.field(default_factory=list)
    dry_run: bool = False
    seconds: float = 0.0

    def failures(self) -> list[Failure]:
        return [f for s in self.steps for f in s.failures]

    @property
    def saved(self) -> bool:
        return any(s.saved for s in self.steps)

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "ok": not self.failures(),
            "saved": self.saved,
            "seconds": round(self.seconds, 3),
            "steps": [s.as_dict() for s in self.steps],
        }


_STATUS_OF = {Outcome.INTEGRITY: "refused"}


def _failed(name: str, failure: Failure, **extra: Any) -> StepOutcome:
    status = _STATUS_OF.get(failure.outcome, "failed")
    return StepOutcome(name=name, status=status, reason=failure.message, failures=[failure], **extra)


# --------------------------------------------------------------------------- the executor


class DailyOptions(msgspec.Struct, frozen=True, kw_only=True):
    dry_run: bool = False
    force: bool = False
    sync_days: int = 7


class _Daily(msgspec.Struct):
    paths: Paths
    config: Config
    open_store: Callable[[], Any]  # makes the store.Store, at the first step that needs one
    options: DailyOptions
    lock_timeout: float | None
    on_wait: OnWait | None
    clock: Callable[[], datetime]
    opener: Any
    before_sync: Callable[[], None] | None = None  # e.g. the CLI keeping the clients' logs off the terminal
    known: DailyState | None = None  # the daily state as this run read it (once) or last remembered it
    forgot: str | None = None  # why the daily state could not be read, until a step's report says it
    advised: bool = False  # a step found the cache unreadable and gave the way back
    opened: Any = None

    @property
    def store(self) -> Any:
        """The store, made when a step first reads or saves the cache: a day with nothing new loads none."""
        if self.opened is None:
            self.opened = self.open_store()
        return self.opened

    def restore_advice(self) -> str | None:
        """The next step for a cache that cannot be read, given by the first step that finds it so (the
        report, ``--json`` and the notification each say it once; it reads the backups): None after."""
        if self.advised:
            return None
        self.advised = True
        from healthcache.restore import restore_advice

        return restore_advice(self.paths)


def run_daily(
    paths: Paths,
    config: Config,
    open_store: Callable[[], Any],
    options: DailyOptions,
    *,
    lock_timeout: float | None = 0.0,
    on_wait: OnWait | None = None,
    clock: Callable[[], datetime] = now_utc,
    opener: Any = None,
    before_sync: Callable[[], None] | None = None,
) -> DailyResult:
    """Run every planned step in order; a step's failure is collected, never raised (Ctrl-C is).

    ``open_store`` makes the ``store.Store`` (of ``paths`` and ``config``) the steps that read or
    save the cache use, when the first of them needs it.
    """
    started = time.perf_counter()
    run = _Daily(paths, config, open_store, options, lock_timeout, on_wait, clock, opener, before_sync)
    set_up = {name: opener is not None or _set_up(run.paths, name) for name in registry.names()}
    planned = plan(run.config, set_up, dry_run=options.dry_run)
    result = DailyResult(dry_run=options.dry_run)
    to_sync = [p.name.split(" ", 1)[1] for p in planned if p.step == "sync" and p.skip is None]
    steps: dict[str, Callable[[], list[StepOutcome]]] = {
        "import": lambda: [_import(run)],
        "backfill-hr": lambda: [_backfill(run, tuple(n for n, ok in set_up.items() if ok))],
        "verify": lambda: [_verify(run)],
        "export": lambda: _export(run),
    }
    synced = False
    for p in planned:
        if p.skip is not None:
            result.steps.append(StepOutcome(name=p.name, status="skipped", reason=p.skip))
        elif p.step == "sync":
            if not synced:  # one sync call for every source, so a dry run previews them together
                result.steps.extend(_guarded(run, "sync", lambda: _sync(run, tuple(to_sync))))
                synced = True
        else:
            result.steps.extend(_said(run, _guarded(run, p.name, steps[p.step])))
    result.seconds = time.perf_counter() - started
    return result


def _said(run: _Daily, outcomes: list[StepOutcome]) -> list[StepOutcome]:
    """The first step that read the daily state gives, as its reason, why that could not be read (a hint
    lost costs only the checks it would have spared: a notice, no warning); once."""
    first = outcomes[0] if outcomes else None
    if run.forgot is not None and first is not None and first.reason is None:
        first.reason, run.forgot = run.forgot, None
    return outcomes


def _set_up(paths: Paths, source: str) -> bool:
    """Whether ``source`` is part of the daily job: its login is saved, or it was synced before (a login
    gone since, or a credentials folder the job does not see, is then the sync step's failure to tell,
    never a silent skip)."""
    from healthcache.sources.protocol import get_source

    if get_source(source).is_configured(paths):
        return True
    from healthcache.sources.sync_state import load_state

    return load_state(paths, source, tell=False).last_success is not None


def _cache_version(paths: Paths) -> state.FileKey | None:
    """The cache file's version by ``stat`` (None when absent or not readable): a step that fails after
    its save changed it."""
    try:
        return state.file_key(paths.cache)
    except OSError:
        return None


def _guarded(run: _Daily, name: str, step: Callable[[], list[StepOutcome]]) -> list[StepOutcome]:
    """Run one step; whatever it raises becomes its failure, and the run goes on."""
    t0 = time.perf_counter()
    before = _cache_version(run.paths)
    try:
        outcomes = step()
    except CorruptInput as exc:
        failure = failure_of(exc)
        if exc.path == run.paths.cache and exc.hint is None:
            failure = msgspec.structs.replace(failure, hint=run.restore_advice())
        outcomes = [_failed(name, failure)]
    except (HealthcacheError, OSError) as exc:
        # A step can fail after its save (the backup copy, a manifest, a mirror): the report must
        # not say the cache was not rewritten when it was.
        outcomes = [_failed(name, failure_of(exc), saved=_cache_version(run.paths) != before)]
    except Exception as exc:  # a bug in one step must not take the others down
        outcomes = [_failed(name, Failure(Outcome.ERROR, f"{name}: unexpected failure: {type(exc).__name__}: {exc}"))]
    if len(outcomes) == 1 and not outcomes[0].seconds:
        outcomes[0].seconds = time.perf_counter() - t0
    return outcomes


def waiting(
    states: Mapping[str, Any], now: datetime, rule: Any, *, force: bool = False
) -> tuple[tuple[str, ...], dict[str, str]]:
    """Which sources are due (in order) and, for the others, why not: the smart skip that ``sync``
    applies itself (``sync_state.decide_sync``), asked first so that a run in which every source
    waits never loads the sync machinery.  Pure: ``states`` maps each source to its ``SourceState``."""
    from healthcache.sources.sync_state import decide_sync

    due: list[str] = []
    why: dict[str, str] = {}
    for source, st in states.items():
        decision = decide_sync(st, now, rule, force=force)
        if decision.sync:
            due.append(source)
        else:
            why[source] = decision.reason
    return tuple(due), why


def _sync(run: _Daily, sources: tuple[str, ...]) -> list[StepOutcome]:
    from healthcache.sources.sync_state import SkipRule, load_state

    states = {s: load_state(run.paths, s, tell=False) for s in sources}  # sync tells of an unreadable one
    due, why = waiting(states, run.clock(), SkipRule.of(run.config.sync), force=run.options.force)
    done = {s: StepOutcome(name=f"sync {s}", status="skipped", reason=r, source=s) for s, r in why.items()}
    if due:
        if run.before_sync is not None:
            run.before_sync()
        for step in _sync_due(run, due):
            done[step.source or step.name] = step
    return [done[s] for s in sources if s in done]


def _sync_due(run: _Daily, sources: tuple[str, ...]) -> list[StepOutcome]:
    from healthcache.sources.sync import SyncOptions, sync

    options = SyncOptions(
        days=run.options.sync_days, sources=sources, dry_run=run.options.dry_run, force=run.options.force
    )
    result = sync(
        run.store, options, clock=run.clock, opener=run.opener, lock_timeout=run.lock_timeout, on_wait=run.on_wait
    )
    out: list[StepOutcome] = []
    for s in result.steps:
        step = StepOutcome(
            name=f"sync {s.source}",
            status="skipped" if s.status == "not_configured" else s.status,
            reason=s.reason,
            seconds=s.seconds,
            seen=s.seen,
            new=s.new,
            updated=s.updated,
            merged=s.merged,
            skipped=s.unchanged + s.tombstoned,
            failed=s.skipped,
            saved=s.saved,
            errors=list(s.errors),
            source=s.source,
        )
        if s.failed:
            code = result.exit_codes.get(s.source, int(Outcome.ERROR))
            step.failures.append(
                Failure(Outcome.of_code(code), f"sync failed for {s.source}: {s.failure_message()}", hint=s.hint)
            )
        out.append(step)
    return out


def _import(run: _Daily) -> StepOutcome:
    from healthcache.importers.settled import unchanged_files

    inputs = [str(p) for p in watched_paths(run.paths, run.config)]
    status = "dry_run" if run.options.dry_run else "ok"
    settled = unchanged_files(run.paths, inputs)
    if settled is not None:  # every file as the manifests it was checked against say: what run_import would find
        return StepOutcome(name="import", status=status, seen=settled, skipped=settled)
    from healthcache.importers.run import run_import

    report = run_import(
        run.store,
        inputs,
        dry_run=run.options.dry_run,
        lock_timeout=run.lock_timeout,
        on_wait=run.on_wait,
    )
    counts = report.counts()
    merged = report.merge.summary() if report.merge is not None else {}
    step = StepOutcome(
        name="import",
        status=status,
        seen=counts["seen"],
        new=merged.get("new", 0),
        updated=merged.get("updated", 0),
        merged=merged.get("merged", 0),
        skipped=counts["unchanged"] + counts["skipped"],
        failed=counts["failed"],
        saved=bool(report.save is not None and report.save.changed),
        errors=[f"{f.path}: {f.reason}" for f in report.failures],
    )
    if report.failures:
        n = len(report.failures)
        first = report.failures[0]
        failure = Failure(
            Outcome.ERROR,
            f"import: {n} file{'s' if n != 1 else ''} could not be imported ({first.path}: {first.reason})",
            hint=_import_failed_hint(step),
        )
        step.status, step.reason, step.failures = "failed", failure.message, [failure]
    return step


def _import_failed_hint(step: StepOutcome) -> str:
    """What became of the rest of an import in which some files failed: true to what it did."""
    if step.saved:
        done = "The other files were imported and saved"
    elif step.new or step.updated or step.merged:
        done = "What the other files held was found but not saved (a dry run)"
    else:
        done = "Nothing else was new; the cache was not rewritten"
    return f"{done}; the next run tries the failed ones again."


def _cache_sha(paths: Paths) -> str | None:
    """The sha256 of the cache on disk, when the cache index vouches for it (by stat: no read)."""
    from healthcache.cacheindex import current_index

    index = current_index(paths)
    return None if index is None else index.sha256


def _baseline_sha(paths: Paths) -> str | None:
    try:
        return hashlib.sha256(paths.baseline.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


def _load(paths: Paths) -> tuple[DailyState, str | None]:
    """The daily state, and why it could not be read: an unreadable one remembers nothing (the run
    checks everything, as on its first day) and is rewritten by the first step that remembers."""
    return state.load_hint(paths, STATE, DailyState, DailyState())


def _known(run: _Daily) -> DailyState:
    """The daily state, read once per run: what it remembers are facts about files by their sha256
    (that cache passed verify, that mirror was left so), which stay true, so a read made earlier in
    the run is as good a hint as a new one; a step that remembers something updates it."""
    if run.known is None:
        run.known, why = _load(run.paths)
        if why is not None:
            run.forgot = (
                f"{state.shown(run.paths, run.paths.state_file(STATE))} could not be read ({why}): checked in full"
            )
    return run.known


def _remember(run: _Daily, change: Callable[[DailyState], DailyState]) -> str | None:
    """Update the daily state under the write lock; a busy lock only costs the next run a read (the note)."""
    from healthcache.lock import write_lock

    try:
        with write_lock(run.paths.lock, timeout=run.lock_timeout, on_wait=run.on_wait):
            now = change(_load(run.paths)[0])
            state.save(run.paths.state_file(STATE), now)
            run.known = now
    except LockBusy:
        return "the write lock was busy: not remembered, the next run checks again"
    return None


def _backfill(run: _Daily, sources: tuple[str, ...]) -> StepOutcome:
    skip = backfill_skip(_known(run).backfilled, _cache_sha(run.paths))
    if skip is not None:
        return StepOutcome(name="backfill-hr", status="skipped", reason=skip)
    from healthcache.sources.backfill import BackfillOptions, backfill_hr

    limit = run.config.run.backfill_limit
    report = backfill_hr(
        run.store,
        BackfillOptions(limit=limit, sources=sources),
        clock=run.clock,
        opener=run.opener,
        lock_timeout=run.lock_timeout,
        on_wait=run.on_wait,
    )
    step = StepOutcome(
        name="backfill-hr",
        seconds=report.seconds,
        seen=report.candidates,
        updated=report.filled,
        skipped=report.no_hr + report.not_reached,
        failed=report.failed,
        saved=report.saves > 0,
        errors=[*report.errors, *(f"{n}: stopped: {why}" for n, why in report.stopped.items())],
    )
    if report.exit_code:
        left = report.failed + report.not_reached
        failure = Failure(Outcome.of_code(report.exit_code), f"backfill-hr left {left} activities without splits")
        step.status, step.reason, step.failures = "failed", failure.message, [failure]
    elif report.candidates < limit:  # everything it could ask about was answered
        sha = _cache_sha(run.paths)
        if sha is not None:
            note = _remember(run, lambda cur: msgspec.structs.replace(cur, backfilled=sha))
            step.errors.extend([note] if note else [])
    return step


def _verify(run: _Daily) -> StepOutcome:
    baseline = _baseline_sha(run.paths)
    skip = verify_skip(_known(run).verified, _cache_sha(run.paths), baseline)
    if skip is not None:
        return StepOutcome(name="verify", status="skipped", reason=skip)
    from healthcache.verify import verify

    report = verify(run.store)
    failures = report.failures(hint=run.restore_advice() if report.cache_corrupt else None)
    step = StepOutcome(name="verify", seen=report.activities, failed=len(report.problems), failures=failures)
    if failures:
        step.status = _STATUS_OF.get(failures[0].outcome, "failed")
        step.reason = "; ".join(f.message for f in failures)
        step.errors = [str(p) for p in report.problems[:20]]
    elif not run.options.dry_run and report.sha256 is not None and _cache_sha(run.paths) == report.sha256:
        # Remembered only for the file the index vouches for (the one just read, not since replaced).
        done = Verified(sha256=report.sha256, baseline=baseline, at=utc_iso(run.clock()))
        note = _remember(run, lambda cur: msgspec.structs.replace(cur, verified=done))
        step.errors.extend([note] if note else [])
    return step


def _export(run: _Daily) -> list[StepOutcome]:
    """Export to each target; an SQLite mirror known to be up to date (``export_skip``) is not even opened."""
    from healthcache.export.targets import parse_target

    specs, config, paths = list(run.config.export.targets), run.config, run.paths
    remembered, cache_sha = _known(run).exported, _cache_sha(paths)  # the sha before the export: conservative
    files: dict[int, str] = {}  # position -> the SQLite mirror's file, for the targets that can be remembered
    out: dict[int, StepOutcome] = {}
    for i, spec in enumerate(specs):
        try:
            target = parse_target(spec, config, paths)
        except Exception:  # an unusable target fails in the export itself, with its message
            continue
        if target.engine == "sqlite":
            files[i] = target.location
            why = export_skip(remembered.get(target_key(spec)), cache_sha, mirror_files(target.location))
            if why is not None:
                out[i] = StepOutcome(name=f"export {target.location}", status="skipped", reason=why)
    todo = [i for i in range(len(specs)) if i not in out]
    if todo:
        from healthcache.export.core import run_configured_exports

        done = run_configured_exports(paths, config, store=run.store, specs=[specs[i] for i in todo])
        fresh: dict[str, Exported] = {}
        for i, result in zip(todo, done, strict=True):
            out[i] = _export_outcome(result, run)
            sha = (result.report.cache_sha256 or cache_sha) if result.report is not None else None
            if i in files and out[i].status == "ok" and sha is not None:
                at = utc_iso(run.clock())
                fresh[target_key(specs[i])] = Exported(sha256=sha, files=mirror_files(files[i]), at=at)
                last = out[i]
        if fresh:
            note = _remember(run, lambda st: msgspec.structs.replace(st, exported={**st.exported, **fresh}))
            last.errors.extend([note] if note else [])
    return [out[i] for i in range(len(specs))]


def _export_outcome(done: Any, run: _Daily) -> StepOutcome:
    """One target's ``export.core.ConfiguredExport`` as a step of the run."""
    name = f"export {done.target}"
    if done.error or done.report is None:
        outcome = Outcome.of_code(done.exit_code or 1)
        hint: str | None
        if outcome is Outcome.CORRUPT and str(done.error).startswith(f"{run.paths.cache}: "):
            hint = run.restore_advice()  # the cache could not be read: it does not "stand as saved"
        else:
            hint = "The cache stands as saved; only that mirror was left as it was."
        return _failed(name, Failure(outcome, f"export: {done.error}", hint=hint))
    r = done.report
    return StepOutcome(
        name=name,
        reason="cache unchanged since the last export" if r.cache_unchanged else None,
        seconds=r.seconds,
        seen=r.processed,
        new=r.inserted,
        updated=r.updated,
        skipped=r.unchanged,
    )


def summary(result: DailyResult) -> str:
    """The report's last line: what the run came to."""
    counts: dict[str, int] = {}
    for s in result.steps:
        counts[s.status] = counts.get(s.status, 0) + 1
    parts = ", ".join(f"{n} {status}" for status, n in counts.items())
    if result.dry_run:
        written = "dry run: nothing was written"
    elif result.saved:
        written = "the cache was saved"
    else:
        written = "the cache was not rewritten"
    return f"run: {len(result.steps)} steps ({parts}) in {result.seconds:.2f} s; {written}"
