"""The save path on a big cache (issue 13 point 3): it re-decodes only what changed and walks
only the activities that changed, with every check exactly as strong as before.

* Bytes written are still proven valid: an activity whose bytes equal its loaded bytes is
  proven by the save that wrote them; every other activity, and the file around the
  activities, is decoded now.  Whatever a whole decode refused is still refused.
* The guard spares activities kept as loaded; its verdict equals the whole check's
  (a hypothesis property over adds, drops, edits, merges and tombstones).
"""

from __future__ import annotations

import gc
import hashlib
from collections.abc import Callable
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from healthcache import backup, codec
from healthcache.cacheindex import read_index
from healthcache.errors import HealthcacheError, IntegrityRefused
from healthcache.model.records import Activity, Cache, Tombstone, sort_key
from healthcache.store import Store, load_file
from tests import factories


class _CountingDecoder:
    """Stands in for the save's cache decoder (patterns checked) and counts the bytes it is given."""

    def __init__(self) -> None:
        self.real = codec._checked
        self.bytes = 0

    def decode(self, data: bytes) -> Any:
        self.bytes += len(data)
        return self.real.decode(data)


def test_a_save_adding_activities_decodes_only_them_and_the_header(
    store: Store, seeded: Callable[[int], Cache], monkeypatch: pytest.MonkeyPatch
) -> None:
    seeded(200)
    size = store.paths.cache.stat().st_size
    counter = _CountingDecoder()
    with store.transaction() as tx:
        monkeypatch.setattr(codec, "_checked", counter)  # after the load: count the save alone
        assert tx.save(factories.with_new(tx.cache, "n1-", 5, start=10_000)).changed
    written = store.paths.cache.read_bytes()
    assert len(written) > size
    # Before: the whole file was decoded again (len(written) bytes); now the header, tombstones and links.
    assert 0 < counter.bytes < 1000, counter.bytes
    assert load_file(store.paths.cache).cache.activities == store.read().cache.activities


def test_the_state_kept_in_memory_is_what_the_file_decodes_to(store: Store, seeded: Callable[[int], Cache]) -> None:
    seeded(30)
    with store.transaction() as tx:
        cache = factories.with_new(tx.cache, "n2-", 5, start=10_000)
        renamed = msgspec.structs.replace(cache.activities[3], name="Renamed", distance_m=1234)  # an int for a float
        cache = msgspec.structs.replace(cache, activities=[*cache.activities[:3], renamed, *cache.activities[4:]])
        tx.save(cache)
        assert tx.cache == load_file(store.paths.cache).cache
        gone = tx.cache.activities[0]
        tomb = Tombstone(id=gone.id, deleted_at="2026-01-01T00:00:00Z", reason="test", source_ids=gone.source_ids)
        tx.save(msgspec.structs.replace(tx.cache, activities=tx.cache.activities[1:], tombstones=[tomb]))
        assert tx.cache == load_file(store.paths.cache).cache
        tx.save(factories.with_new(tx.cache, "n3-", 5, start=10_000))  # a save after a save, in one transaction
        assert tx.cache == load_file(store.paths.cache).cache


def _refused(store: Store, change: Callable[[list[Activity]], None]) -> str:
    """Apply ``change`` (in place) to the activities of the loaded cache and save; the refusal."""
    before = store.paths.cache.read_bytes()
    with store.transaction() as tx, pytest.raises(HealthcacheError) as err:
        acts = list(tx.cache.activities)
        change(acts)
        tx.save(msgspec.structs.replace(tx.cache, activities=acts))
    assert store.paths.cache.read_bytes() == before
    return str(err.value)


def test_a_loaded_activity_changed_in_place_is_validated_again(store: Store, seeded: Callable[[int], Cache]) -> None:
    """Structs do not check assignments: an activity edited in place has new bytes, which are decoded."""
    seeded(20)

    def negative(acts: list[Activity]) -> None:
        acts[5].distance_m = -5.0

    assert "does not match the schema" in _refused(store, negative)

    def month_13(acts: list[Activity]) -> None:
        acts[7].first_seen_at = "2024-13-01T00:00:00Z"

    assert "is not a valid time" in _refused(store, month_13)


def test_a_new_activity_holding_a_kept_activitys_key_is_refused(store: Store, seeded: Callable[[int], Cache]) -> None:
    seeded(20)

    def duplicate(acts: list[Activity]) -> None:
        extra = factories.activity(500)
        acts.append(msgspec.structs.replace(extra, id="garmin:x", source_ids={"garmin": "x"}, aliases=[acts[3].id]))

    assert f"id {store.read().cache.activities[3].id!r} belongs to two activities" in _refused(store, duplicate)


def test_a_file_not_known_as_its_own_is_decoded_in_full(
    store: Store, seeded: Callable[[int], Cache], monkeypatch: pytest.MonkeyPatch
) -> None:
    seeded(50)
    store.paths.index.unlink()  # the file can no longer vouch for its bytes
    counter = _CountingDecoder()
    with store.transaction() as tx:
        monkeypatch.setattr(codec, "_checked", counter)
        tx.save(factories.with_new(tx.cache, "n4-", 5, start=10_000))
    assert counter.bytes >= store.paths.cache.stat().st_size - len(codec.EOL)  # all of it (its final newline aside)


