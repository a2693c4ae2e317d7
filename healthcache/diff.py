"""What differs between two states of the cache (a backup, the current file, the baseline).

``diff_caches`` is pure: activities are matched by id and compared by value
first (msgspec Struct equality runs in C: about 0.3 s for two 100k-activity
states, where hashing each activity's encoding costs 1.6 s), and only those that
differ go through deepdiff for field-level changes.  An activity that left is told
apart: tombstoned (an explicit delete), absorbed (its id is now an alias or a
record of another activity), or dropped (gone without a trace: data loss).

The baseline holds counts, not activities, so a diff against it compares counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import msgspec
from deepdiff import DeepDiff

from healthcache import backup, guard
from healthcache.cacheindex import read_index
from healthcache.codec import gc_paused
from healthcache.config import Paths
from healthcache.errors import HealthcacheError, UsageError
from healthcache.model.records import Activity, Cache
from healthcache.store import Loaded, load_file, read_baseline

# --- states -------------------------------------------------------------------


@dataclass(frozen=True)
class State:
    """A cache state to compare: a whole cache, or the baseline's counts."""

    name: str  # "current", "latest", "baseline", or a backup file name
    label: str  # what to print: the name and, for a backup, its file
    cache: Cache | None = None
    baseline: guard.Baseline | None = None
    path: Path | None = None
    sha256: str | None = None


def load_current(paths: Paths) -> Loaded:
    return load_file(paths.cache, index=read_index(paths))


def latest_backup(paths: Paths, current_sha: str | None) -> backup.BackupInfo:
    """The newest backup whose content differs from the current file.

    A backup of each saved state may be written at save time, so the newest
    backup can be the current file itself; comparing with it would show nothing.
    """
    for info in backup.list_backups(paths.backups):
        if current_sha is None or not current_sha.startswith(info.digest):
            return info
    raise HealthcacheError(
        f"no backup in {paths.backups} differs from the current file: nothing to compare yet",
        hint="List backups with: healthcache backups list",
    )


def find_backup(paths: Paths, spec: str) -> backup.BackupInfo:
    """A backup named by its file name, a path, or a unique prefix of its stamp or hash."""
    items = backup.list_backups(paths.backups, include_corrupt=True)
    as_path = Path(spec)
    for info in items:
        # The name it was written under still finds a backup compressed since.
        if spec in (info.name, info.plain_path.name, str(info.path)) or (
            as_path.exists() and as_path.resolve() == info.path.resolve()
        ):
            return info
    if as_path.is_file():
        parsed = backup.parse_name(as_path)
        if parsed is not None:
            return parsed
    key = spec.removeprefix(backup.PREFIX)
    hits = [
        info
        for info in items
        if key and (info.name.removeprefix(backup.PREFIX).startswith(key) or info.digest.startswith(key))
    ]
    if len(hits) == 1:
        return hits[0]
    if not hits:
        raise UsageError(
            f"no backup matches {spec!r} (give its name, or a prefix of its stamp or hash)",
            hint="List backups with: healthcache backups list",
        )
    names = "\n".join(f"  {h.name}" for h in hits[:20])
    raise UsageError(f"{spec!r} matches {len(hits)} backups; give more of the stamp or hash:\n{names}")


def resolve_state(paths: Paths, spec: str, current: Loaded) -> State:
    """The state ``spec`` names; ``current`` is the loaded current file (read once)."""
    if spec == "current":
        return State(name="current", label="current", cache=current.cache, path=paths.cache, sha256=current.sha256)
    if spec == "baseline":
        base = read_baseline(paths)
        if base is None:
            raise UsageError(f"no baseline at {paths.baseline}", hint="Record one with: healthcache verify --baseline")
        return State(name="baseline", label=f"baseline (recorded {base.recorded_at})", baseline=base)
    info = latest_backup(paths, current.sha256) if spec == "latest" else find_backup(paths, spec)
    loaded = load_file(info.path)
    label = f"latest ({info.name})" if spec == "latest" else info.name
    return State(name=spec, label=label, cache=loaded.cache, path=info.path, sha256=loaded.sha256)


# --- the diff -------------------------------------------------------------------


class FieldChange(msgspec.Struct, kw_only=True):
    path: str  # e.g. distance_m, hr_splits[2].avg_hr, raw.garmin.distance
    change: Literal["changed", "added", "removed"]
    old: Any = None
    new: Any = None


class Added(msgspec.Struct, kw_only=True, omit_defaults=True):
    id: str
    start_time: str
    sport: str
    name: str | None = None
    note: str | None = None  # e.g. "was an alias of X" (split out), "was deleted" (restored)


class Removed(msgspec.Struct, kw_only=True, omit_defaults=True):
    id: str
    start_time: str
    sport: str
    fate: Literal["tombstoned", "absorbed", "dropped"]
    into: str | None = None  # the activity that absorbed it
    reason: str | None = None  # the tombstone's reason


