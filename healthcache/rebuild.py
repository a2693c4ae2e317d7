"""Re-derive every activity from its kept raw payloads with this version's code.

An older version may have mis-read a payload (a unit, a sport name, a missing
field); the payloads are kept, so the fix is to read them again.  Each activity
is rebuilt the way ``unlink`` rebuilds the parts of a split: every record it
holds is re-normalised (``healthcache.normalise``) and the records are joined by
the merge engine's own field precedence (``merge.Builder.new_activity`` and
``join``).  Which records form one workout is kept: that decision (rules, links,
tombstones) was made when they met and is steered by ``link``/``unlink``, not
by rebuild.  As in every merge, a present value is never replaced by a missing
one (HR splits fetched by ``backfill-hr`` live outside the payloads and stay),
and an activity some of whose payloads cannot be re-read is kept as it is.

Asking the user is the CLI's job: ``rebuild`` takes a ``confirm`` callback,
called with the plan before anything is written.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from healthcache import diff as diffs
from healthcache import progress as prog
from healthcache.config import DEFAULT_PREFERENCE
from healthcache.errors import HealthcacheError
from healthcache.merge import MERGED_FIELDS, Builder, Normaliser, has_value
from healthcache.model.records import Activity, Cache, SourceRecord
from healthcache.store import SaveResult, Store
from healthcache.timeutil import utc_iso


class Aborted(HealthcacheError):
    """The user did not confirm; nothing was written."""


@dataclass(frozen=True)
class KeptAsIs:
    id: str
    reason: str


@dataclass
class RebuildPlan:
    cache: Cache  # the rebuilt cache
    diff: diffs.CacheDiff
    rebuilt: int = 0  # activities re-derived (changed or not)
    kept: list[KeptAsIs] = field(default_factory=list)  # activities with a payload that cannot be re-derived
    sha256: str | None = None  # of the file the plan was made from

    @property
    def changed(self) -> bool:
        return bool(self.diff.changed)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rebuilt": self.rebuilt,
            "kept_as_is": [{"id": k.id, "reason": k.reason} for k in self.kept],
            "summary": self.diff.summary(),
            "diff": msgspec.to_builtins(self.diff),
        }


def _records(act: Activity, normalise: Normaliser) -> list[SourceRecord] | str:
    """Each record of ``act`` re-derived from its raw payload, or why one cannot be."""
    out: list[SourceRecord] = []
    for source, sid in act.source_ids.items():
        raw = act.raw.get(source)
        if raw is None:
            return f"no raw payload for {source}:{sid}"
        try:
            rec = normalise(source, raw)
        except HealthcacheError as exc:
            return exc.message
        except Exception as exc:  # a payload that cannot be re-read keeps the activity as it is
            return f"the {source} payload cannot be re-read ({exc})"
        out.append(msgspec.structs.replace(rec, source=source, source_id=sid, raw=raw))
    return out


def _fetched_splits(m: Builder, act: Activity, records: list[SourceRecord]) -> bool:
    """Whether ``act``'s HR splits were fetched apart from the payloads (``backfill-hr``):
    no payload gives them, and the source that ranks first for them has none in its payload,
    so a lesser source's splits must not replace them."""
    if not act.hr_splits or any(r.hr_splits == act.hr_splits for r in records):
        return False
    top = min(records, key=lambda r: m.rank(r.source))
    return not top.hr_splits


def rebuild_activity(m: Builder, act: Activity, records: list[SourceRecord]) -> Activity:
    """``act`` re-derived from ``records``; the same object when nothing differs."""
    ordered = sorted(records, key=lambda r: m.rank(r.source))
    built = m.new_activity(ordered[0])
    for rec in ordered[1:]:
        built, _ = m.join(built, rec)
    keep: dict[str, Any] = {}
    for name in MERGED_FIELDS:  # never replace a present value by a missing one
        if has_value(name, getattr(act, name)) and not has_value(name, getattr(built, name)):
            keep[name] = getattr(act, name)
    if _fetched_splits(m, act, records):
        keep["hr_splits"] = act.hr_splits
    candidate = msgspec.structs.replace(
        built,
        **keep,
        id=act.id,
        aliases=list(act.aliases),
        source_ids=dict(act.source_ids),
        sport_raw={**act.sport_raw, **built.sport_raw},
        raw=act.raw,
        joins=act.joins,  # which records form one workout, and why, is kept
        first_seen_at=act.first_seen_at,
        updated_at=act.updated_at,
    )
    if candidate == act:
        return act
    return msgspec.structs.replace(candidate, updated_at=m.now)


def plan(
    cache: Cache,
    *,
    now: str,
    preference: Sequence[str] = DEFAULT_PREFERENCE,
    normalise: Normaliser | None = None,
    tracker: prog.Progress = prog.SILENT,
) -> RebuildPlan:
    """Pure: the rebuilt cache, the diff from ``cache``, and what was kept as it was.
    ``tracker`` hears of each activity re-derived."""
    m = Builder(now=now, preference=preference, normalise=normalise)
    acts: list[Activity] = []
    kept: list[KeptAsIs] = []
    rebuilt = 0
    with prog.step(tracker, len(cache.activities), "re-deriving activities"):
        for act in cache.activities:
            records = _records(act, m.normalise)
            if isinstance(records, str):
                kept.append(KeptAsIs(act.id, records))
                acts.append(act)
            else:
                rebuilt += 1
                acts.append(rebuild_activity(m, act, records))
            tracker.advance(1, act.id[:12])
    new = msgspec.structs.replace(cache, activities=acts)
    return RebuildPlan(
        cache=new,
        diff=diffs.diff_caches(cache, new, a_label="current", b_label="rebuilt"),
        rebuilt=rebuilt,
        kept=kept,
    )


@dataclass
class RebuildResult:
    plan: RebuildPlan
    save: SaveResult | None  # None: a dry run, or nothing to write


def rebuild(
    store: Store,
    *,
    confirm: Callable[[RebuildPlan], bool] | None,
    dry_run: bool = False,
    lock_timeout: float | None = 0.0,
    on_wait: Callable[[str | None], None] | None = None,
    tracker: prog.Progress = prog.SILENT,
) -> RebuildResult:
    """Plan from a snapshot, ask ``confirm`` (without holding the lock: a person may
    take a while), then save through the guard and a backup, provided the file is
    still the one the plan was made from."""
    loaded = store.read()
    now = utc_iso(store.clock())
    result = plan(loaded.cache, now=now, preference=store.config.preference, tracker=tracker)
    result.sha256 = loaded.sha256
    if dry_run or not result.changed:
        return RebuildResult(result, None)
    if confirm is None or not confirm(result):
        raise Aborted("rebuild aborted: REBUILD was not typed; nothing was written")
    with store.transaction(lock_timeout=lock_timeout, on_wait=on_wait) as tx:
        if tx.loaded.sha256 != loaded.sha256:
            raise HealthcacheError(
                "the cache changed while rebuild was waiting for confirmation; nothing was written",
                hint="Run healthcache rebuild again to see the new plan.",
            )
        return RebuildResult(result, tx.save(result.cache))
