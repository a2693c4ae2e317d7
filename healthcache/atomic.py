"""The one way healthcache writes a file: all of it or none of it.

Temp file in the same folder, fsync, rename over the target, fsync the folder.
A crash at any point leaves either the old bytes or the new ones, never a mix,
and a failure leaves the old file byte-identical with no temp file behind.
Temp files a killed run left behind are swept by ``sweep_temp_files`` under the lock.

An OS error at any step (disk full, no free inodes, read-only, permission)
becomes a ``StorageError`` naming the path and what is safe.  Files replaced
under the current write lock are noted (``saved_under_lock``), so a failure
after the cache was saved can say exactly that.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from pathlib import Path

import msgspec

from healthcache.errors import StorageError

TEMP_PREFIX = ".hc-tmp-"
DEFAULT_MODE = 0o600

# Test seams: fault injection replaces these to prove each step's failure is safe.
_write: Callable[[int, bytes | memoryview], int] = os.write
_fsync: Callable[[int], None] = os.fsync
_replace: Callable[[str | Path, str | Path], None] = os.replace

# Files replaced (and backups made) under the write lock now held; None outside a lock.
_saved: ContextVar[list[Path] | None] = ContextVar("healthcache_saved_under_lock", default=None)


@contextlib.contextmanager
def journal() -> Iterator[None]:
    """Note, for the block (the write lock's), every file the atomic path replaces."""
    token = _saved.set([])
    try:
        yield
    finally:
        _saved.reset(token)


def note_saved(path: Path) -> None:
    """Record that ``path`` now holds new content (the atomic path and backups call this)."""
    saved = _saved.get()
    if saved is not None:
        saved.append(Path(path))


def saved_under_lock() -> list[Path] | None:
    """Files written under the write lock now held, oldest first; None when no lock is held."""
    saved = _saved.get()
    return None if saved is None else list(saved)


CACHE_NAME = "unified-cache.json"


def what_is_safe(path: Path, what: str, consequence: str) -> str:
    """What is safe after ``path`` (``what``: the index, a manifest...) could not be written.

    Says whether the cache was saved earlier under this lock (and its backup),
    so "saved, but the bookkeeping failed" is never told as "nothing changed".
    """
    saved = saved_under_lock()
    if saved is None:
        return f"{path} was left as it was; {consequence}"
    at = next((i for i in range(len(saved) - 1, -1, -1) if saved[i].name == CACHE_NAME), None)
    if at is None:
        return f"The cache was not changed; {path} was left as it was; {consequence}"
    backups = [p for p in saved[:at] if p.name.startswith("unified-cache-")]  # of the file it replaced
    kept = f" (the previous file is kept as backup {backups[-1].name})" if backups else ""
    return f"The cache WAS saved{kept}; only {what} at {path} could not be written: {consequence}"


def _safe_default(path: Path, existed: bool) -> str:
    if path.name == CACHE_NAME:
        return (
            "The cache was left exactly as it was (nothing was lost); "
            "free space or fix the permissions, then run the command again."
        )
    return f"{path} was left as it was" if existed else f"{path} was not created"


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        _fsync(fd)
    finally:
        os.close(fd)


def existing_mode(path: Path, default: int = DEFAULT_MODE) -> int:
    """The permission bits a rewrite must keep: the file's own, else ``default``."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return default


def save_atomic(path: Path, data: bytes, *, mode: int | None = None, safe: str | None = None) -> None:
    """Replace ``path`` with ``data`` atomically and durably.

    ``mode`` defaults to the existing file's mode, or 0600 for a new file: the
    files we write hold personal health data or credentials.  An OS error
    raises ``StorageError`` (an ``OSError``) with ``safe``, or a default
    saying the file was left as it was.
    """
    prepare(path, data, mode=mode, safe=safe).commit()


class Prepared(msgspec.Struct):
    """``data`` written and fsynced to a temp file beside ``path``, not yet in its place.

    The two halves of ``save_atomic``, so that the writing and its fsync can
    run on a thread while the caller still checks what it writes: ``commit``
    puts the file in place (rename, fsync of the folder), ``discard`` removes
    it; nothing at ``path`` changes before ``commit``.
    """

    path: Path
    tmp: Path
    existed: bool
    safe: str | None = None

    def commit(self, *, release: Callable[[Path], None] | None = None) -> None:
        """Put the file in place.  ``release`` disposes of the link kept to the old bytes once the
        rename is durable (default: remove it now); freeing a big file's blocks takes a while,
        which a caller may spend on other work (it must see the link removed before it returns)."""
        try:
            _put_in_place(self.tmp, self.path, release or _remove)
        except StorageError:
            raise
        except OSError as exc:
            raise StorageError(self.path, "write", exc, self.safe or _safe_default(self.path, self.existed)) from exc
        note_saved(self.path)

    def discard(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.tmp.unlink()


# A file's content, whole or in parts written one after the other: a big file's final newline is
# written after it rather than copied onto it (``codec.encode_body``).
Chunks = bytes | tuple[bytes, ...]


def parts_of(data: Chunks) -> tuple[bytes, ...]:
    """``data``'s parts, in order."""
    return (data,) if isinstance(data, bytes) else data


def prepare(path: Path, data: Chunks, *, mode: int | None = None, safe: str | None = None) -> Prepared:
    """Write ``data`` to a temp file beside ``path`` and fsync it; ``commit`` the result to finish the save.

    Arguments and errors as ``save_atomic``'s; a failure leaves no temp file.
    """
    path = Path(path)
    existed = path.exists()
    try:
        tmp = _write_temp(path, data, mode)
    except StorageError:
        raise
    except OSError as exc:
        raise StorageError(path, "write", exc, safe or _safe_default(path, existed)) from exc
    return Prepared(path, tmp, existed, safe)


def ensure_folder(folder: Path) -> None:
    """Make ``folder`` (and its parents) if missing; a file standing in its place is said as such
    (mkdir would say "File exists", naming neither that it is a file nor what to do)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError as exc:
        raise NotADirectoryError(
            errno.ENOTDIR, f"{exc.filename or folder} is a file where a folder should be: move it aside", str(folder)
        ) from exc


def _write_temp(path: Path, data: Chunks, mode: int | None) -> Path:
    folder = path.parent
    ensure_folder(folder)
    final_mode = existing_mode(path) if mode is None else mode
    tmp = folder / f"{TEMP_PREFIX}{path.name}.{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()  # left by a killed run whose pid we now have
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        try:
            for part in parts_of(data):
                view = memoryview(part)
                while view:
                    written = _write(fd, view)
                    if written <= 0:
                        raise OSError(errno.EIO, "short write", str(tmp))
                    view = view[written:]
            if final_mode != 0o600:
                os.fchmod(fd, final_mode)
            _fsync(fd)
        finally:
            os.close(fd)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    return tmp


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _put_in_place(tmp: Path, path: Path, release: Callable[[Path], None] = _remove) -> None:
    folder = path.parent
    old_link: Path | None = None
    try:
        # Keep a link to the old bytes until the rename is durable, so a failing
        # folder fsync can put them back instead of leaving an uncertain state.
        old_link = _link_old(path, folder)
        _replace(tmp, path)
    except BaseException:
        for leftover in (tmp, old_link):
            if leftover is not None:
                with contextlib.suppress(FileNotFoundError):
                    leftover.unlink()
        raise
    try:
        _fsync_dir(folder)
    except BaseException:
        # Roll back to exactly what was there before: the old bytes, or no file.
        if old_link is not None:
            os.replace(old_link, path)
            old_link = None
        else:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        raise
    finally:
        if old_link is not None:
            release(old_link)


def _link_old(path: Path, folder: Path) -> Path | None:
    link = folder / f"{TEMP_PREFIX}{path.name}.{os.getpid()}.old"
    with contextlib.suppress(FileNotFoundError):
        link.unlink()
    try:
        os.link(path, link)
    except FileNotFoundError:
        return None
    except OSError:
        # Links impossible here (some network or FUSE file systems): no rollback
        # of the rename, but the write itself is still atomic.
        return None
    return link


def sweep_temp_files(folder: Path) -> list[Path]:
    """Remove temp files (and old-version links) of killed runs; call only under the write lock."""
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    for entry in folder.iterdir():
        if entry.name.startswith(TEMP_PREFIX):
            try:
                entry.unlink()
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise StorageError(
                    entry, "remove the leftover temporary file", exc, "Nothing was read or written yet."
                ) from exc
            removed.append(entry)
    return removed
