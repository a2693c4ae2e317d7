"""Restore the cache from a backup, without ever losing what is there now.

A plain restore that would drop activities the current file holds is refused
by the guard; ``merge=True`` takes the union instead, and ``force`` replaces
anyway.  Either way the current file is backed up first, so a restore can
itself be undone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import msgspec

from healthcache import GENERATOR, backup, guard
from healthcache.config import DEFAULT_PREFERENCE, Paths
from healthcache.errors import CorruptInput, HealthcacheError, IntegrityRefused, UsageError
from healthcache.model.records import HR_FIELDS, SUMMARY_FIELDS, Activity, Cache, empty_cache
from healthcache.store import SaveResult, Store, load_file

if TYPE_CHECKING:
    from healthcache.diff import CacheDiff


@dataclass
class RestorePlan:
    backup: Path
    added: list[str] = field(default_factory=list)  # activity ids the restore brings back
    dropped: list[str] = field(default_factory=list)  # ids present now that the restore would remove
    changed: list[str] = field(default_factory=list)  # ids whose content differs
    violations: list[guard.Violation] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)  # --merge: the backup's records not brought back, and why
    diff: CacheDiff | None = None  # a dry run: current -> what the restore would write


@dataclass
class RestoreResult:
    plan: RestorePlan
    mode: str  # "replace" | "merge" | "force"
    save: SaveResult | None  # None for a dry run
    current_was_corrupt: bool = False

    @property
    def state_note(self) -> str | None:
        """How the restore leaves import and sync state: hints the next runs check against the cache."""
        if self.save is None or not self.save.changed:
            return None
        if self.current_was_corrupt:
            return (
                "import and sync state may describe records the unreadable file held; the next import/sync "
                "will check them against the restored cache and read again what it lacks"
            )
        if self.plan.dropped or self.plan.violations:
            return (
                "import and sync state describe records that this restore removed; the next import/sync "
                "will check them against the cache and fetch them again"
            )
        return None


def newest_good_backup(paths: Paths, *, other_than: str | None = None) -> Path | None:
    """The newest backup that loads cleanly (its name's hash is checked too).

    ``other_than`` (a sha256) passes over backups of that content: the newest
    backup is the state last saved, so "the latest" to go back to is the
    newest one that differs from the file there now.
    """
    for info in backup.list_backups(paths.backups):
        if other_than is not None and other_than.startswith(info.digest):
            continue
        try:
            if not backup.file_sha256(info.path).startswith(info.digest):
                continue
            load_file(info.path)
        except (CorruptInput, OSError):
            continue
        return info.path
    return None


def restore_advice(paths: Paths) -> str:
    """For a cache that cannot be read: the newest good backup and the exact command that restores it
    (every command gives these words; a run cannot repair the file, so "the next run tries again" would
    be untrue)."""
    good = newest_good_backup(paths)
    if good is None:
        return "No readable backup was found; the file was left untouched."
    lines = [f"The newest good backup is {good}."]
    if paths.cache.is_dir():
        lines.append(f"Move the folder aside first: mv {paths.cache} {paths.cache}.folder")
    lines.append(f"Restore it with: healthcache restore --home {paths.home} {good.name}")
    return "\n".join(lines)


def _why_no_latest(paths: Paths, current: str | None) -> str:
    """Why ``--latest`` found nothing to go back to: no backup, only the cache as it is, or none readable."""
    kept = backup.list_backups(paths.backups)
    if not kept:
        return f"no backup in {paths.backups} yet: one is kept at every save"
    if current is not None and all(current.startswith(b.digest) for b in kept):
        return f"nothing to restore: every backup in {paths.backups} holds the cache as it is now"
    return f"no readable backup in {paths.backups} differs from the cache (healthcache verify --backups names them)"


def resolve_backup(paths: Paths, name: str | None) -> Path:
    if name is None:
        try:
            current = backup.file_sha256(paths.cache) if paths.cache.is_file() else None
        except OSError:
            current = None
        found = newest_good_backup(paths, other_than=current)
        if found is None:
            raise UsageError(_why_no_latest(paths, current))
        return found
    if Path(name).exists():  # a file named by its path (a backup, or a copy kept elsewhere)
        return Path(name)
    from healthcache.diff import find_backup  # (loaded already by the command, to show what changes)

    # Its name (as first written: it may have been compressed since), or a unique prefix of its stamp
    # or hash: the same rule as diff's, so the names one command prints the other takes.
    return find_backup(paths, name).path


class Union(NamedTuple):
    cache: Cache
    left_out: list[str]  # the backup's records the union could not bring back, each with why


def union(current: Cache, other: Cache, preference: Sequence[str] = DEFAULT_PREFERENCE) -> Union:
    """Everything in either file: activities missing from ``current`` are added,
    shared ones gain the fields, sources and HR data only ``other`` has.

    The current file's decisions stand: activities deleted in it (tombstones)
    stay deleted, and a backup activity whose records it keeps apart (an
    ``unlink`` since: a distinct link) is split the same way first, from its
    kept payloads, as ``unlink`` splits.  A record that can then be joined to
    no single current activity is left out, and said so."""
    owner: dict[str, int] = {}
    acts = list(current.activities)
    for i, act in enumerate(acts):
        for key in act.record_keys():
            owner[key] = i
    deleted: set[str] = set()
    for tomb in current.tombstones:
        deleted |= tomb.record_keys()
    distinct = {frozenset(x.ids) for x in current.links if x.kind == "distinct"}
    left_out: list[str] = []
    for whole in other.activities:
        if whole.record_keys() & deleted:
            continue
        parts, why_whole = _split_as_now(whole, distinct, current.updated_at, preference)
        for act in parts:
            keys = act.record_keys()
            hits = {owner[k] for k in keys if k in owner}
            if not hits:
                owner.update(dict.fromkeys(keys, len(acts)))
                acts.append(act)
                continue
            missing = sorted(keys - owner.keys())
            why = why_whole or _why_not_joined(missing, hits, acts, distinct)
            if why is not None:
                left_out += [f"{key} (in the backup's {whole.id}): {why}" for key in missing]
            elif len(hits) == 1:
                (i,) = hits
                acts[i] = _fill(acts[i], act)
            # else: every record of it is here, in activities the current file keeps apart: they stand
    tomb_ids = {t.id for t in current.tombstones}
    tombstones = list(current.tombstones) + [t for t in other.tombstones if t.id not in tomb_ids]
    links = list(current.links) + [lk for lk in other.links if lk not in current.links]
    return Union(msgspec.structs.replace(current, activities=acts, tombstones=tombstones, links=links), left_out)


def _split_as_now(
    act: Activity, distinct: set[frozenset[str]], now: str, preference: Sequence[str]
) -> tuple[list[Activity], str | None]:
    """``act`` split where a distinct link of the current file parts two of its records (as ``unlink``
    splits, from the kept payloads); with why not, when a payload cannot be re-derived."""
    from healthcache.merge import unlink_records

    keys = act.record_keys()
    pairs = [sorted(pair) for pair in distinct if pair <= keys]
    if not pairs:
        return [act], None
    alone = empty_cache(GENERATOR, now)
    part = msgspec.structs.replace(alone, activities=[act])
    try:
        for a, b in pairs:
            part, _ = unlink_records(part, a, b, now=now, preference=preference)
    except HealthcacheError as exc:
        return [act], f"the current file keeps {' and '.join(pairs[0])} apart, and {exc}"
    return list(part.activities), None


def _why_not_joined(
    missing: list[str], hits: set[int], acts: list[Activity], distinct: set[frozenset[str]]
) -> str | None:
    """Why a backup activity's records are not joined to the current one holding the others, or None."""
    if len(hits) > 1:
        if not missing:
            return None  # nothing to bring back: every record of it is here, in activities kept apart
        return "its other records are in several activities now; restore --force brings back the backup as it was"
    (i,) = hits
    here = acts[i].record_keys()
    for key in missing:
        for other in here:
            if frozenset((key, other)) in distinct:
                return f"linked as distinct from {other}, which holds its other records now"
    return None


def _fill(mine: Activity, theirs: Activity) -> Activity:
    """``mine`` with every value it lacks taken from ``theirs``; nothing of ``mine`` replaced."""
    changes: dict[str, object] = {}
    for name in (*SUMMARY_FIELDS, *HR_FIELDS):
        if getattr(mine, name) in (None, []) and getattr(theirs, name) not in (None, []):
            changes[name] = getattr(theirs, name)
    source_ids = {**theirs.source_ids, **mine.source_ids}
    raw = {**theirs.raw, **mine.raw}
    sport_raw = {**theirs.sport_raw, **mine.sport_raw}
    # Every key of theirs must still resolve here: through source_ids, or as an alias.
    resolved = {mine.id, *mine.aliases, *(f"{s}:{i}" for s, i in source_ids.items())}
    aliases = [*mine.aliases, *sorted(theirs.record_keys() - resolved)]
    if source_ids != mine.source_ids or raw != mine.raw or sport_raw != mine.sport_raw or aliases != mine.aliases:
        changes.update(source_ids=source_ids, raw=raw, sport_raw=sport_raw, aliases=aliases)
    first_seen = min(mine.first_seen_at, theirs.first_seen_at)
    if first_seen != mine.first_seen_at:
        changes["first_seen_at"] = first_seen
    return msgspec.structs.replace(mine, **changes) if changes else mine


def plan(current: Cache, target: Cache, backup_path: Path) -> RestorePlan:
    now_ids = {a.id: a for a in current.activities}
    then_ids = {a.id: a for a in target.activities}
    result = RestorePlan(backup=backup_path)
    result.added = sorted(set(then_ids) - set(now_ids))
    result.dropped = sorted(set(now_ids) - set(then_ids))
    result.changed = sorted(i for i in set(now_ids) & set(then_ids) if now_ids[i] != then_ids[i])
    return result


def dropped_activities(p: RestorePlan) -> list[guard.Violation]:
    """Activities present now that the restore would remove, beyond what the guard names.

    The guard counts records, so an activity whose records the backup holds
    inside another one (an ``unlink`` undone) passes it; the README promises
    that a restore dropping an activity present now needs ``--force``.
    """
    named = {v.subject for v in p.violations}
    return [
        guard.Violation(
            "dropped_activity", i, "present now as an activity; the backup does not have it (a split would be undone)"
        )
        for i in p.dropped
        if i not in named
    ]


def restore(
    store: Store,
    name: str | None,
    *,
    merge: bool = False,
    force: bool = False,
    dry_run: bool = False,
    lock_timeout: float | None = 0.0,
    on_wait: Callable[[str | None], None] | None = None,
) -> RestoreResult:
    if merge and force:
        raise UsageError("--merge and --force exclude each other")
    backup_path = resolve_backup(store.paths, name)
    restored = load_file(backup_path).cache
    with store.transaction(lock_timeout=lock_timeout, on_wait=on_wait, allow_corrupt=True, check_outside=False) as tx:
        current = tx.cache
        joined = union(current, restored, store.config.preference) if merge else None
        target = restored if joined is None else joined.cache
        result_plan = plan(current, target, backup_path)
        result_plan.left_out = [] if joined is None else joined.left_out
        result_plan.violations = tx.check(target)
        result_plan.violations += dropped_activities(result_plan)
        mode = "merge" if merge else "force" if force else "replace"
        if dry_run:
            from healthcache.diff import diff_caches

            result_plan.diff = diff_caches(current, target, a_label="current", b_label=f"{backup_path.name} ({mode})")
            return RestoreResult(result_plan, mode, None, tx.corrupt is not None)
        if result_plan.violations and not force:
            raise IntegrityRefused(
                guard.describe(result_plan.violations)
                + "\nUse --merge to keep both (the union), or --force to replace anyway (the current file is backed up first).",
                result_plan.violations,
            )
        was_corrupt = tx.corrupt is not None
        saved = tx.save(target, force_reason="restore --force" if force else None)
        return RestoreResult(result_plan, mode, saved, was_corrupt)
