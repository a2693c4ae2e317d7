"""Compressed backups (issue 13 point 2): all but the newest stored as ``.json.zst``, named by the
hash of their uncompressed content, read transparently, and never lost to a crash while compressing.

The SIGKILL test runs a child process that kills itself at the k-th I/O step of compressing,
for every k: every boundary is hit, with no timing involved.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest
import zstandard

from healthcache import atomic, backup
from healthcache.config import Config, Paths, RetentionPolicy
from healthcache.errors import CorruptInput
from healthcache.model.records import Cache
from healthcache.store import Store, load_file
from tests import factories
from tests.conftest import Run
from tests.procs import KILL_AT_IO_STEP

ROOT = Path(__file__).resolve().parents[1]
KEEP_ALL = RetentionPolicy(keep_last=100, keep_daily=0, keep_weekly=0, keep_monthly=0)


def _renamed(cache: Cache, name: str) -> Cache:
    first = msgspec.structs.replace(cache.activities[0], name=name)
    return msgspec.structs.replace(cache, activities=[first, *cache.activities[1:]])


def _saves(home: Path, n: int, *, size: int = 30) -> tuple[Store, dict[str, bytes]]:
    """``n`` saves an hour apart; returns the store and every saved state's bytes by its sha256 prefix."""
    clock = [datetime(2026, 1, 1, 6, tzinfo=UTC)]
    store = Store(Paths.resolve(home), Config(retention=KEEP_ALL), clock=lambda: clock[0])
    states: dict[str, bytes] = {}
    with store.transaction() as tx:
        tx.save(factories.cache(size))
    states[store.read().sha256[:12]] = store.paths.cache.read_bytes()  # type: ignore[index]
    for i in range(n - 1):
        clock[0] += timedelta(hours=1)
        with store.transaction() as tx:
            tx.save(_renamed(tx.cache, f"save {i}"))
        states[store.read().sha256[:12]] = store.paths.cache.read_bytes()  # type: ignore[index]
    return store, states


def _assert_intact(folder: Path, states: dict[str, bytes]) -> None:
    """Every state is still kept, exactly, in one readable form that hashes to its name."""
    infos = backup.list_backups(folder)
    assert sorted(b.digest for b in infos) == sorted(states)
    for info in infos:
        assert backup.read_bytes(info.path) == states[info.digest], info.name
        assert backup.file_sha256(info.path).startswith(info.digest)
        load_file(info.path)
    assert backup.verify_backups(folder) == []


def test_every_backup_but_the_newest_is_compressed_and_named_by_its_content(home: Path) -> None:
    store, states = _saves(home, 5)
    infos = backup.list_backups(store.paths.backups)
    assert len(infos) == 5
    # The newest is the state last saved, a plain copy of its own (not a link: an in-place
    # rewrite of the cache must not reach it).
    newest = infos[0]
    assert not newest.compressed and newest.path.name.endswith(".json")
    assert newest.path.read_bytes() == store.paths.cache.read_bytes()
    assert newest.path.stat().st_ino != store.paths.cache.stat().st_ino
    assert all(b.compressed and b.name.endswith(".json.zst") for b in infos[1:])
    for b in infos[1:]:
        assert b.path.stat().st_size * 3 < len(states[b.digest])  # actually compressed
        assert not b.plain_path.exists()
    _assert_intact(store.paths.backups, states)


def test_a_save_reports_where_the_replaced_state_is_kept_now(store: Store) -> None:
    with store.transaction() as tx:
        tx.save(factories.cache(5))
    before = store.paths.cache.read_bytes()
    with store.transaction() as tx:
        result = tx.save(_renamed(tx.cache, "x"))
    assert result.backup is not None and result.backup.exists() and result.backup.name.endswith(".zst")
    assert backup.read_bytes(result.backup) == before


