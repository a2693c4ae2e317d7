"""One write lock (flock on a separate file) serialising every command that writes.

The lock file holds the holder's pid so a waiting or refused run can say who
has it.  flock is released by the kernel when the holder dies, so a killed run
never leaves a stale lock behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from healthcache import atomic
from healthcache.errors import LockBusy, StorageError

POLL_SECONDS = 0.05


def _holder(lock_path: Path) -> str | None:
    try:
        text = lock_path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None
    return text or None


@contextlib.contextmanager
def write_lock(
    lock_path: Path,
    *,
    timeout: float | None = 0.0,
    on_wait: Callable[[str | None], None] | None = None,
) -> Iterator[None]:
    """Hold the write lock for the block.

    ``timeout`` 0 gives up at once (cron), None waits forever, otherwise waits
    that many seconds; giving up raises ``LockBusy`` naming the holder's pid.
    ``on_wait`` is called once with the holder when we have to wait.
    """
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
    except OSError as exc:
        raise StorageError(
            lock_path,
            "take the write lock",
            exc,
            "Nothing was read or written. Check that the workspace is writable (and not full), then try again.",
        ) from exc
    try:
        deadline = None if timeout is None else time.monotonic() + timeout
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _holder(lock_path)
                if deadline is not None and time.monotonic() >= deadline:
                    raise LockBusy(lock_path, holder) from None
                if on_wait is not None and not told:
                    on_wait(holder)
                    told = True
                # Blocking flock cannot time out, so poll; only a waiting run pays this.
                time.sleep(POLL_SECONDS)
        # The pid is only a note for waiting runs: a full disk must not stop the lock.
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        try:
            with atomic.journal():
                yield
        finally:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
