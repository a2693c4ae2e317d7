"""``restore --merge`` of a backup made before an ``unlink``: the current file's decisions stand.

The backup holds one activity of two records; the current file keeps them apart (a distinct link).
The union must keep them apart too, never put one record into two activities, and say what it could
not bring back; its dry run must tell what the real run does.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta

import msgspec
import pytest

from healthcache import codec
from healthcache.backup import list_backups
from healthcache.merge import merge, unlink_records
from healthcache.model.records import Cache, SourceRecord, empty_cache
from healthcache.restore import union
from healthcache.store import Store
from tests import factories
from tests.conftest import Run
from tests.test_merge_payloads import T0, garmin, strava, use_test_normalisers

NOW = "2024-06-01T00:00:00Z"
LATER = "2024-06-03T00:00:00Z"
MIN = timedelta(minutes=1)
pytestmark = pytest.mark.usefixtures(use_test_normalisers.__name__)


def merged(*records: SourceRecord) -> Cache:
    cache, _ = merge(empty_cache("t", NOW), list(records), now=NOW)
    return cache


def grouping(cache: Cache) -> set[frozenset[str]]:
    return {frozenset(a.record_keys()) for a in cache.activities}


def joined_then_split() -> tuple[Cache, Cache]:
    """(the backup: garmin:111 and strava:222 as one activity, the current file: unlinked since)."""
    g, s = garmin(111, hr=None), strava(222, T0 + 5 * MIN - timedelta(seconds=10), hr=141.0)
    backup = merged(g, s)
    assert len(backup.activities) == 1
    current, _ = unlink_records(backup, "garmin:111", "strava:222", now=LATER)
    return backup, current


def test_a_merge_restore_of_a_backup_older_than_an_unlink_keeps_the_split() -> None:
    backup, current = joined_then_split()
    result = union(current, backup)
    assert codec.hard_invariants(result.cache) == []  # no record in two activities
    assert grouping(result.cache) == grouping(current)
    assert result.left_out == []  # every record of the backup is here, in the activities kept apart
    assert result.cache.links == current.links


def test_records_the_current_file_holds_apart_without_a_link_stay_apart() -> None:
    """Two activities now (the rules of a later version, say), one in the backup: nothing to bring back."""
    backup, current = joined_then_split()
    unlinked = msgspec.structs.replace(current, links=[])
    result = union(unlinked, backup)
    assert codec.hard_invariants(result.cache) == []
    assert grouping(result.cache) == grouping(current)
    assert result.left_out == []


def test_a_record_only_the_backup_holds_is_brought_back_apart_from_what_it_was_unlinked_from() -> None:
    backup, current = joined_then_split()
    # The current file has lost strava:222 (an edit from outside), but keeps its distinct link.
    lost = msgspec.structs.replace(
        current, activities=[a for a in current.activities if "strava:222" not in a.record_keys()]
    )
    result = union(lost, backup)
    assert codec.hard_invariants(result.cache) == []
    assert grouping(result.cache) == {frozenset({"garmin:111"}), frozenset({"strava:222"})}
    assert result.left_out == []


def test_a_record_that_cannot_be_placed_is_named_not_joined() -> None:
    backup, current = joined_then_split()
    # The current file keeps them apart with no kept payload to split the backup's activity by.
    (whole,) = backup.activities
    bare = msgspec.structs.replace(backup, activities=[msgspec.structs.replace(whole, raw={})])
    lost = msgspec.structs.replace(
        current, activities=[a for a in current.activities if "strava:222" not in a.record_keys()]
    )
    result = union(lost, bare)
    assert codec.hard_invariants(result.cache) == []
    assert grouping(result.cache) == {frozenset({"garmin:111"})}
    assert len(result.left_out) == 1 and result.left_out[0].startswith("strava:222 (in the backup's ")


def test_restore_merge_after_an_unlink_succeeds_and_its_dry_run_agrees(store: Store, run: Run) -> None:
    """The CLI path the README gives for recovery: dry run and real run agree, and the split stands."""
    backup_cache, current = joined_then_split()
    with store.transaction() as tx:
        tx.save(backup_cache)
    with store.transaction() as tx:
        tx.save(current)
    older = list_backups(store.paths.backups)[-1].name
    dry = run("restore", "--merge", "--dry-run", "--json", older)
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.stdout)["left_out"] == []
    real = run("restore", "--merge", "--json", older)
    assert real.exit_code == 0, real.output
    assert grouping(store.read().cache) == grouping(current)


def test_a_merge_restore_that_adds_nothing_does_not_say_the_cache_equals_the_backup(
    store: Store, seeded: Callable[[int], Cache], run: Run
) -> None:
    seeded(3)
    with store.transaction() as tx:
        tx.save(factories.with_new(tx.cache, "n"))
    result = run("restore", "--latest", "--merge")
    assert result.exit_code == 0, result.output
    assert "already holds everything that backup does" in result.output
    assert "equals" not in result.output
