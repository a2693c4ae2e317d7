"""The integrity guard, inside the save path: no command can lose an id or HR data."""

from __future__ import annotations

from collections.abc import Callable

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from healthcache import guard
from healthcache.delete import delete
from healthcache.errors import IntegrityRefused
from healthcache.model.records import Cache
from healthcache.store import Store
from tests import factories
from tests.conftest import Run


def _without(cache: Cache, *ids: str) -> Cache:
    return msgspec.structs.replace(cache, activities=[a for a in cache.activities if a.id not in ids])


def test_dropping_an_activity_is_refused_and_lists_it(store: Store, seeded: Callable[[int], Cache]) -> None:
    cache = seeded(10)
    before = store.paths.cache.read_bytes()
    victims = [cache.activities[2].id, cache.activities[7].id]
    with store.transaction() as tx, pytest.raises(IntegrityRefused) as info:
        tx.save(_without(tx.cache, *victims))
    assert all(v in str(info.value) for v in victims)
    assert {v.subject for v in info.value.violations} == set(victims)
    assert store.paths.cache.read_bytes() == before


@pytest.mark.parametrize("field", ["avg_hr", "max_hr", "hr_splits"])
def test_losing_hr_is_refused(store: Store, seeded: Callable[[int], Cache], field: str) -> None:
    seeded(3)
    with store.transaction() as tx:
        acts = list(tx.cache.activities)
        acts[1] = msgspec.structs.replace(acts[1], **{field: None})
        with pytest.raises(IntegrityRefused) as info:
            tx.save(msgspec.structs.replace(tx.cache, activities=acts))
    assert info.value.violations[0].kind == "lost_hr"
    assert field in str(info.value)


def test_adding_hr_and_changing_other_fields_is_fine(store: Store, seeded: Callable[[int], Cache]) -> None:
    seeded(3)
    with store.transaction() as tx:
        acts = list(tx.cache.activities)
        acts[0] = msgspec.structs.replace(acts[0], name="Renamed", avg_hr=150.0)
        assert tx.save(msgspec.structs.replace(tx.cache, activities=acts)).changed


def test_tombstone_allows_the_drop_and_is_kept(store: Store, seeded: Callable[[int], Cache]) -> None:
    cache = seeded(4)
    victim = cache.activities[0].id
    with store.transaction() as tx:
        new, _ = delete(tx.cache, victim, reason="duplicate upload", now="2026-01-01T00:00:00Z")
        assert tx.save(new).changed
    # removing the tombstone too would let the id vanish without a trace
    with store.transaction() as tx, pytest.raises(IntegrityRefused):
        tx.save(msgspec.structs.replace(tx.cache, tombstones=[]))


def test_baseline_counts_records_not_activities(store: Store, seeded: Callable[[int], Cache]) -> None:
    cache = seeded(4)
    baseline = guard.make_baseline(cache, sha256=None, recorded_at="2026-01-01T00:00:00Z")
    a, b = cache.activities[0], cache.activities[1]
    strava_b = msgspec.structs.replace(
        b, id="strava:55", source="strava", source_ids={"strava": "55"}, raw={"strava": {}}
    )
    joined = msgspec.structs.replace(a, aliases=["strava:55"], source_ids={**a.source_ids, "strava": "55"})
    merged = msgspec.structs.replace(cache, activities=[joined, *cache.activities[2:]])
    # b is gone entirely: below baseline
    assert any(v.subject == "garmin" for v in guard.check_baseline(merged, baseline))
    base2 = guard.make_baseline(
        msgspec.structs.replace(cache, activities=[a, strava_b, *cache.activities[2:]]), sha256=None, recorded_at="x"
    )
    # a merge of two records into one activity keeps every record: not below the baseline
    assert guard.check_baseline(merged, base2) == []


def test_save_below_baseline_is_refused_even_with_tombstone_gap(
    store: Store, seeded: Callable[[int], Cache], run: Run
) -> None:
    seeded(5)
    assert run("verify", "--baseline").exit_code == 0
    store.paths.cache.unlink()  # someone removed the file by hand
    store.paths.index.unlink()
    with store.transaction() as tx, pytest.raises(IntegrityRefused) as info:
        tx.save(factories.cache(2))
    assert any(v.kind == "below_baseline" for v in info.value.violations)


@settings(max_examples=100, deadline=None)
@given(st.sets(st.integers(0, 11), min_size=1), st.sets(st.integers(0, 11)))
def test_guard_rejects_every_generated_drop(dropped: set[int], tombstoned: set[int]) -> None:
    cache = factories.cache(12)
    new = cache
    for i in sorted(tombstoned):
        new, _ = delete(new, cache.activities[i].id, reason="r", now="2026-01-01T00:00:00Z")
    new = _without(new, *(cache.activities[i].id for i in dropped))
    violations = guard.check(cache, new, None)
    lost = {cache.activities[i].id for i in dropped - tombstoned}
    assert {v.subject for v in violations if v.kind == "dropped_id"} == lost