class Changed(msgspec.Struct, kw_only=True):
    id: str
    start_time: str
    sport: str
    fields: list[FieldChange]


class CacheDiff(msgspec.Struct, kw_only=True):
    a: str
    b: str
    added: list[Added]
    removed: list[Removed]
    changed: list[Changed]
    unchanged: int
    tombstones: tuple[int, int]  # (in a, in b)
    links: tuple[int, int]

    @property
    def empty(self) -> bool:
        same_extras = self.tombstones[0] == self.tombstones[1] and self.links[0] == self.links[1]
        return same_extras and not (self.added or self.removed or self.changed)

    def summary(self) -> dict[str, int]:
        return {
            "added": len(self.added),
            "removed": len(self.removed),
            "tombstoned": sum(1 for r in self.removed if r.fate == "tombstoned"),
            "absorbed": sum(1 for r in self.removed if r.fate == "absorbed"),
            "dropped": sum(1 for r in self.removed if r.fate == "dropped"),
            "changed": len(self.changed),
            "unchanged": self.unchanged,
        }


class CountRow(msgspec.Struct, kw_only=True):
    what: str  # "activities", "records", "records garmin", "with avg_hr", ...
    a: int
    b: int


class CountsDiff(msgspec.Struct, kw_only=True):
    """Against the baseline only counts can be compared: it stores no activities."""

    a: str
    b: str
    rows: list[CountRow]
    note: str = "the baseline records counts, not activities: only counts can be compared"


def _path(parts: list[Any]) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _plain(value: Any) -> Any:
    from deepdiff.helper import NotPresent

    return None if isinstance(value, NotPresent) else value


def field_changes(old: Activity, new: Activity) -> list[FieldChange]:
    """Field-level changes between two versions of one activity, by deepdiff."""
    dd = DeepDiff(msgspec.to_builtins(old), msgspec.to_builtins(new), view="tree", ignore_numeric_type_changes=True)
    out: list[FieldChange] = []
    for kind, levels in dd.tree.items():
        change: Literal["changed", "added", "removed"] = (
            "added" if kind.endswith("_added") else "removed" if kind.endswith("_removed") else "changed"
        )
        for level in levels:
            out.append(
                FieldChange(
                    path=_path(level.path(output_format="list")),
                    change=change,
                    old=_plain(level.t1),
                    new=_plain(level.t2),
                )
            )
    out.sort(key=lambda c: c.path)
    return out


def _owner_index(cache: Cache) -> dict[str, Activity]:
    return {key: act for act in cache.activities for key in act.record_keys()}


def diff_caches(a: Cache, b: Cache, *, a_label: str = "a", b_label: str = "b") -> CacheDiff:
    """What changed from ``a`` to ``b``, activity by activity."""
    with gc_paused():  # deepdiff allocates a lot; the collector would walk both caches each time
        return _diff_caches(a, b, a_label, b_label)


def _diff_caches(a: Cache, b: Cache, a_label: str, b_label: str) -> CacheDiff:
    old = {act.id: act for act in a.activities}
    new = {act.id: act for act in b.activities}
    b_owner: dict[str, Activity] | None = None
    a_owner: dict[str, Activity] | None = None
    b_tomb = {key: t for t in b.tombstones for key in t.record_keys()}
    a_tomb = {key: t for t in a.tombstones for key in t.record_keys()}
    removed: list[Removed] = []
    changed: list[Changed] = []
    unchanged = 0
    for ident, act in old.items():
        other = new.get(ident)
        if other is None:
            if ident in b_tomb:
                removed.append(
                    Removed(
                        id=ident,
                        start_time=act.start_time,
                        sport=act.sport,
                        fate="tombstoned",
                        reason=b_tomb[ident].reason,
                    )
                )
                continue
            if b_owner is None:
                b_owner = _owner_index(b)
            into = b_owner.get(ident)
            fate: Literal["absorbed", "dropped"] = "absorbed" if into is not None else "dropped"
            removed.append(
                Removed(
                    id=ident,
                    start_time=act.start_time,
                    sport=act.sport,
                    fate=fate,
                    into=into.id if into is not None else None,
                )
            )
        elif other is act or other == act:
            unchanged += 1
        else:
            changed.append(
                Changed(id=ident, start_time=other.start_time, sport=other.sport, fields=field_changes(act, other))
            )
    added: list[Added] = []
    for ident, act in new.items():
        if ident in old:
            continue
        note = None
        if ident in a_tomb:
            note = f"deleted (tombstoned) in {a_label}"
        else:
            if a_owner is None:
                a_owner = _owner_index(a)
            was = a_owner.get(ident)
            if was is not None:
                note = f"part of {was.id} in {a_label}"
        added.append(Added(id=ident, start_time=act.start_time, sport=act.sport, name=act.name, note=note))
    by_time = lambda x: (x.start_time, x.id)  # noqa: E731
    return CacheDiff(
        a=a_label,
        b=b_label,
        added=sorted(added, key=by_time),
        removed=sorted(removed, key=by_time),
        changed=sorted(changed, key=by_time),
        unchanged=unchanged,
        tombstones=(len(a.tombstones), len(b.tombstones)),
        links=(len(a.links), len(b.links)),
    )


