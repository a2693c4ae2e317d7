"""OS errors at any step are told plainly: the path, what failed, what is safe; exit 1, never a traceback.

Real faults on a real tiny tmpfs (disk full, no free inodes, read-only), and
injected ones for what a tmpfs cannot give on demand (EACCES as root, EDQUOT,
a state write failing after the cache was saved).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import Result

from healthcache import atomic
from healthcache.config import Paths
from healthcache.store import Store
from tests import factories
from tests.conftest import Run

VICTIM = "garmin:9000000000"  # the first activity of factories.cache


def _mount(where: Path, options: str) -> None:
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here (needs root or CAP_SYS_ADMIN): {done.stderr.strip()}")


@contextlib.contextmanager
def tmpfs(where: Path, options: str) -> Iterator[Path]:
    if shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs is not permitted here: no mount command")
    _mount(where, options)
    try:
        yield where
    finally:
        if subprocess.run(["umount", str(where)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(where)], capture_output=True)


def _seeded_home(root: Path, n: int = 20) -> Store:
    store = Store(Paths.resolve(root / "home"))
    with store.transaction() as tx:
        tx.save(factories.cache(n))
    return store


def _fill_space(folder: Path) -> None:
    """Write until the file system says it is full."""
    chunk = b"\0" * 4096
    with (folder / "filler").open("wb", buffering=0) as f, contextlib.suppress(OSError):
        while True:
            f.write(chunk)


def _fill_inodes(folder: Path) -> None:
    """Create empty files until there is no free inode left."""
    spare = folder / "inodes"
    with contextlib.suppress(OSError):
        spare.mkdir()
        for i in range(1_000_000):
            (spare / str(i)).touch()


def _told_plainly(result: Result, path: Path, what: str) -> None:
    assert result.exit_code == 1, result.output
    assert what in result.stderr and str(path) in result.stderr, result.stderr
    assert "Traceback" not in result.output and result.stdout == ""


# --------------------------------------------------------------------------- real faults on a tiny tmpfs


def test_disk_full_during_a_save_keeps_the_cache_byte_identical(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "fs", "size=1m,nr_inodes=4096") as fs:
        store = _seeded_home(fs)
        before = store.paths.cache.read_bytes()
        _fill_space(fs)
        result = Run(store.paths.home)("delete", VICTIM, "--reason", "x")
        _told_plainly(result, store.paths.cache, "No space left on device")
        assert "left exactly as it was" in result.stderr
        assert store.paths.cache.read_bytes() == before
        assert not [p for p in store.paths.tracking.iterdir() if p.name.startswith(atomic.TEMP_PREFIX)]
        # Space again: the same command works.
        (fs / "filler").unlink()
        assert Run(store.paths.home)("delete", VICTIM, "--reason", "x").exit_code == 0


def test_no_free_inodes_during_a_save_keeps_the_cache_byte_identical(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "fs", "size=8m,nr_inodes=64") as fs:
        store = _seeded_home(fs)
        before = store.paths.cache.read_bytes()
        _fill_inodes(fs)
        result = Run(store.paths.home)("delete", VICTIM, "--reason", "x")
        _told_plainly(result, store.paths.cache, "No space left on device")
        assert store.paths.cache.read_bytes() == before


def test_read_only_file_system_is_told_at_the_lock(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "fs", "size=1m") as fs:
        store = _seeded_home(fs)
        before = store.paths.cache.read_bytes()
        subprocess.run(["mount", "-o", "remount,ro", str(fs)], check=True)
        run = Run(store.paths.home)
        result = run("delete", VICTIM, "--reason", "x")
        _told_plainly(result, store.paths.lock, "Read-only file system")
        assert "Nothing was read or written" in result.stderr
        json_result = run("delete", VICTIM, "--reason", "x", "--json")
        assert json_result.exit_code == 1 and '"exit_code": 1' in json_result.stdout
        # Reading still works on a read-only disk.
        assert run("verify").exit_code == 0
        assert store.paths.cache.read_bytes() == before


# --------------------------------------------------------------------------- injected faults


def _fail_when(monkeypatch: pytest.MonkeyPatch, err: int, hit: Callable[[Path], bool]) -> None:
    """Make the atomic rename fail with ``err`` for the targets ``hit`` picks."""
    real = atomic._replace

    def replace(src: str | Path, dst: str | Path) -> None:
        if hit(Path(dst)):
            raise OSError(err, os.strerror(err), str(dst))
        real(src, dst)

    monkeypatch.setattr(atomic, "_replace", replace)


@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EROFS])
def test_cache_write_failure_is_told_with_the_path(
    store: Store, run: Run, monkeypatch: pytest.MonkeyPatch, err: int
) -> None:
    with store.transaction() as tx:
        tx.save(factories.cache(5))
    before = store.paths.cache.read_bytes()
    _fail_when(monkeypatch, err, lambda p: p == store.paths.cache)
    result = run("delete", VICTIM, "--reason", "x")
    _told_plainly(result, store.paths.cache, os.strerror(err))
    assert "left exactly as it was" in result.stderr
    assert store.paths.cache.read_bytes() == before


def test_index_write_failure_after_the_save_says_the_cache_was_saved(
    store: Store, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    with store.transaction() as tx:
        tx.save(factories.cache(5))
    _fail_when(monkeypatch, errno.ENOSPC, lambda p: p == store.paths.index)
    result = run("delete", VICTIM, "--reason", "x")
    _told_plainly(result, store.paths.index, "No space left on device")
    assert "The cache WAS saved" in result.stderr and "only the cache index" in result.stderr
    assert "Nothing is lost" in result.stderr
    monkeypatch.undo()
    cache = store.read().cache
    assert VICTIM not in {a.id for a in cache.activities}
    assert VICTIM in {t.id for t in cache.tombstones}


def test_state_write_failure_before_any_save_says_the_cache_was_not_changed(
    store: Store, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    with store.transaction() as tx:
        tx.save(factories.cache(5))
    before = store.paths.cache.read_bytes()
    _fail_when(monkeypatch, errno.ENOSPC, lambda p: p == store.paths.baseline)
    result = run("verify", "--baseline")
    _told_plainly(result, store.paths.baseline, "No space left on device")
    assert "The cache was not changed" in result.stderr
    assert store.paths.cache.read_bytes() == before


def test_lock_that_cannot_be_opened_is_told(store: Store, run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    with store.transaction() as tx:
        tx.save(factories.cache(3))
    store.paths.lock.unlink()
    real_open = os.open

    def deny(path: str | os.PathLike[str], *args: object, **kwargs: object) -> int:
        if Path(path) == store.paths.lock:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return real_open(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", deny)
    result = run("delete", VICTIM, "--reason", "x")
    _told_plainly(result, store.paths.lock, "Permission denied")


def test_an_unforeseen_os_error_is_a_message_not_a_traceback(
    store: Store, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    with store.transaction() as tx:
        tx.save(factories.cache(3))
    real = Path.read_bytes

    def unreadable(self: Path) -> bytes:
        if self == store.paths.cache:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", unreadable)
    result = run("dupes")
    _told_plainly(result, store.paths.cache, "Permission denied")
