"""Per-source state files in tracking/sync_state/: cursors, last sync, manifests.

Read without the lock (a stale read only costs a redundant fetch); written only
under the write lock (inside a store transaction, or holding the lock alone when
there is nothing to merge), always through the atomic save path.
"""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

from healthcache import atomic
from healthcache.config import Paths
from healthcache.errors import CorruptInput, StorageError

INDEX_NAME = "cache-index.json"
BASELINE_NAME = ".data-integrity-baseline.json"

FileKey = tuple[int, int, int, int]


def file_key(path: str | os.PathLike[str]) -> FileKey | None:
    """What tells one version of a file from another without reading it: (inode, size, mtime, ctime).
    A write through the atomic path (a new inode) always changes it.  None when the file is absent."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def load[T](paths: Paths, name: str, kind: type[T], default: T) -> T:
    """The state document ``sync_state/<name>.json``, or ``default`` when absent."""
    path = paths.state_file(name)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return default
    try:
        return msgspec.json.decode(data, type=kind)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) as exc:
        raise CorruptInput(
            path,
            f"state file is unreadable: {exc}",
            hint=f"Delete {path}: it is only bookkeeping, which the next run writes afresh (the cache is not affected).",
        ) from exc


def load_hint[T](paths: Paths, name: str, kind: type[T], default: T) -> tuple[T, str | None]:
    """A state document that is only a hint: an unreadable one (garbled, empty, wrong types) is read as
    ``default``, with why it could not be read, so that the work it would have saved is done again.
    The caller rewrites it through ``save`` when it next records what it knows."""
    try:
        return load(paths, name, kind, default), None
    except CorruptInput as exc:
        return default, exc.reason.removeprefix("state file is unreadable: ")
    except OSError as exc:  # a folder in its place, no permission: as unreadable, and the save says why
        return default, exc.strerror or str(exc)


def shown(paths: Paths, path: Path) -> str:
    """A state file as a notice names it: relative to the home when it is inside it."""
    try:
        return str(path.relative_to(paths.home))
    except ValueError:
        return str(path)


def describe(path: Path) -> tuple[str, str]:
    """What a state file is, and what its write failing means: (what, consequence)."""
    if path.name == INDEX_NAME:
        return "the cache index", "it is only a hint; the next run reads the cache in full once. Nothing is lost."
    if path.name == BASELINE_NAME:
        return "the baseline", "the previous baseline stands; record it again with: healthcache verify --baseline"
    return (
        f"the {path.stem} state (cursor, last sync, import manifest)",
        "the next sync or import fetches or reads those activities again and finds them merged; nothing is lost.",
    )


def save(path: Path, value: object) -> None:
    """Write a state document (cursor, manifest, baseline, index); the caller holds the write lock.

    A failure says what is safe, and whether the cache was saved before it
    under the same lock (``atomic.what_is_safe``).
    """
    try:
        from healthcache import codec  # reading state needs only msgspec; the canonical form is codec's

        atomic.save_atomic(path, codec.encode_json(value))
    except StorageError as exc:
        raise exc.with_safe(atomic.what_is_safe(path, *describe(path))) from exc.cause