def _counts(state: State) -> guard.Baseline:
    if state.baseline is not None:
        return state.baseline
    assert state.cache is not None
    return guard.make_baseline(state.cache, sha256=state.sha256, recorded_at="")


def diff_counts(a: State, b: State) -> CountsDiff:
    ca, cb = _counts(a), _counts(b)
    rows = [
        CountRow(what="activities", a=ca.activities, b=cb.activities),
        CountRow(what="records", a=ca.records, b=cb.records),
    ]
    for source in sorted(set(ca.per_source) | set(cb.per_source)):
        rows.append(CountRow(what=f"records {source}", a=ca.per_source.get(source, 0), b=cb.per_source.get(source, 0)))
    rows.append(CountRow(what="with avg_hr", a=ca.with_hr, b=cb.with_hr))
    rows.append(CountRow(what="with hr_splits", a=ca.with_hr_splits, b=cb.with_hr_splits))
    return CountsDiff(a=a.label, b=b.label, rows=rows)


def diff_states(a: State, b: State) -> CacheDiff | CountsDiff:
    if a.cache is not None and b.cache is not None:
        return diff_caches(a.cache, b.cache, a_label=a.label, b_label=b.label)
    return diff_counts(a, b)


def diff(paths: Paths, a: str = "latest", b: str = "current") -> CacheDiff | CountsDiff:
    """``healthcache diff A B``: read both states (no lock: saves replace by rename) and compare."""
    current = load_current(paths)
    return diff_states(resolve_state(paths, a, current), resolve_state(paths, b, current))


# --- rendering (plain text, shared by diff, restore --dry-run and rebuild) -----------


def _short(value: Any, width: int = 48) -> str:
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= width else text[: width - 3] + "..."


def summary_line(d: CacheDiff) -> str:
    s = d.summary()
    removed = f"{s['removed']} removed"
    if s["removed"]:
        removed += f" ({s['tombstoned']} tombstoned, {s['absorbed']} absorbed, {s['dropped']} dropped)"
    return f"{s['added']} added, {removed}, {s['changed']} changed, {s['unchanged']} unchanged"


def render(d: CacheDiff | CountsDiff, *, max_fields: int = 12, max_items: int = 200) -> str:
    """Human text; the JSON form is ``msgspec.to_builtins(d)``."""
    if isinstance(d, CountsDiff):
        lines = [f"{d.a} -> {d.b} ({d.note})"]
        width = max(len(row.what) for row in d.rows)
        for row in d.rows:
            delta = row.b - row.a
            lines.append(
                f"  {row.what:<{width}}  {row.a:>8}  {row.b:>8}  {delta:+d}"
                if delta
                else f"  {row.what:<{width}}  {row.a:>8}  {row.b:>8}"
            )
        return "\n".join(lines)
    lines = [f"{d.a} -> {d.b}: {summary_line(d)}"]
    if d.tombstones[0] != d.tombstones[1] or d.links[0] != d.links[1]:
        lines.append(f"tombstones {d.tombstones[0]} -> {d.tombstones[1]}, links {d.links[0]} -> {d.links[1]}")
    for x in d.added[:max_items]:
        lines.append(f"+ {x.id}  {x.start_time}  {x.sport}" + (f"  ({x.note})" if x.note else ""))
    for r in d.removed[:max_items]:
        why = {"tombstoned": f"tombstoned: {r.reason}", "absorbed": f"absorbed into {r.into}", "dropped": "DROPPED"}
        lines.append(f"- {r.id}  {r.start_time}  {r.sport}  ({why[r.fate]})")
    for c in d.changed[:max_items]:
        lines.append(f"~ {c.id}  {c.start_time}  {c.sport}")
        for f in c.fields[:max_fields]:
            if f.change == "changed":
                lines.append(f"    {f.path}: {_short(f.old)} -> {_short(f.new)}")
            elif f.change == "added":
                lines.append(f"    {f.path}: added {_short(f.new)}")
            else:
                lines.append(f"    {f.path}: removed (was {_short(f.old)})")
        if len(c.fields) > max_fields:
            lines.append(f"    ... and {len(c.fields) - max_fields} more changes (--json lists all)")
    hidden = max(0, len(d.added) - max_items) + max(0, len(d.removed) - max_items) + max(0, len(d.changed) - max_items)
    if hidden:
        lines.append(f"... and {hidden} more activities (--json lists all)")
    return "\n".join(lines)
