"""Backups before every changing save, retention with borg prune semantics."""

from __future__ import annotations

import errno
import json
import os
import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from healthcache import backup, retention
from healthcache.config import Config, Paths, RetentionPolicy
from healthcache.errors import StorageError, UsageError
from healthcache.model.records import Cache
from healthcache.retention import Item, plan
from healthcache.store import Store
from tests import factories
from tests.conftest import Run


def _renamed(cache: Cache, name: str) -> Cache:
    return msgspec.structs.replace(
        cache, activities=[msgspec.structs.replace(cache.activities[0], name=name), *cache.activities[1:]]
    )


def test_every_saved_state_is_kept_and_none_for_no_change(store: Store, seeded: Callable[[int], Cache]) -> None:
    seeded(3)
    first = store.paths.cache.read_bytes()
    # The state before the save was kept when it was saved, as a copy of its own.  (Compared while
    # both files exist: once the save frees the old file, a new file may be given its inode number.)
    kept_before = backup.list_backups(store.paths.backups)[0].path
    assert kept_before.stat().st_ino != store.paths.cache.stat().st_ino
    with store.transaction() as tx:
        result = tx.save(_renamed(tx.cache, "Tempo"))
    assert result.backup is not None and backup.read_bytes(result.backup) == first
    assert backup.parse_name(result.backup).digest == backup.parse_name(kept_before).digest
    assert backup.file_sha256(result.backup).startswith(backup.parse_name(result.backup).digest)
    # ... and so is the state just saved: the newest backup is the last saved state.
    assert result.kept is not None and result.kept.read_bytes() == store.paths.cache.read_bytes()
    assert result.kept.stat().st_ino != store.paths.cache.stat().st_ino
    assert backup.list_backups(store.paths.backups)[0].path == result.kept
    mtime = store.paths.cache.stat().st_mtime_ns
    with store.transaction() as tx:
        assert not tx.save(tx.cache).changed
    assert store.paths.cache.stat().st_mtime_ns == mtime
    assert len(backup.list_backups(store.paths.backups)) == 2


def test_a_rewrite_in_place_leaves_every_backup_intact(store: Store, seeded: Callable[[int], Cache]) -> None:
    """An old script that truncates and rewrites the cache file must not reach into a backup."""
    seeded(3)
    with store.transaction() as tx:
        tx.save(_renamed(tx.cache, "Tempo"))
    before = {p.name: p.read_bytes() for p in store.paths.backups.iterdir()}
    with store.paths.cache.open("r+b") as f:  # same inode, new bytes
        f.truncate(0)
        f.write(b"{}")
    assert {p.name: p.read_bytes() for p in store.paths.backups.iterdir()} == before
    assert backup.verify_backups(store.paths.backups) == []


def test_backup_copies_where_links_are_impossible(
    store: Store, seeded: Callable[[int], Cache], monkeypatch: pytest.MonkeyPatch
) -> None:
    seeded(2)
    before = store.paths.cache.read_bytes()

    def no_link(*a: object) -> None:
        raise OSError(errno.EXDEV, "cross-device link")

    monkeypatch.setattr(os, "link", no_link)
    with store.transaction() as tx:
        result = tx.save(_renamed(tx.cache, "x"))
    assert result.backup is not None and backup.read_bytes(result.backup) == before
    assert result.backup.stat().st_ino != store.paths.cache.stat().st_ino


def test_verify_backups_detects_a_changed_backup(store: Store, seeded: Callable[[int], Cache], run: Run) -> None:
    seeded(2)
    with store.transaction() as tx:
        path = tx.save(_renamed(tx.cache, "y")).backup
    assert run("verify", "--backups").exit_code == 0
    assert path is not None
    path.unlink()  # break the hard link before editing, as a careless editor would
    path.write_bytes(b"{}")
    result = run("verify", "--backups")
    assert result.exit_code == 4 and path.name in result.output


# ---- retention: borg semantics ---------------------------------------------------------

T = datetime(2026, 3, 15, 12, tzinfo=UTC)


def _items(hours: list[int]) -> list[Item]:
    return [Item(f"b{h:05d}", T - timedelta(hours=h)) for h in hours]


def _kept(decisions: list[retention.Decision]) -> dict[str, str | None]:
    return {d.item.name: d.rule for d in decisions if d.keep}


def test_daily_keeps_newest_of_each_day() -> None:
    items = _items([0, 1, 2, 24, 25, 48, 72])
    kept = _kept(plan(items, RetentionPolicy(keep_last=0, keep_daily=3, keep_weekly=0, keep_monthly=0)))
    assert kept == {"b00000": "daily", "b00024": "daily", "b00048": "daily"}


def test_earlier_rule_does_not_count_toward_later() -> None:
    # borg: a backup kept by `last` is skipped by `daily`, which then keeps the next day's
    items = _items([0, 1, 24, 48])
    decisions = plan(items, RetentionPolicy(keep_last=1, keep_daily=2, keep_weekly=0, keep_monthly=0))
    assert _kept(decisions) == {"b00000": "last", "b00024": "daily", "b00048": "daily"}
    # restic would count b00000 toward daily too and keep only b00000 and b00024


def test_oldest_kept_when_rule_is_short() -> None:
    items = _items([0, 1, 2])
    kept = _kept(plan(items, RetentionPolicy(keep_last=0, keep_daily=0, keep_weekly=0, keep_monthly=5)))
    assert kept == {"b00000": "monthly", "b00002": "monthly[oldest]"}


def test_all_zero_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        plan(_items([0]), RetentionPolicy(keep_last=0, keep_daily=0, keep_weekly=0, keep_monthly=0))


