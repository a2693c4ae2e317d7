"""Backups: one immutable copy of the cache per save, named by time and content hash.

The name carries the sha256 prefix of the content, so ``verify --backups`` can
re-hash each file against its own name without any other bookkeeping.

The newest backup stays plain JSON: it is the state last saved, compared with
the cache on every outside-edit check.  Every older one is stored compressed
(``.json.zst``, zstd), named still by the hash of its *uncompressed* content,
so the same re-hash proves it.  ``read_bytes`` reads either form; every reader
of backups goes through it.  Compression writes the ``.zst`` atomically and
only then removes the plain file: a crash leaves one form or both, never none.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import IO, Any

import zstandard

from healthcache import atomic
from healthcache.atomic import _fsync_dir, existing_mode, save_atomic
from healthcache.background import in_background
from healthcache.config import RetentionPolicy
from healthcache.errors import CorruptInput, StorageError
from healthcache.retention import Decision, Item, plan
from healthcache.timeutil import stamp

PREFIX = "unified-cache-"
# The stamp has microseconds so that saves within one second still sort in order.
_NAME = re.compile(r"^unified-cache-(\d{8}T\d{6}(?:\.\d{6})?Z)-([0-9a-f]{12})(\.corrupt)?\.json(\.zst)?$")
HASH_CHUNK = 1 << 20
ZST_CHUNK = 1 << 16  # compressed bytes read at a time: about 1.4 MB of content at the ratio a cache gets
ZST = ".zst"
# zstd level 1: on a cache it compresses as well as level 3 (21.5x against 20.0x on bench caches) in
# about three quarters of the time, and a save waits for it; bench/bench_backups.py compares levels
# and gzip/lzma.
ZSTD_LEVEL = 1


@dataclass(frozen=True)
class BackupInfo:
    path: Path
    when: datetime
    digest: str
    corrupt: bool = False
    compressed: bool = False

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def plain_path(self) -> Path:
        """Where the uncompressed form of this backup is (or was) kept."""
        return self.path.with_name(self.path.name.removesuffix(ZST))

    @property
    def zst_path(self) -> Path:
        return self.plain_path.with_name(self.plain_path.name + ZST)


def backup_name(when: datetime, sha256_hex: str, *, corrupt: bool = False) -> str:
    suffix = ".corrupt.json" if corrupt else ".json"
    return f"{PREFIX}{stamp(when, micro=True)}-{sha256_hex[:12]}{suffix}"


def parse_name(path: Path) -> BackupInfo | None:
    m = _NAME.match(path.name)
    if not m:
        return None
    fmt = "%Y%m%dT%H%M%S.%fZ" if "." in m.group(1) else "%Y%m%dT%H%M%SZ"
    when = datetime.strptime(m.group(1), fmt).replace(tzinfo=UTC)
    return BackupInfo(path=path, when=when, digest=m.group(2), corrupt=bool(m.group(3)), compressed=bool(m.group(4)))


def list_backups(folder: Path, *, include_corrupt: bool = False) -> list[BackupInfo]:
    """Backups newest first (by the stamp in the name, then name).

    A backup found in both forms (a crash between writing its ``.zst`` and
    removing the plain file) is listed once, as its plain file.
    """
    if not folder.is_dir():
        return []
    by_name: dict[str, BackupInfo] = {}
    for p in folder.iterdir():
        b = parse_name(p)
        if b is None or (b.corrupt and not include_corrupt):
            continue
        key = b.plain_path.name
        if key not in by_name or by_name[key].compressed:
            by_name[key] = b
    found = list(by_name.values())
    found.sort(key=lambda b: (b.when, b.plain_path.name), reverse=True)
    return found


def describe_backups(folder: Path) -> list[dict[str, Any]]:
    """``backups list``: each backup (corrupt ones kept aside included), its size on disk and its content's size."""
    rows: list[dict[str, Any]] = []
    for b in list_backups(folder, include_corrupt=True):
        try:
            size, content = b.path.stat().st_size, content_size(b.path)
        except OSError:
            continue  # pruned since it was listed
        rows.append(
            {
                "name": b.name,
                "time": b.when.isoformat(),
                "size_bytes": size,
                "content_bytes": content,
                "compressed": b.compressed,
                "corrupt": b.corrupt,
            }
        )
    return rows


def where_now(path: Path) -> Path:
    """A backup's file now: ``path``, or its ``.zst`` once compressed."""
    zst = path.with_name(path.name + ZST)
    return zst if not is_compressed(path) and not path.exists() and zst.exists() else path


def is_compressed(path: Path) -> bool:
    return path.name.endswith(ZST)