def test_old_plain_backups_keep_working_and_the_next_prune_compresses_them(home: Path, run: Run) -> None:
    store, states = _saves(home, 4)
    folder = store.paths.backups
    # As an older healthcache left them: every backup plain.
    for info in backup.list_backups(folder):
        if info.compressed:
            info.plain_path.write_bytes(backup.read_bytes(info.path))
            info.path.unlink()
    assert not list(folder.glob("*.zst"))
    oldest = backup.list_backups(folder)[-1]
    assert json.loads(run("restore", oldest.name, "--dry-run", "--json").output)["backup"] == str(oldest.path)
    result = run("backups", "prune", "--json")
    assert result.exit_code == 0, result.output
    infos = backup.list_backups(folder)
    assert [b.compressed for b in infos] == [False, True, True, True]
    _assert_intact(folder, states)


def test_a_dry_run_prune_compresses_nothing(home: Path, run: Run) -> None:
    store, _ = _saves(home, 3)
    for info in backup.list_backups(store.paths.backups)[1:]:
        info.plain_path.write_bytes(backup.read_bytes(info.path))
        info.path.unlink()
    before = sorted(p.name for p in store.paths.backups.iterdir())
    assert run("backups", "prune", "--dry-run").exit_code == 0
    assert sorted(p.name for p in store.paths.backups.iterdir()) == before


def test_a_backup_that_does_not_match_its_name_is_left_plain(home: Path) -> None:
    store, _ = _saves(home, 3)
    second = backup.list_backups(store.paths.backups)[1]
    damaged = second.plain_path
    damaged.write_bytes(b'{"not": "what the name says"}')
    second.path.unlink()
    backup.prune(store.paths.backups, KEEP_ALL)
    assert damaged.read_bytes() == b'{"not": "what the name says"}'  # kept as found, for verify to name
    assert not second.zst_path.exists()


def test_both_forms_left_by_a_crash_are_listed_once_and_the_next_prune_keeps_one(home: Path) -> None:
    store, states = _saves(home, 3)
    second = backup.list_backups(store.paths.backups)[1]
    second.plain_path.write_bytes(backup.read_bytes(second.path))  # the .zst was written; the plain not removed yet
    infos = backup.list_backups(store.paths.backups)
    assert len(infos) == 3 and infos[1].path == second.plain_path
    backup.prune(store.paths.backups, KEEP_ALL)
    assert not second.plain_path.exists() and second.zst_path.exists()
    _assert_intact(store.paths.backups, states)


