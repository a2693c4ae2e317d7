"""The one atomic save path: every failure leaves the old file byte-identical and no temp file."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from healthcache import atomic
from healthcache.atomic import TEMP_PREFIX, save_atomic, sweep_temp_files
from healthcache.errors import IntegrityRefused
from healthcache.store import Store
from tests import factories


def _fail(err: int) -> Callable[..., None]:
    def boom(*args: object, **kwargs: object) -> None:
        raise OSError(err, os.strerror(err))

    return boom


STEPS = ["write", "fsync", "rename", "dir_fsync"]


def _inject(monkeypatch: pytest.MonkeyPatch, step: str, err: int) -> None:
    target = {"write": "_write", "fsync": "_fsync", "rename": "_replace", "dir_fsync": "_fsync_dir"}[step]
    monkeypatch.setattr(atomic, target, _fail(err))


def _leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.startswith(TEMP_PREFIX)]


@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EIO])
@pytest.mark.parametrize("step", STEPS)
def test_failure_at_each_step_keeps_old_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: str, err: int
) -> None:
    target = tmp_path / "state.json"
    save_atomic(target, b'{"old": true}\n')
    before = target.read_bytes()
    _inject(monkeypatch, step, err)
    with pytest.raises(OSError) as info:
        save_atomic(target, b'{"new": true}\n' * 1000)
    assert info.value.errno == err
    assert target.read_bytes() == before
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("step", STEPS)
def test_failure_when_creating_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: str) -> None:
    target = tmp_path / "new.json"
    _inject(monkeypatch, step, errno.ENOSPC)
    with pytest.raises(OSError):
        save_atomic(target, b"{}")
    assert not target.exists()
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EIO])
@pytest.mark.parametrize("step", STEPS)
def test_cache_save_failure_keeps_cache_and_index(
    store: Store, monkeypatch: pytest.MonkeyPatch, step: str, err: int
) -> None:
    with store.transaction() as tx:
        tx.save(factories.cache(5))
    cache_before = store.paths.cache.read_bytes()
    with store.transaction() as tx:
        new = factories.cache(6)
        _inject(monkeypatch, step, err)
        with pytest.raises(OSError):
            tx.save(new)
    monkeypatch.undo()
    assert store.paths.cache.read_bytes() == cache_before
    assert _leftovers(store.paths.tracking) == []
    assert len(store.read().cache.activities) == 5


def test_short_writes_are_completed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = os.write
    monkeypatch.setattr(atomic, "_write", lambda fd, data: real(fd, bytes(data[:7])))
    save_atomic(tmp_path / "f", b"0123456789" * 100)
    assert (tmp_path / "f").read_bytes() == b"0123456789" * 100


def test_new_files_are_private_and_modes_are_kept(tmp_path: Path) -> None:
    f = tmp_path / "cache.json"
    save_atomic(f, b"1")
    assert stat.S_IMODE(f.stat().st_mode) == 0o600
    f.chmod(0o640)
    save_atomic(f, b"2")
    assert stat.S_IMODE(f.stat().st_mode) == 0o640
    assert f.read_bytes() == b"2"


def test_temp_files_of_killed_runs_are_swept_under_the_lock(store: Store) -> None:
    store.paths.tracking.mkdir(parents=True)
    stale = store.paths.tracking / f"{TEMP_PREFIX}unified-cache.json.99999"
    stale.write_bytes(b"half a file")
    assert sweep_temp_files(store.paths.tracking) == [stale]
    stale.write_bytes(b"half a file")
    with store.transaction():
        assert not stale.exists()


def test_refused_save_writes_nothing(store: Store, seeded: Callable[[int], object]) -> None:
    seeded(5)
    before = store.paths.cache.read_bytes()
    backups_before = sorted(store.paths.backups.iterdir()) if store.paths.backups.exists() else []
    with store.transaction() as tx, pytest.raises(IntegrityRefused):
        tx.save(factories.cache(4))
    assert store.paths.cache.read_bytes() == before
    after = sorted(store.paths.backups.iterdir()) if store.paths.backups.exists() else []
    assert after == backups_before