def read_bytes(path: Path) -> bytes:
    """A backup's (or the cache's) content, whatever its form: the one way backups are read.

    A ``.zst`` file that does not decompress is ``CorruptInput``; a missing
    file raises ``FileNotFoundError`` as ``Path.read_bytes`` does.
    """
    if not is_compressed(path):
        return path.read_bytes()
    with path.open("rb") as f:
        return b"".join(_decompressed_chunks(f, path))


def _decompressed_chunks(f: IO[bytes], path: Path) -> Iterator[bytes]:
    """The content of a ``.zst`` backup, frame after frame; a file whose last frame does not end (cut
    short by a full disk or a copy) is refused as truncated, never read as the part that decompressed."""
    frame = zstandard.ZstdDecompressor().decompressobj()
    started = False
    try:
        while data := f.read(ZST_CHUNK):
            while data:
                started = True
                if chunk := frame.decompress(data):
                    yield chunk
                data = frame.unused_data if frame.eof else b""
                if frame.eof:
                    frame, started = zstandard.ZstdDecompressor().decompressobj(), False
    except zstandard.ZstdError as exc:
        raise CorruptInput(path, f"compressed backup does not decompress: {exc}") from exc
    if started:
        raise CorruptInput(
            path,
            "compressed backup is truncated (its zstd frame does not end): healthcache verify --backups "
            "lists the others, and restore takes another",
        )


def content_size(path: Path) -> int | None:
    """The uncompressed size of a backup: its file size, or what its zstd header records."""
    if not is_compressed(path):
        return path.stat().st_size
    with path.open("rb") as f:
        head = f.read(18)  # the largest zstd frame header
    try:
        size = zstandard.frame_content_size(head)
    except zstandard.ZstdError:
        return None
    return size if size >= 0 else None


