"""``status`` tells live records apart from tombstones, from the index or a parse alike."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest

from healthcache import status as status_module
from healthcache.config import Paths
from healthcache.model.records import Cache
from healthcache.store import Store
from tests.conftest import Run


@pytest.fixture
def deleted(store: Store, seeded: Callable[[int], Cache], run: Run) -> list[str]:
    """Six activities, then two deleted through the CLI (the second one most recently)."""
    acts = seeded(6).activities
    victims = [acts[1].id, acts[4].id]
    for victim, reason in zip(victims, ("double upload", "treadmill test"), strict=True):
        result = run("delete", victim, "--reason", reason)
        assert result.exit_code == 0, result.output
    return victims


def test_status_counts_live_records_and_shows_tombstones(run: Run, store: Store, deleted: list[str]) -> None:
    data = json.loads(run("status", "--json").output)
    cache = store.read().cache
    live_keys = {k for a in cache.activities for k in (a.id, *a.aliases, *a.record_keys())}
    assert data["activities"] == 4
    assert data["live_records"] == len(live_keys) < data["records"]
    assert sum(data["live_per_source"].values()) == data["live_records"]
    assert data["tombstones"]["count"] == 2
    assert data["tombstones"]["records"] == data["records"] - data["live_records"] > 0
    assert [(t["id"], t["reason"]) for t in data["tombstones"]["newest"]] == [
        (deleted[1], "treadmill test"),
        (deleted[0], "double upload"),
    ]
    text = run("status").output
    assert f"4 activities, {len(live_keys)} live records" in text
    assert "tombstones: 2" in text
    assert deleted[1] in text and "treadmill test" in text


def test_status_from_the_index_equals_status_from_a_parse(
    run: Run, store: Store, deleted: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_parse(self: Store) -> None:
        raise AssertionError("status parsed the cache although the index is current")

    with monkeypatch.context() as m:
        m.setattr(Store, "read", no_parse)
        from_index = json.loads(run("status", "--json").output)
    store.paths.index.unlink()
    from_parse = json.loads(run("status", "--json").output)
    assert from_index == from_parse
    assert from_parse["tombstones"]["count"] == 2


def test_status_without_tombstones(run: Run, seeded: Callable[[int], Cache]) -> None:
    seeded(3)
    data = json.loads(run("status", "--json").output)
    assert data["tombstones"] == {"count": 0, "records": 0, "newest": []}
    assert data["live_records"] == data["records"]
    assert "tombstones: 0" in run("status").output


def test_status_of_an_empty_workspace(run: Run) -> None:
    data = json.loads(run("status", "--json").output)
    assert data["exists"] is False and data["live_records"] == 0 and data["tombstones"]["count"] == 0


def test_live_and_known_counts_agree_with_the_guard() -> None:
    """Known = live + tombstoned, as the guard counts; a tombstone key still held counts once, as live."""
    from healthcache import guard
    from healthcache.model.records import Tombstone
    from tests import factories

    cache = factories.cache(5)
    held = cache.activities[0].id
    tombs = [
        Tombstone(id="garmin:1", deleted_at="2026-01-01T00:00:00Z", reason="x", source_ids={"strava": "7"}),
        Tombstone(id=held, deleted_at="2026-01-02T00:00:00Z", reason="y"),
    ]
    cache = msgspec.structs.replace(cache, tombstones=tombs)
    live, known = guard.live_and_known_counts(cache)
    total, per_source = guard.record_counts(cache)
    assert known == per_source and sum(known.values()) == total
    assert sum(live.values()) == total - 2
    assert known["strava"] - live["strava"] == 1 and known["garmin"] - live["garmin"] == 1


def test_status_does_not_list_the_settled_imports_note_as_a_source(tmp_path: Path) -> None:
    """``settled-imports.json`` (the daily run's one-comparison note) is bookkeeping, like daily-run.json:
    status printed it as "settled-imports: inputs 1" among the sources."""
    from healthcache.importers.settled import STATE

    paths = Paths(tmp_path)
    paths.state_file(STATE).parent.mkdir(parents=True)
    paths.state_file(STATE).write_text('{"inputs": {"k": {}}}')
    paths.state_file("garmin").write_text('{"last_success": "2026-01-01T00:00:00Z"}')
    assert set(status_module._source_states(paths.sync_state)) == {"garmin"}
