"""The save path's writing ahead (issue 13 point 3): the new cache is written and fsynced to a temp
file on a thread while its bytes are validated, and put in place only after; then its copy is kept
as the newest backup, as before.

* Nothing is in place before validation passes; a save refused at any check leaves no temp file.
* A loaded activity edited in place, however deep, is still written (or refused), never dropped.
* A SIGKILL at any I/O step leaves the cache old or new, every backup whole, and never a kept
  copy of a state that did not become the cache.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest

from healthcache import atomic, backup, codec
from healthcache import store as store_module
from healthcache.atomic import TEMP_PREFIX
from healthcache.config import Paths
from healthcache.errors import HealthcacheError, StorageError
from healthcache.model.records import Activity, Cache
from healthcache.store import Store, Transaction, load_file
from tests import factories
from tests.procs import KILL_AT_IO_STEP

ROOT = Path(__file__).resolve().parents[1]


def _temp_files(store: Store) -> list[str]:
    return [
        p.name
        for d in (store.paths.tracking, store.paths.backups)
        if d.exists()
        for p in d.iterdir()
        if p.name.startswith(TEMP_PREFIX)
    ]


def test_a_loaded_activitys_raw_payload_edited_in_place_deep_down_is_written(
    store: Store, seeded: Callable[[int], Cache]
) -> None:
    """Activity structs and their payload dicts are mutable: the very objects loaded, edited in
    place, must be saved as edited (object identity proves nothing about content)."""
    seeded(20)
    with store.transaction() as tx:
        act = tx.cache.activities[7]
        act.raw["garmin"]["activityType"]["typeKey"] = "trail_running"  # two dicts deep in the payload
        tx.cache.activities[3].raw["garmin"]["lapCount"] = 99
        result = tx.save(tx.cache)  # the same objects, in the same order
    assert result.changed
    on_disk = load_file(store.paths.cache).cache
    assert on_disk.activities[7].raw["garmin"]["activityType"]["typeKey"] == "trail_running"
    assert on_disk.activities[3].raw["garmin"]["lapCount"] == 99
    assert store.read().cache == on_disk
    newest = backup.list_backups(store.paths.backups)[0]
    assert newest.path.read_bytes() == store.paths.cache.read_bytes()


def test_the_new_file_and_its_backup_copy_are_written_and_fsynced_while_its_bytes_are_validated(
    store: Store, seeded: Callable[[int], Cache], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: validation, then the cache's write and fsync, then the copy kept as the newest backup.
    Now both temp files are written and fsynced (on threads) while validation runs, and nothing is in
    place until it has passed."""
    seeded(50)
    before = store.paths.cache.read_bytes()
    backups_before = sorted(p.name for p in store.paths.backups.iterdir())
    cache_synced, copy_synced = threading.Event(), threading.Event()
    real_fsync, real_validate = atomic._fsync, Transaction._validate

    def fsync(fd: int) -> None:
        real_fsync(fd)
        name = os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))
        if name.startswith(f"{TEMP_PREFIX}unified-cache.json."):
            cache_synced.set()
        elif name.startswith(TEMP_PREFIX) and "unified-cache" in name:
            copy_synced.set()

    seen: dict[str, object] = {}

    def validate(self: Transaction, data: bytes, final: Cache) -> set[str] | None:
        # Waits for both fsyncs (threads do them); before the change nobody would.
        seen["synced_during_validation"] = cache_synced.wait(timeout=20) and copy_synced.wait(timeout=20)
        seen["cache_untouched"] = store.paths.cache.read_bytes() == before
        seen["backups_untouched"] = sorted(p.name for p in store.paths.backups.iterdir() if p.name[0] != ".")
        seen["temp_files"] = len(_temp_files(store))
        return real_validate(self, data, final)

    monkeypatch.setattr(atomic, "_fsync", fsync)
    monkeypatch.setattr(Transaction, "_validate", validate)
    with store.transaction() as tx:
        result = tx.save(factories.with_new(tx.cache, "v"))
    assert seen == {
        "synced_during_validation": True,
        "cache_untouched": True,
        "backups_untouched": [n for n in backups_before if n[0] != "."],
        "temp_files": 2,
    }
    assert result.kept is not None and result.kept.read_bytes() == store.paths.cache.read_bytes()
    assert len(load_file(store.paths.cache).cache.activities) == 53
    assert _temp_files(store) == []