@pytest.mark.parametrize("damage", ["flip a byte", "truncate", "flip the last byte"])
def test_verify_backups_detects_a_damaged_compressed_backup(home: Path, run: Run, damage: str) -> None:
    store, _ = _saves(home, 3)
    assert run("verify", "--backups").exit_code == 0
    victim = backup.list_backups(store.paths.backups)[1]
    assert victim.compressed
    blob = bytearray(victim.path.read_bytes())
    if damage == "truncate":
        blob = blob[: len(blob) // 2]
    else:
        at = len(blob) // 2 if damage == "flip a byte" else len(blob) - 1
        blob[at] ^= 0x01
    victim.path.write_bytes(bytes(blob))
    result = run("verify", "--backups", "--json")
    assert result.exit_code == 4, result.output
    problems = json.loads(result.output)["problems"]
    assert [p["subject"] for p in problems if p["kind"] == "backup"] == [victim.name]


def test_restore_diff_and_list_read_compressed_backups(home: Path, run: Run) -> None:
    store, states = _saves(home, 4)
    infos = backup.list_backups(store.paths.backups)
    oldest, second = infos[-1], infos[1]
    assert oldest.compressed and second.compressed
    # backups list: both sizes
    rows = json.loads(run("backups", "list", "--json").output)
    by_name = {r["name"]: r for r in rows}
    assert by_name[oldest.name]["compressed"] and by_name[oldest.name]["content_bytes"] == len(states[oldest.digest])
    assert by_name[oldest.name]["size_bytes"] == oldest.path.stat().st_size < by_name[oldest.name]["content_bytes"]
    assert by_name[infos[0].name]["content_bytes"] == by_name[infos[0].name]["size_bytes"]
    text = run("backups", "list").output
    assert f"of {len(states[oldest.digest]) / 1e6:.2f} MB" in text
    # diff: two compressed backups, by name, by the name they were written under, and by hash prefix
    for spec in (oldest.name, oldest.plain_path.name, oldest.digest):
        result = run("diff", spec, second.digest, "--json")
        assert result.exit_code == 0, result.output
        changed = json.loads(result.output)["changed"]
        assert len(changed) == 1
        assert {(f["path"], f["new"]) for f in changed[0]["fields"]} >= {("name", "save 1")}
    # restore --latest: the newest backup differing from the cache is a compressed one
    result = run("restore", "--latest", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["backup"] == str(second.path)
    assert store.read().cache.activities[0].name == "save 1"
    # restore by the plain name it was first written under
    result = run("restore", oldest.plain_path.name, "--json")
    assert result.exit_code == 0, result.output
    assert store.read().cache.activities == load_file(oldest.path).cache.activities
    assert store.read().cache.activities[0].name == "Morning Run"


def test_an_outside_edit_is_compared_with_a_compressed_backup_when_the_newest_is_unreadable(
    home: Path, run: Run
) -> None:
    store, _ = _saves(home, 3)
    newest, second, _oldest = backup.list_backups(store.paths.backups)
    newest.path.write_bytes(b"not json")  # the reference is damaged: the next older one speaks
    doc = json.loads(store.paths.cache.read_text())
    gone = doc["activities"].pop()["id"]
    store.paths.cache.write_text(json.dumps(doc, indent=2))
    result = run("verify", "--json")
    assert result.exit_code != 0
    assert gone in result.output and second.compressed


def test_report_reads_compressed_backups(home: Path) -> None:
    from healthcache.report import data as rd

    store, _ = _saves(home, 4)
    data = rd.collect(store)
    assert data.backups_unreadable == [] and data.backups_sampled == 4


# ---- SIGKILL while compressing ----------------------------------------------------------


# The child: compress the backups of a folder (a prune), SIGKILLing itself at I/O step ``kill_at``
# (before or after each write, fsync, rename, unlink and link). It imports only what it runs.
CHILD = (
    KILL_AT_IO_STEP
    + """
from pathlib import Path
from healthcache import backup
from healthcache.config import RetentionPolicy

folder = Path(sys.argv[1])
backup.prune(folder, RetentionPolicy(keep_last=100, keep_daily=0, keep_weekly=0, keep_monthly=0))
print("finished", steps, flush=True)
"""
)


def test_sigkill_at_every_step_of_compression_loses_no_backup(home: Path) -> None:
    store, states = _saves(home, 4, size=200)
    folder = store.paths.backups
    # Start from plain backups (as an older version left them), so three get compressed.
    for info in backup.list_backups(folder):
        if info.compressed:
            info.plain_path.write_bytes(backup.read_bytes(info.path))
            info.path.unlink()
    pristine = home.parent / "pristine"
    shutil.copytree(folder, pristine)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    kills = 0
    for kill_at in range(1, 500):
        shutil.rmtree(folder)
        shutil.copytree(pristine, folder)
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, str(folder), str(kill_at)],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
        )
        if proc.returncode == 0:
            assert proc.stdout.startswith("finished")
            break
        assert proc.returncode == -signal.SIGKILL, proc.stderr
        kills += 1
        # Right after the kill, before anything tidies up: every backup is there and whole.
        _assert_intact(folder, states)
        # The next run under the lock sweeps the temp file and finishes the job.
        atomic.sweep_temp_files(folder)
        backup.prune(folder, KEEP_ALL)
        _assert_intact(folder, states)
        assert [b.compressed for b in backup.list_backups(folder)] == [False, True, True, True]
        assert len(list(folder.iterdir())) == 4  # one file per backup, no temp file
    else:
        pytest.fail("the child never finished")
    # three backups, each: write, fsync, replace, fsync dir, unlink, fsync dir (two steps each)
    assert kills >= 3 * 6 * 2, kills