def test_leaving_a_transaction_does_not_walk_the_cache_with_the_collector(
    store: Store, seeded: Callable[[int], Cache]
) -> None:
    """The cache's objects, made while the collector was paused, are not walked by a young collection on the way out."""
    seeded(300)
    runs: list[tuple[str, dict[str, int]]] = []

    def seen(phase: str, info: dict[str, int]) -> None:
        runs.append((phase, info))

    assert gc.isenabled()
    with store.transaction() as tx:
        tx.save(factories.with_new(tx.cache, "n5-", 5, start=10_000))
        gc.callbacks.append(seen)
    try:
        junk = [[i] for i in range(500)]  # a few allocations, as any caller makes next
    finally:
        gc.callbacks.remove(seen)
    assert junk and runs == []
    assert gc.get_count()[0] < 2000


# ---- the guard: the same verdict as the whole check ----------------------------------------

OPS = st.lists(
    st.tuples(
        st.sampled_from(["drop", "edit", "lose_hr", "merge", "add", "tombstone", "untombstone"]), st.integers(0, 99)
    ),
    max_size=6,
)


def _apply(cache: Cache, ops: list[tuple[str, int]], tag: str) -> Cache:
    acts = list(cache.activities)
    tombs = list(cache.tombstones)
    for pos, (op, k) in enumerate(ops):
        if not acts and op != "add":
            continue
        i = k % max(len(acts), 1)
        if op == "drop":
            acts.pop(i)
        elif op == "edit":
            acts[i] = msgspec.structs.replace(acts[i], name=f"edit {k}")
        elif op == "lose_hr":
            acts[i] = msgspec.structs.replace(acts[i], avg_hr=None, hr_splits=None)
        elif op == "merge" and len(acts) > 1:
            j = (i + 1) % len(acts)
            acts[i] = msgspec.structs.replace(acts[i], aliases=[*acts[i].aliases, acts[j].id])
            acts.pop(j)
        elif op in ("add", "add_early"):
            a = factories.activity(1000 + k)
            if op == "add_early":  # sorts first
                a = msgspec.structs.replace(a, start_time=f"2019-01-01T00:{k % 60:02d}:00Z")
            new_id = f"{tag}{pos}"
            acts.append(msgspec.structs.replace(a, id=f"garmin:{new_id}", source_ids={"garmin": new_id}))
        elif op == "tombstone":
            gone = acts.pop(i)
            tombs.append(
                Tombstone(id=gone.id, deleted_at="2026-01-01T00:00:00Z", reason="t", source_ids=gone.source_ids)
            )
        elif op == "untombstone" and tombs:
            tombs.pop(k % len(tombs))
    return msgspec.structs.replace(cache, activities=acts, tombstones=tombs)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=OPS, then=OPS)
def test_the_guard_sparing_kept_activities_gives_the_whole_checks_verdict(
    store: Store, first: list[tuple[str, int]], then: list[tuple[str, int]]
) -> None:
    for f in store.paths.home.rglob("*"):
        if f.is_file():
            f.unlink()
    with store.transaction() as tx:
        tx.save(_apply(factories.cache(8), first, "a"), force_reason="setup")
    with store.transaction() as tx:
        new = _apply(tx.cache, then, "b")
        assert tx._guard(new, tx._place(new.activities)) == tx.check(new)
        try:
            tx.save(new)
        except IntegrityRefused as exc:
            assert exc.violations == tx.check(new)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=OPS, then=OPS)
def test_the_walk_decodes_exactly_the_activities_not_kept_as_loaded(
    store: Store, first: list[tuple[str, int]], then: list[tuple[str, int]]
) -> None:
    """Adds first, in the middle and last; drops and edits anywhere: the walk vouches for the rest."""
    for f in store.paths.home.rglob("*"):
        if f.is_file():
            f.unlink()
    with store.transaction() as tx:
        tx.save(_apply(factories.cache(8), first, "a"), force_reason="setup")
    with store.transaction() as tx:
        new = _apply(tx.cache, then, "b")
        ordered = msgspec.structs.replace(new, activities=sorted(new.activities, key=sort_key))
        tx._placed = tx._place(ordered.activities)
        final = tx._canonical(ordered, tx._placed)
        data = codec.encode(final)
        fresh = tx._fresh_activities(data, final)
        if not final.activities or not tx.cache.activities:
            return  # no list to walk: the whole file is decoded
        assert fresh is not None
        loaded = {id(a) for a in tx.cache.activities}
        assert fresh == [a for a in final.activities if id(a) not in loaded]
        assert codec._decoder.decode(data).activities == final.activities


def test_a_save_writes_its_final_newline_after_the_file_rather_than_copying_the_file_to_append_it(
    store: Store, seeded: Callable[[int], Cache], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: ``codec.encode`` built the whole file and copied it once more to append one byte (250 MB of
    fresh memory at 100k activities).  Now the body and its newline are hashed, written and compressed in
    parts, and every file is still exactly the canonical bytes: the cache, its index and each backup."""
    seeded(50)
    real = codec.encode
    encoded: list[int] = []

    def counting(cache: Cache) -> bytes:
        encoded.append(len(cache.activities))
        return real(cache)

    monkeypatch.setattr(codec, "encode", counting)
    with store.transaction() as tx:
        tx.save(factories.with_new(tx.cache, "e1-", 5, start=10_000))
        # a second save in the transaction replaces the state held in memory, newline apart
        tx.save(factories.with_new(tx.cache, "e2-", 5, start=20_000))
    assert max(encoded, default=0) == 0  # at most the header alone, to compare
    data = store.paths.cache.read_bytes()
    assert data == real(load_file(store.paths.cache).cache)
    index = read_index(store.paths)
    assert index is not None and (index.sha256, index.size) == (hashlib.sha256(data).hexdigest(), len(data))
    kept = backup.list_backups(store.paths.backups)
    assert len(kept) == 3 and kept[0].path.read_bytes() == data
    assert [info.compressed for info in kept] == [False, True, True]
    assert backup.verify_backups(store.paths.backups) == []