def file_sha256(path: Path) -> str:
    """The sha256 of the content (uncompressed, for a ``.zst`` backup)."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        chunks = _decompressed_chunks(f, path) if is_compressed(path) else iter(lambda: f.read(HASH_CHUNK), b"")
        for chunk in chunks:
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
        dest = _link_or_copy(cache_path, folder, dest)
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


def _link_or_copy(cache_path: Path, folder: Path, dest: Path) -> Path:
    atomic.ensure_folder(folder)
    for existing in (dest, dest.with_name(dest.name + ZST)):
        if existing.exists():
            # Same moment, same content: the backup we want is already there.
            return existing
    try:
        os.link(cache_path, dest)
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EACCES):
            raise
        save_atomic(dest, cache_path.read_bytes(), mode=existing_mode(cache_path))
    else:
        _fsync_dir(folder)
    return dest


def find(folder: Path, sha256_hex: str) -> Path | None:
    """A kept backup of exactly this content (by the hash in its name), if any."""
    for info in list_backups(folder):
        if sha256_hex.startswith(info.digest):
            return info.path
    return None


def prepare_backup(
    folder: Path, data: atomic.Chunks, sha256_hex: str, when: datetime, mode: int | None = None
) -> atomic.Prepared:
    """Keep ``data`` (a state being saved) as a backup of its own: written and fsynced beside its place
    (``atomic.prepare``); ``commit`` the result once the state is saved."""
    atomic.ensure_folder(folder)
    return atomic.prepare(folder / backup_name(when, sha256_hex), data, mode=mode)


def backup_failed(dest: Path, exc: OSError) -> StorageError:
    """The error for a copy of the state just saved that could not be kept, saying what is safe *now*."""
    cause = exc.cause if isinstance(exc, StorageError) else exc
    safe = atomic.what_is_safe(
        dest, "the backup copy of the state just saved", "the next save keeps a copy again; nothing is lost."
    )
    return StorageError(dest, "write the backup", cause, safe)


def verify_backups(folder: Path) -> list[tuple[BackupInfo, str]]:
    """Re-hash every backup against its name; returns (backup, problem) pairs."""
    problems: list[tuple[BackupInfo, str]] = []
    for info in list_backups(folder, include_corrupt=True):
        try:
            digest = file_sha256(info.path)
        except OSError as exc:
            problems.append((info, f"cannot read: {exc.strerror}"))
            continue
        except CorruptInput as exc:
            problems.append((info, exc.reason))
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


def compressed_form(data: atomic.Chunks) -> bytes | None:
    """``data`` as one zstd frame (content size and checksum in it), or None if it
    does not decompress back to exactly ``data``: then the backup stays plain."""
    parts = atomic.parts_of(data)
    size = sum(map(len, parts))
    try:
        frame = zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_checksum=True).compressobj(size=size)
        blob = b"".join([*(frame.compress(part) for part in parts), frame.flush()])
        same = _decompresses_to(blob, parts)
    except zstandard.ZstdError:  # compression only saves space: the backup stays plain, as it is
        return None
    return blob if same else None


def _decompresses_to(blob: bytes, parts: tuple[bytes, ...]) -> bool:
    """Whether ``blob`` decompresses to ``parts`` one after the other: compared a megabyte at a time,
    so proving a 250 MB backup does not first build a 250 MB copy of it."""
    i, at = 0, 0  # the part, and the position in it, that the next decompressed byte must equal
    for chunk in zstandard.ZstdDecompressor().read_to_iter(blob, write_size=1 << 20):
        view = memoryview(chunk)
        while view:
            while i < len(parts) and at == len(parts[i]):
                i, at = i + 1, 0
            if i == len(parts):
                return False  # longer than the parts
            n = min(len(parts[i]) - at, len(view))
            if not parts[i].startswith(view[:n], at):  # bytes.startswith compares with memcmp
                return False
            at, view = at + n, view[n:]
    while i < len(parts) and at == len(parts[i]):
        i, at = i + 1, 0
    return i == len(parts)  # and not shorter


def compress_in_background(data: atomic.Chunks) -> Callable[[], bytes | None]:
    """Start ``compressed_form(data)`` on a thread (zstd releases the GIL); call the result to wait for it.

    A save starts this for the state it replaces, which becomes the second
    newest backup, so the compression overlaps the save's own work.
    """
    return in_background(partial(compressed_form, data), name="healthcache-compress")


def compress(info: BackupInfo, blob: bytes | None = None) -> Path | None:
    """Store a plain backup compressed; returns the ``.zst`` file, or None when it stays plain.

    ``blob`` is its content compressed already (``compressed_form``) when the
    caller held the content.  Otherwise the file is read and must hash to its
    name: a backup that does not is left exactly as it is for ``verify
    --backups`` to name.  The ``.zst`` is written atomically (and fsynced)
    before the plain file is removed, so a crash at any point leaves the
    backup readable in at least one form.
    """
    if info.compressed or info.corrupt:
        return None
    plain, dest = info.plain_path, info.zst_path
    try:
        if blob is None:
            data = plain.read_bytes()
            if not hashlib.sha256(data).hexdigest().startswith(info.digest):
                return None
            blob = compressed_form(data)
            if blob is None:
                return None
        save_atomic(dest, blob, mode=existing_mode(plain))
        plain.unlink()
        _fsync_dir(plain.parent)
    except OSError as exc:
        cause = exc.cause if isinstance(exc, StorageError) else exc
        safe = atomic.what_is_safe(
            dest, "a compressed backup", f"{plain.name} stays uncompressed until a later prune; nothing is lost."
        )
        raise StorageError(dest, "compress the backup", cause, safe) from cause
    return dest


def prune(
    folder: Path,
    policy: RetentionPolicy,
    *,
    dry_run: bool = False,
    blob_for: Callable[[BackupInfo], bytes | None] | None = None,
    prove: bool = False,
) -> tuple[list[Decision], list[Path]]:
    """Apply the retention policy to the backups in ``folder``, then compress every kept one but the newest.

    Call under the write lock.  Returns every decision (newest first) and the
    files removed, or that a dry run would remove (a dry run compresses
    nothing).  ``blob_for`` may hand over a backup's compressed content when
    the caller holds it, sparing a read and a compression.  ``prove`` (the
    ``backups prune`` command) re-hashes every backup first, so that one that
    no longer holds its content never keeps a slot while good ones are removed;
    the prune after each save does not (each backup was proven when written).
    """
    items = list_backups(folder)
    damaged = {info.name: why for info, why in verify_backups(folder)} if prove else {}
    by_name = {b.name: b for b in items}
    decisions = plan([Item(b.name, b.when) for b in items if b.name not in damaged], policy)
    # A damaged backup keeps no slot (another takes it) and is not removed: verify --backups names it.
    decisions += [
        Decision(Item(b.name, b.when), keep=True, rule="damaged, not counted", index=None)
        for b in items
        if b.name in damaged
    ]
    decisions.sort(key=lambda d: d.item.when, reverse=True)
    doomed_infos = [by_name[d.item.name] for d in decisions if not d.keep]
    doomed = [b.path for b in doomed_infos]
    if not dry_run:
        # Both forms of a backup caught mid-compression go together.
        remove_backups([p for b in doomed_infos for p in (b.plain_path, b.zst_path)])
        gone = {b.name for b in doomed_infos}
        for info in [b for b in items if b.name not in gone][1:]:
            compress(info, None if blob_for is None else blob_for(info))
    return decisions, doomed
