"""``status``: a summary a person (or a monitoring script) reads at a glance.

It prefers the index written at the last save, when the file's size and mtime
still match it, so a status on a large cache does not parse the cache.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from healthcache import backup, guard
from healthcache.store import Store, read_baseline, read_index


def status(store: Store) -> dict[str, Any]:
    paths = store.paths
    out: dict[str, Any] = {"home": str(paths.home), "cache": str(paths.cache)}
    try:
        st = paths.cache.stat()
    except FileNotFoundError:
        st = None
    index = read_index(paths)
    if st is None:
        out.update(exists=False, activities=0, records=0, per_source={}, size_bytes=0, updated_at=None)
    elif index is not None and index.size == st.st_size and index.mtime_ns == st.st_mtime_ns:
        out.update(
            exists=True,
            activities=index.activities,
            records=index.records,
            per_source=index.per_source,
            size_bytes=st.st_size,
            updated_at=index.updated_at,
        )
    else:
        cache = store.read().cache
        total, per_source = guard.record_counts(cache)
        out.update(
            exists=True,
            activities=len(cache.activities),
            records=total,
            per_source=dict(sorted(per_source.items())),
            size_bytes=st.st_size,
            updated_at=cache.updated_at,
        )
    backups = backup.list_backups(paths.backups)
    out["backups"] = {"count": len(backups), "newest": backups[0].name if backups else None}
    baseline = read_baseline(paths)
    out["baseline"] = None if baseline is None else msgspec.to_builtins(baseline)
    out["sources"] = _source_states(paths.sync_state)
    return out


def _source_states(folder: Path) -> dict[str, Any]:
    """Each source's state file, summarised generically (sources own their formats)."""
    found: dict[str, Any] = {}
    if not folder.is_dir():
        return found
    for f in sorted(folder.glob("*.json")):
        if f.name == "cache-index.json":
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