def test_a_compressed_form_is_proven_against_its_content_without_a_whole_decompressed_copy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Before: the frame was decompressed whole (a second copy of the cache, 250 MB at 100k activities)
    and compared; now it is compared a megabyte at a time.  A frame of other content is still refused."""
    content = (b'{"a": "' + bytes(range(97, 123)) * 200_000 + b'"}', b"\n")

    def whole(*args: object, **kwargs: object) -> bytes:
        raise AssertionError("decompressed whole")

    monkeypatch.setattr(zstandard.ZstdDecompressor, "decompress", whole)
    blob = backup.compressed_form(content)
    assert blob is not None and zstandard.ZstdDecompressor().decompressobj().decompress(blob) == b"".join(content)
    other = zstandard.ZstdCompressor(level=1).compress(b"".join(content).replace(b"xyz", b"xyZ", 1))
    assert backup._decompresses_to(other, content) is False
    assert backup._decompresses_to(blob, (content[0],)) is False  # the newline missing


class _FailingCompressor:
    """A zstd compressor whose every compression fails, as one that cannot get its memory does."""

    def __init__(self, **_: object) -> None:
        pass

    def compressobj(self, **_: object) -> _FailingCompressor:
        return self

    def compress(self, _data: bytes) -> bytes:
        raise zstandard.ZstdError("cannot allocate compression context")

    def flush(self) -> bytes:
        raise zstandard.ZstdError("cannot allocate compression context")


def test_a_compression_that_fails_leaves_the_backup_plain_and_the_save_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Compression only saves space: when zstd fails (in the save's background thread for the state it
    replaces, or in prune's own pass), each backup stays plain, the save is done, and nothing reaches
    a thread's unhandled-exception hook (a traceback on stderr)."""
    import threading

    store, states = _saves(tmp_path / "h", 2)
    compressed_before = {i.digest for i in backup.list_backups(store.paths.backups) if i.compressed}
    unhandled: list[BaseException | None] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: unhandled.append(args.exc_value))
    monkeypatch.setattr(backup.zstandard, "ZstdCompressor", _FailingCompressor)
    with store.transaction() as tx:
        tx.save(_renamed(tx.cache, "the third save"))
    states[store.read().sha256[:12]] = store.paths.cache.read_bytes()  # type: ignore[index]
    assert unhandled == []
    infos = backup.list_backups(store.paths.backups)
    assert {i.digest for i in infos if i.compressed} == compressed_before  # the newly older one stays plain
    assert len(infos) == 3
    _assert_intact(store.paths.backups, states)


@pytest.mark.parametrize("cut", [1, 100, "half"])
def test_a_truncated_compressed_backup_is_named_truncated_not_read_as_empty(
    tmp_path: Path, run: Run, cut: int | str
) -> None:
    """A ``.zst`` cut short (a full disk, an interrupted copy) decompressed to nothing without an error, so
    restore and diff said "file is empty" and verify --backups gave the hash of nothing."""
    store, _ = _saves(tmp_path / "h", 3)
    (info,) = [i for i in backup.list_backups(store.paths.backups) if i.compressed][:1]
    size = info.path.stat().st_size
    os.truncate(info.path, size // 2 if cut == "half" else size - int(cut))
    with pytest.raises(CorruptInput, match="truncated"):
        backup.read_bytes(info.path)
    result = run("restore", "--home", str(store.paths.home), "--dry-run", info.path.name)
    assert result.exit_code == 4 and "truncated" in result.output and "file is empty" not in result.output
    problems = dict((i.path.name, why) for i, why in backup.verify_backups(store.paths.backups))
    assert "truncated" in problems[info.path.name]
