"""Sync state never outranks the cache: after ``restore --force``, a plain sync merges the dropped payloads back.

Real garminconnect client against the local fake Garmin server (issue 10, point 1).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from healthcache import backup, codec
from healthcache.store import load_file
from tests.fakes import payloads

if TYPE_CHECKING:
    from tests.fakes.fixtures import Workspace

pytest_plugins = ["tests.fakes.fixtures"]
NOW = datetime.now(UTC)
FIRST = 14_700_000_000


def _garmin_ids(ws: Workspace) -> set[str]:
    return {a.source_ids["garmin"] for a in ws.cache().activities if "garmin" in a.source_ids}


def _backup_with(ws: Workspace, n: int) -> Path:
    for info in backup.list_backups(ws.paths.backups):
        if len(load_file(info.path).cache.activities) == n:
            return info.path
    raise AssertionError(f"no backup with {n} activities")


@pytest.fixture
def six(ws: Workspace) -> list[str]:
    """Three activities synced, then three more in a later sync."""
    starts = payloads.spaced_starts(6, NOW, timedelta(hours=9))
    for i, start in enumerate(starts[:3]):
        ws.garmin.add(payloads.garmin_activity(FIRST + i, start))
    ws.login_garmin()
    first = ws.cli("sync", "--source", "garmin")
    assert first.code == 0, first.err
    for i, start in enumerate(starts[3:], start=3):
        ws.garmin.add(payloads.garmin_activity(FIRST + i, start))
    second = ws.cli("sync", "--source", "garmin", "--force")
    assert second.code == 0, second.err
    assert len(_garmin_ids(ws)) == 6
    return [str(FIRST + i) for i in range(6)]


def test_sync_after_a_forced_restore_merges_the_dropped_payloads_back(ws: Workspace) -> None:
    """The issue's case: the cache holds more of the source's records than ``seen`` lists (older
    ones), so a count could never tell that the restore dropped the ones ``seen`` remembers."""
    old = payloads.spaced_starts(3, NOW - timedelta(days=50), timedelta(days=3))
    recent = payloads.spaced_starts(3, NOW, timedelta(hours=9))
    for i, start in enumerate(old):
        ws.garmin.add(payloads.garmin_activity(FIRST + 10 + i, start))
    ws.login_garmin()
    assert ws.cli("sync", "--source", "garmin", "--days", "90").code == 0
    for i, start in enumerate(recent):
        ws.garmin.add(payloads.garmin_activity(FIRST + i, start))
    assert ws.cli("sync", "--source", "garmin", "--force").code == 0
    everything = _garmin_ids(ws)
    assert len(everything) == 6

    restored = ws.cli("restore", str(_backup_with(ws, 3)), "--force")
    assert restored.code == 0, restored.err
    assert len(_garmin_ids(ws)) == 3
    assert "the next import/sync will check them against the cache" in restored.out

    again = ws.cli("sync", "--source", "garmin", "--force")
    assert again.code == 0, again.err
    assert "the cache is not the one the sync state describes" in again.out
    assert "checked 3 known payload(s) against it, 3 to merge again" in again.out
    assert "new 3" in again.out
    assert _garmin_ids(ws) == everything


def test_after_reconciling_the_next_sync_is_fast_again(
    ws: Workspace, six: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert ws.cli("restore", str(_backup_with(ws, 3)), "--force").code == 0
    assert ws.cli("sync", "--source", "garmin", "--force").code == 0
    cache = ws.cache_stat()

    def no_parse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the cache was parsed although the sync state describes it")

    monkeypatch.setattr(codec, "decode", no_parse)
    fast = ws.cli("sync", "--source", "garmin", "--force")
    assert fast.code == 0, fast.err
    assert "unchanged 6" in fast.out and "not the one the sync state describes" not in fast.out
    assert ws.cache_stat() == cache


def test_a_deleted_activity_is_not_brought_back_by_the_reconciling_sync(ws: Workspace, six: list[str]) -> None:
    victim = f"garmin:{six[0]}"
    assert ws.cli("delete", victim, "--reason", "double upload").code == 0
    # A state from after the delete that lacks the three others (e.g. restored on another machine's backup).
    assert ws.cli("restore", str(_backup_with(ws, 3)), "--force").code == 0  # before the delete: 3 live, no tombstone
    assert ws.cli("delete", victim, "--reason", "double upload").code == 0
    again = ws.cli("sync", "--source", "garmin", "--force")
    assert again.code == 0, again.err
    assert "new 3" in again.out and "deleted-before 1" in again.out
    assert _garmin_ids(ws) == set(six[1:])


def test_seen_entries_outside_the_window_are_checked_too(ws: Workspace, six: list[str]) -> None:
    """A narrower sync after the restore must not bless the state of payloads it did not fetch."""
    assert ws.cli("restore", str(_backup_with(ws, 3)), "--force").code == 0
    narrow = ws.cli("sync", "--source", "garmin", "--force", "--days", "1")
    assert narrow.code == 0, narrow.err
    wide = ws.cli("sync", "--source", "garmin", "--force", "--days", "7")
    assert wide.code == 0, wide.err
    assert _garmin_ids(ws) == set(six)
