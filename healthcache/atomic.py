"""The one way healthcache writes a file: all of it or none of it.

Temp file in the same folder, fsync, rename over the target, fsync the folder.
A crash at any point leaves either the old bytes or the new ones, never a mix,
and a failure leaves the old file byte-identical with no temp file behind.
Temp files a killed run left behind are swept by ``sweep_temp_files`` under the lock.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Callable
from pathlib import Path

TEMP_PREFIX = ".hc-tmp-"
DEFAULT_MODE = 0o600

# Test seams: fault injection replaces these to prove each step's failure is safe.
_write: Callable[[int, bytes | memoryview], int] = os.write
_fsync: Callable[[int], None] = os.fsync
_replace: Callable[[str | Path, str | Path], None] = os.replace


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


def save_atomic(path: Path, data: bytes, *, mode: int | None = None) -> None:
    """Replace ``path`` with ``data`` atomically and durably.

    ``mode`` defaults to the existing file's mode, or 0600 for a new file: the
    files we write hold personal health data or credentials.
    """
    path = Path(path)
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    final_mode = existing_mode(path) if mode is None else mode
    tmp = folder / f"{TEMP_PREFIX}{path.name}.{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()  # left by a killed run whose pid we now have
    old_link: Path | None = None
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        try:
            view = memoryview(data)
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
            with contextlib.suppress(FileNotFoundError):
                old_link.unlink()


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
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
                removed.append(entry)
    return removed
