"""Backups: one immutable copy of the cache per save, named by time and content hash.

The name carries the sha256 prefix of the content, so ``verify --backups`` can
re-hash each file against its own name without any other bookkeeping.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from healthcache import atomic
from healthcache.atomic import _fsync_dir, existing_mode, save_atomic
from healthcache.config import RetentionPolicy
from healthcache.errors import StorageError
from healthcache.retention import Decision, Item, plan
from healthcache.timeutil import stamp

PREFIX = "unified-cache-"
# The stamp has microseconds so that saves within one second still sort in order.
_NAME = re.compile(r"^unified-cache-(\d{8}T\d{6}(?:\.\d{6})?Z)-([0-9a-f]{12})(\.corrupt)?\.json$")
HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class BackupInfo:
    path: Path
    when: datetime
    digest: str
    corrupt: bool = False

    @property
    def name(self) -> str:
        return self.path.name


def backup_name(when: datetime, sha256_hex: str, *, corrupt: bool = False) -> str:
    suffix = ".corrupt.json" if corrupt else ".json"
    return f"{PREFIX}{stamp(when, micro=True)}-{sha256_hex[:12]}{suffix}"


def parse_name(path: Path) -> BackupInfo | None:
    m = _NAME.match(path.name)
    if not m:
        return None
    fmt = "%Y%m%dT%H%M%S.%fZ" if "." in m.group(1) else "%Y%m%dT%H%M%SZ"
    when = datetime.strptime(m.group(1), fmt).replace(tzinfo=UTC)
    return BackupInfo(path=path, when=when, digest=m.group(2), corrupt=bool(m.group(3)))


def list_backups(folder: Path, *, include_corrupt: bool = False) -> list[BackupInfo]:
    """Backups newest first (by the stamp in the name, then name)."""
    if not folder.is_dir():
        return []
    found = [b for p in folder.iterdir() if (b := parse_name(p)) is not None]
    if not include_corrupt:
        found = [b for b in found if not b.corrupt]
    found.sort(key=lambda b: (b.when, b.name), reverse=True)
    return found


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(HASH_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def make_backup(cache_path: Path, folder: Path, sha256_hex: str, when: datetime, *, corrupt: bool = False) -> Path:
    """Preserve the current cache file under ``folder`` before it is replaced.

    A hard link costs nothing because the cache is only ever replaced by rename,
    never modified in place; where links are impossible, the bytes are copied
    through the atomic save path.
    """
    dest = folder / backup_name(when, sha256_hex, corrupt=corrupt)
    try:
        _link_or_copy(cache_path, folder, dest)
    except OSError as exc:
        cause = exc.cause if isinstance(exc, StorageError) else exc
        raise StorageError(
            dest,
            "back up the cache to",
            cause,
            f"The cache {cache_path} was not changed: no save happens without its backup.",
        ) from cause
    atomic.note_saved(dest)
    return dest


def _link_or_copy(cache_path: Path, folder: Path, dest: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        # Same second, same content: the backup we want is already there.
        return
    try:
        os.link(cache_path, dest)
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EACCES):
            raise
        save_atomic(dest, cache_path.read_bytes(), mode=existing_mode(cache_path))
    else:
        _fsync_dir(folder)


def find(folder: Path, sha256_hex: str) -> Path | None:
    """A kept backup of exactly this content (by the hash in its name), if any."""
    for info in list_backups(folder):
        if sha256_hex.startswith(info.digest):
            return info.path
    return None


def write_backup(folder: Path, data: bytes, sha256_hex: str, when: datetime, mode: int | None = None) -> Path:
    """Keep ``data`` (a state just saved) as a backup of its own, through the atomic save path."""
    dest = folder / backup_name(when, sha256_hex)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        save_atomic(dest, data, mode=mode)
    except OSError as exc:
        cause = exc.cause if isinstance(exc, StorageError) else exc
        safe = atomic.what_is_safe(
            dest, "the backup copy of the state just saved", "the next save keeps a copy again; nothing is lost."
        )
        raise StorageError(dest, "write the backup", cause, safe) from cause
    return dest


def verify_backups(folder: Path) -> list[tuple[BackupInfo, str]]:
    """Re-hash every backup against its name; returns (backup, problem) pairs."""
    problems: list[tuple[BackupInfo, str]] = []
    for info in list_backups(folder, include_corrupt=True):
        try:
            digest = file_sha256(info.path)
        except OSError as exc:
            problems.append((info, f"cannot read: {exc.strerror}"))
            continue
        if not digest.startswith(info.digest):
            problems.append((info, f"content hash {digest[:12]} does not match its name"))
    return problems


def remove_backups(paths: list[Path]) -> None:
    try:
        for p in paths:
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
        if paths:
            _fsync_dir(paths[0].parent)
    except OSError as exc:
        where = Path(exc.filename) if exc.filename else paths[0].parent
        raise StorageError(
            where,
            "remove the old backup",
            exc,
            atomic.what_is_safe(where, "pruning old backups", "the old backups stay until a later prune."),
        ) from exc


def prune(folder: Path, policy: RetentionPolicy, *, dry_run: bool = False) -> tuple[list[Decision], list[Path]]:
    """Apply the retention policy to the backups in ``folder``; call under the write lock.

    Returns every decision (newest first) and the files removed, or that a dry
    run would remove.
    """
    items = list_backups(folder)
    by_name = {b.name: b for b in items}
    decisions = plan([Item(b.name, b.when) for b in items], policy)
    doomed = [by_name[d.item.name].path for d in decisions if not d.keep]
    if not dry_run:
        remove_backups(doomed)
    return decisions, doomed