def test_the_backup_copy_is_put_in_place_after_the_cache_and_a_refused_save_leaves_no_temp_file(
    store: Store, seeded: Callable[[int], Cache], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The copy written ahead keeps the crash order: the cache is renamed into place first, then its copy."""
    seeded(20)
    order: list[str] = []
    real_replace = atomic._replace

    def replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        order.append("backup" if Path(dst).parent == store.paths.backups else Path(dst).name)
        real_replace(src, dst)

    monkeypatch.setattr(atomic, "_replace", replace)
    with store.transaction() as tx:
        tx.save(factories.with_new(tx.cache, "w"))
    assert order[:2] == ["unified-cache.json", "backup"]  # then the index and the compressed replaced state

    def refuse(self: Transaction, data: bytes, final: Cache) -> set[str] | None:
        raise HealthcacheError("refusing to save: test")

    monkeypatch.setattr(Transaction, "_validate", refuse)
    kept = sorted(store.paths.backups.iterdir())
    with pytest.raises(HealthcacheError), store.transaction() as tx:
        tx.save(factories.with_new(tx.cache, "x"))
    assert _temp_files(store) == []
    assert sorted(store.paths.backups.iterdir()) == kept


def test_the_replaced_files_blocks_are_freed_beside_the_rest_of_the_save(
    store: Store, seeded: Callable[[int], Cache], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The link kept to the old bytes until the rename is durable is removed on a thread (freeing a
    big file's blocks is mostly waiting), and is gone when the save returns."""
    seeded(30)
    removed: list[tuple[str, bool]] = []
    real_unlink = Path.unlink

    def unlink(self: Path, missing_ok: bool = False) -> None:
        if self.name == f"{TEMP_PREFIX}unified-cache.json.{os.getpid()}.old" and self.exists():
            removed.append((self.name, threading.current_thread() is threading.main_thread()))
        real_unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", unlink)
    with store.transaction() as tx:
        tx.save(factories.with_new(tx.cache, "u"))
        assert _temp_files(store) == []
    assert removed == [(f"{TEMP_PREFIX}unified-cache.json.{os.getpid()}.old", False)]


def test_the_loaded_bytes_are_hashed_beside_their_parse(
    store: Store, seeded: Callable[[int], Cache], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: hash, then parse.  Now the hash runs on a thread while the bytes are parsed; the
    trust decision (the index's hash) waits for it, so a file not known as ours is still proven."""
    seeded(30)
    hashing = threading.Event()
    on_main: list[bool] = []

    def sha(data: bytes) -> str:
        on_main.append(threading.current_thread() is threading.main_thread())
        hashing.set()
        return hashlib.sha256(data).hexdigest()

    overlapped: list[bool] = []
    real_decoder = codec._decoder

    class Decoder:
        def decode(self, data: bytes) -> Cache:
            overlapped.append(hashing.wait(timeout=20))
            return real_decoder.decode(data)

    monkeypatch.setattr(store_module, "_sha256", sha, raising=False)
    monkeypatch.setattr(codec, "_decoder", Decoder())
    loaded = store.read()
    assert on_main == [False] and overlapped == [True]
    assert loaded.sha256 == hashlib.sha256(store.paths.cache.read_bytes()).hexdigest()
    assert loaded.index is not None and loaded.index.sha256 == loaded.sha256


def test_a_save_refused_by_validation_leaves_no_temp_file_and_no_backup(
    store: Store, seeded: Callable[[int], Cache]
) -> None:
    seeded(20)
    before = store.paths.cache.read_bytes()
    backups_before = sorted(p.name for p in store.paths.backups.iterdir())
    with store.transaction() as tx, pytest.raises(HealthcacheError, match="does not match the schema"):
        acts: list[Activity] = list(tx.cache.activities)
        acts[4].distance_m = -5.0  # in place: only the encoded bytes show it
        tx.save(factories.with_new(msgspec.structs.replace(tx.cache, activities=acts), "r"))
    assert store.paths.cache.read_bytes() == before
    assert sorted(p.name for p in store.paths.backups.iterdir()) == backups_before
    assert _temp_files(store) == []


def test_a_copy_that_cannot_be_kept_is_told_after_the_cache_was_saved(
    store: Store, seeded: Callable[[int], Cache], monkeypatch: pytest.MonkeyPatch
) -> None:
    """As when the copy was written after the cache: the cache is saved, the error says so."""
    seeded(20)
    real_write = atomic._write

    def write(fd: int, data: bytes | memoryview) -> int:
        if os.path.basename(os.readlink(f"/proc/self/fd/{fd}")).startswith(f"{TEMP_PREFIX}unified-cache-"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    monkeypatch.setattr(atomic, "_write", write)
    with store.transaction() as tx, pytest.raises(StorageError) as err:
        new = factories.with_new(tx.cache, "k")
        tx.save(new)
    monkeypatch.undo()
    assert "The cache WAS saved" in str(err.value.safe)
    assert err.value.path.parent == store.paths.backups
    assert len(load_file(store.paths.cache).cache.activities) == 23
    assert _temp_files(store) == []
    # The index vouches for the file saved: no later command takes healthcache's own save for an edit
    # from outside (it said "changed outside healthcache" before), and the next save keeps a copy again.
    seen: list[object] = []
    later = Store(store.paths, on_outside=seen.append)
    with later.transaction() as tx:
        assert tx.outside is None
        saved = tx.save(factories.with_new(tx.cache, "l"))
    assert seen == [] and saved.kept is not None
    assert backup.find(store.paths.backups, saved.sha256 or "") is not None


# ---- SIGKILL at every I/O step of a save --------------------------------------------------

CHILD = (
    KILL_AT_IO_STEP
    + """
from datetime import UTC, datetime
from pathlib import Path
from healthcache.config import Paths
from healthcache.store import Store
from tests import factories

home = Path(sys.argv[1])
store = Store(Paths.resolve(home), clock=lambda: datetime(2026, 2, 1, 6, tzinfo=UTC))
with store.transaction() as tx:
    tx.save(factories.with_new(tx.cache, "k", 2, start=900))
print("finished", steps, flush=True)
"""
)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_sigkill_at_every_step_of_a_save_leaves_old_or_new_and_no_copy_of_a_state_never_saved(home: Path) -> None:
    store = Store(Paths.resolve(home))
    with store.transaction() as tx:
        tx.save(factories.cache(15))
    with store.transaction() as tx:
        tx.save(factories.with_new(tx.cache, "s", 2))  # the old state has its backup and the one before it too
    old = store.paths.cache.read_bytes()
    pristine = home.parent / "pristine"
    shutil.copytree(home, pristine)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    kills = 0
    new: bytes | None = None
    for kill_at in range(1, 400):
        shutil.rmtree(home)
        shutil.copytree(pristine, home)
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, str(home), str(kill_at)], capture_output=True, text=True, env=env, cwd=ROOT
        )
        if proc.returncode == 0:
            assert proc.stdout.startswith("finished")
            new = store.paths.cache.read_bytes()
            break
        assert proc.returncode == -signal.SIGKILL, proc.stderr
        kills += 1
        cache = store.paths.cache.read_bytes()
        states = {_sha(old)[:12]}
        if cache != old:
            load_file(store.paths.cache)  # the new state, whole
            states.add(_sha(cache)[:12])
        infos = backup.list_backups(store.paths.backups)
        for info in infos:
            assert backup.file_sha256(info.path).startswith(info.digest), info.name
        # The newest backup is a state that was the cache: never a copy of one that did not become it.
        assert infos[0].digest in states, (kill_at, infos[0].name)
        # The next transaction finds nothing lost outside healthcache, and a save goes through.
        with Store(Paths.resolve(home)).transaction() as tx:
            tx.save(factories.with_new(tx.cache, "after", 1))
        assert _temp_files(store) == []
    else:
        pytest.fail("the child never finished")
    assert new is not None and new != old
    assert kills >= 12, kills
