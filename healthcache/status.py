"""``status``: a summary a person (or a monitoring script) reads at a glance.

It prefers the index written at the last save, when the file's size and mtime
still match it, so a status on a large cache does not parse the cache.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec

from healthcache import backup, guard
from healthcache.cacheindex import current_index, newest_tombstones
from healthcache.importers.manifest import failing
from healthcache.model.records import Cache, Tombstone
from healthcache.store import Store, read_baseline


def status(store: Store) -> dict[str, Any]:
    paths = store.paths
    out: dict[str, Any] = {"home": str(paths.home), "cache": str(paths.cache)}
    try:
        st = paths.cache.stat()
    except FileNotFoundError:
        st = None
    index = current_index(paths) if st is not None else None
    if st is None:
        out.update(exists=False, size_bytes=0, updated_at=None, **_counts(0, 0, {}, {}, 0, []))
    elif index is not None and index.live_per_source is not None and index.tombstones is not None:
        out.update(
            exists=True,
            size_bytes=index.size,  # the file's size: the index is current
            updated_at=index.updated_at,
            **_counts(
                index.activities,
                index.records,
                index.per_source,
                index.live_per_source,
                index.tombstones,
                index.recent_tombstones,
            ),
        )
    else:
        cache = store.read().cache
        out.update(exists=True, size_bytes=st.st_size, updated_at=cache.updated_at, **summarise(cache))
    backups = backup.list_backups(paths.backups)
    out["backups"] = {"count": len(backups), "newest": backups[0].name if backups else None}
    baseline = read_baseline(paths)
    out["baseline"] = None if baseline is None else msgspec.to_builtins(baseline)
    out["sources"] = _source_states(paths.sync_state)
    out["next_sync"] = next_syncs(store)
    out["import_failures"] = [{"path": p, "reason": r} for p, r in failing(paths)]
    return out


def next_syncs(store: Store) -> dict[str, dict[str, Any]]:
    """Per API source: whether the next ``sync`` or ``run`` asks it, when it is due, and why (the smart skip)."""
    from healthcache.sources import registry
    from healthcache.sources.protocol import get_source
    from healthcache.sources.sync_state import SkipRule, decide_sync, load_state
    from healthcache.timeutil import utc_iso

    rule, now = SkipRule.of(store.config.sync), store.clock()
    out: dict[str, dict[str, Any]] = {}
    for name in registry.names():
        if not get_source(name).is_configured(store.paths):
            out[name] = {"due": False, "at": None, "reason": f"not set up; run healthcache auth {name}"}
            continue
        decision = decide_sync(load_state(store.paths, name), now, rule)
        at = utc_iso(decision.next_at) if decision.next_at is not None and not decision.sync else None
        out[name] = {"due": decision.sync, "at": at, "reason": decision.reason}
    return out


def summarise(cache: Cache) -> dict[str, Any]:
    """The counts ``status`` shows, from a parsed cache (the index holds the same)."""
    live, per_source = guard.live_and_known_counts(cache)
    total = sum(per_source.values())
    recent = newest_tombstones(cache.tombstones)
    return _counts(len(cache.activities), total, per_source, live, len(cache.tombstones), recent)


def _counts(
    activities: int,
    records: int,
    per_source: Mapping[str, int],
    live_per_source: Mapping[str, int],
    tombstones: int,
    recent: Sequence[Tombstone],
) -> dict[str, Any]:
    """Live records (held by activities) apart from tombstoned ones: ``records`` and
    ``per_source`` count both, as the guard and the baseline do."""
    live = sum(live_per_source.values())
    return {
        "activities": activities,
        "records": records,
        "per_source": dict(sorted(per_source.items())),
        "live_records": live,
        "live_per_source": dict(sorted(live_per_source.items())),
        "tombstones": {
            "count": tombstones,
            "records": records - live,
            "newest": [{"id": t.id, "deleted_at": t.deleted_at, "reason": t.reason} for t in recent],
        },
    }


# Bookkeeping that only spares work, not a source's state: the daily run's memo (``daily.STATE``) and
# the note of settled import listings (``importers.settled.STATE``).
_NOT_SOURCES = frozenset({"daily-run", "settled-imports"})


def _source_states(folder: Path) -> dict[str, Any]:
    """Each source's state file, summarised generically (sources own their formats)."""
    found: dict[str, Any] = {}
    if not folder.is_dir():
        return found
    for f in sorted(folder.glob("*.json")):
        if f.name == "cache-index.json" or f.stem in _NOT_SOURCES:
            continue
        try:
            doc = msgspec.json.decode(f.read_bytes())
        except (OSError, msgspec.DecodeError):
            found[f.stem] = {"error": "unreadable state file"}
            continue
        if isinstance(doc, dict):
            # Scalars as they are; collections (manifests, seen payloads) by their size.
            found[f.stem] = {
                k: v if isinstance(v, str | int | float | bool | None) else len(v)
                for k, v in doc.items()
                if not isinstance(v, list | dict) or v
            }
    return found