policies = st.builds(
    RetentionPolicy,
    keep_last=st.integers(0, 5),
    keep_daily=st.integers(0, 5),
    keep_weekly=st.integers(0, 4),
    keep_monthly=st.integers(0, 4),
).filter(lambda p: any(retention.counts(p).values()))
item_lists = st.lists(st.integers(0, 24 * 200), min_size=0, max_size=60, unique=True).map(_items)


@settings(max_examples=300)
@given(item_lists, policies)
def test_retention_properties(items: list[Item], policy: RetentionPolicy) -> None:
    decisions = plan(items, policy)
    kept = {d.item.name for d in decisions if d.keep}
    removed = {d.item.name for d in decisions if not d.keep}
    assert kept | removed == {i.name for i in items} and not kept & removed  # a partition
    if items:
        newest = max(items, key=lambda i: (i.when, i.name))
        assert newest.name in kept
    survivors = [i for i in items if i.name in kept]
    again = plan(survivors, policy)
    assert all(d.keep for d in again)  # pruning twice = pruning once


def test_rolling_400_daily_saves(tmp_path: Path) -> None:
    """400 days of one save a day under the default policy: bounded, spread out, newest kept."""
    clock = [datetime(2025, 1, 1, 5, tzinfo=UTC)]
    paths = Paths.resolve(tmp_path)
    store = Store(paths, Config(), clock=lambda: clock[0])
    cache = factories.cache(1)
    with store.transaction() as tx:
        tx.save(cache)
    for day in range(400):
        clock[0] += timedelta(days=1)
        with store.transaction() as tx:
            tx.save(_renamed(tx.cache, f"day {day}"))
    found = backup.list_backups(paths.backups)
    assert len(found) <= 10 + 7 + 4 + 12
    ages = sorted((clock[0] - b.when).days for b in found)
    assert ages[0] == 0  # the newest backup was taken by the last save
    assert ages[-1] >= 300  # monthly backups reach back about a year
    months = {b.when.strftime("%Y-%m") for b in found}
    assert len(months) >= 12


def _saves_apart(store: Store, n: int, apart: timedelta, *, size: int = 1) -> None:
    """``n`` saves ``apart`` from each other, every state kept (retention keeps the last 100)."""
    clock = [datetime(2026, 1, 1, tzinfo=UTC)]
    s = Store(store.paths, Config(retention=RetentionPolicy(keep_last=100)), clock=lambda: clock[0])
    with s.transaction() as tx:
        tx.save(factories.cache(size))
    for i in range(n - 1):
        clock[0] += apart
        with s.transaction() as tx:
            tx.save(_renamed(tx.cache, str(i)))


def test_prune_command_dry_run_names_rules(store: Store, run: Run) -> None:
    _saves_apart(store, 7, timedelta(hours=10))
    names = [b.name for b in backup.list_backups(store.paths.backups)]
    assert len(names) == 7  # every saved state, the first one included
    result = run(
        "backups",
        "prune",
        "--keep-last",
        "1",
        "--keep-daily",
        "2",
        "--keep-weekly",
        "0",
        "--keep-monthly",
        "0",
        "--dry-run",
    )
    assert result.exit_code == 0, result.output
    assert "keep (last #1)" in result.output and "keep (daily #1)" in result.output and "would prune" in result.output
    assert len(backup.list_backups(store.paths.backups)) == 7
    result = run(
        "backups",
        "prune",
        "--keep-last",
        "1",
        "--keep-daily",
        "2",
        "--keep-weekly",
        "0",
        "--keep-monthly",
        "0",
        "--json",
    )
    assert result.exit_code == 0
    assert len(backup.list_backups(store.paths.backups)) == 3


def test_prune_never_keeps_a_damaged_backup_in_place_of_good_ones(store: Store, run: Run) -> None:
    """A truncated backup kept its retention slot and the readable ones of its period were removed: the
    safety net gone, silently.  `backups prune` proves each backup first: a damaged one keeps no slot
    (the next good one takes it) and is not removed either (verify --backups names it)."""
    _saves_apart(store, 3, timedelta(minutes=10), size=3)
    infos = backup.list_backups(store.paths.backups)  # newest first: three states
    assert len(infos) == 3
    newest = infos[0]
    os.truncate(newest.path, newest.path.stat().st_size // 2)
    result = run(
        "backups",
        "prune",
        "--keep-last",
        "1",
        "--keep-daily",
        "0",
        "--keep-weekly",
        "0",
        "--keep-monthly",
        "0",
        "--json",
    )
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.stdout)["decisions"]}
    assert rows[newest.name]["rule"] == "damaged, not counted" and rows[newest.name]["keep"] is True
    left = {b.name for b in backup.list_backups(store.paths.backups)}
    assert newest.name in left and infos[1].name in left  # the next good one took the slot
    assert infos[2].name not in left
    problems = backup.verify_backups(store.paths.backups)
    assert [i.name for i, _ in problems] == [newest.name]


def test_a_file_in_place_of_the_backups_folder_is_named_as_such(
    store: Store, seeded: Callable[[int], Cache], run: Run
) -> None:
    """The save was refused with "could not back up the cache to .../backups/unified-cache-...json: File
    exists", which says neither that backups/ is a file nor what to do."""
    seeded(2)
    shutil.rmtree(store.paths.backups)
    store.paths.backups.write_text("not a folder")
    before = store.paths.cache.read_bytes()
    with store.transaction() as tx, pytest.raises(StorageError) as err:
        tx.save(factories.with_new(tx.cache, "x"))
    assert f"{store.paths.backups} is a file where a folder should be: move it aside" in str(err.value)
    assert "was not changed" in str(err.value.hint)
    assert store.paths.cache.read_bytes() == before
