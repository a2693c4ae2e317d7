"""Join decisions recorded on the activity (schema 2), and files written before them (schema 1)."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

import msgspec
import pytest

from healthcache import backup, codec
from healthcache.ingest import ingest
from healthcache.merge import groups, link_records, merge, unlink_records
from healthcache.model.records import SCHEMA_VERSION, Cache, Join, empty_cache
from healthcache.store import Store
from tests.conftest import Run
from tests.test_merge_payloads import T0, fit, garmin, strava, use_test_normalisers

NOW = "2024-06-01T00:00:00Z"
LATER = "2024-06-03T00:00:00Z"
MIN = timedelta(minutes=1)

pytestmark = pytest.mark.usefixtures(use_test_normalisers.__name__)


def test_each_join_is_recorded_when_it_is_made() -> None:
    f = fit(T0 + timedelta(seconds=3), distance=10_040)
    s = strava(222, T0 + 2 * MIN, distance=9000, external_id="garmin_push_111")
    cache, _ = merge(empty_cache("t", NOW), [garmin(111)], now=NOW)
    cache, _ = merge(cache, [s, f], now=LATER)
    (act,) = cache.activities
    by_key = {j.records[0]: j for j in act.joins}
    assert set(by_key) == {"strava:222", f.key}  # the first record has no decision: the file stays compact
    ext = by_key["strava:222"]
    assert (ext.rule, ext.records, ext.at) == ("external_id", ["strava:222", "garmin:111"], LATER)
    assert ext.detail == "external_id 'garmin_push_111' of strava names garmin:111"
    heur = by_key[f.key]
    assert heur.rule == "heuristic" and heur.figures is not None
    assert heur.figures.start_s == 3.0 and heur.figures.basis == "distance"
    assert heur.figures.values == [10_000.0, 10_040.0] and heur.figures.sports == ["running", "running"]
    # Placing the same records again records nothing new.
    again, report = merge(cache, [garmin(111), s, f], now="2024-06-05T00:00:00Z")
    assert again == cache and not report.changed


def test_explain_prints_the_recorded_decision_and_rederives_only_without_one() -> None:
    f = fit(T0 + timedelta(seconds=3), distance=10_040)
    cache, _ = merge(empty_cache("t", NOW), [garmin(111), f], now=NOW)
    (act,) = cache.activities
    # The payloads no longer tell how far apart they were: only the record can.
    unreadable = msgspec.structs.replace(act, raw={s: {"unreadable": True} for s in act.raw})
    recorded = msgspec.structs.replace(cache, activities=[unreadable])
    (group,) = groups(recorded, explain=True)
    member = group.members[1]
    assert (member.rule, member.at) == ("heuristic", NOW)
    assert member.detail == "vs garmin:111: start +3 s, distance differs by 40 m (0.4 %)"
    assert member.comparison is not None and member.comparison["difference"] == pytest.approx(40.0)
    old = msgspec.structs.replace(recorded, activities=[msgspec.structs.replace(unreadable, joins=[])])
    (rederived,) = groups(old, explain=True)
    assert rederived.members[1].at is None and "cannot be re-read" in (rederived.members[1].detail or "")


def test_link_records_a_manual_decision_and_unlink_removes_it() -> None:
    cache, _ = merge(empty_cache("t", NOW), [garmin(111), strava(222, T0 + 9 * MIN, distance=7000)], now=NOW)
    linked, _ = link_records(cache, "strava:222", "garmin:111", now=LATER)
    (act,) = linked.activities
    assert act.joins == [Join(rule="link", records=["garmin:111", "strava:222"], at=LATER)]
    (group,) = groups(linked, explain=True)
    assert group.members[1].detail == f"linked to garmin:111 at {LATER}"
    apart, _ = unlink_records(linked, "garmin:111", "strava:222", now="2024-06-04T00:00:00Z")
    assert [a.joins for a in apart.activities] == [[], []]


def test_unlink_keeps_the_decisions_of_records_that_stay_together() -> None:
    f = fit(T0 + timedelta(seconds=3), distance=10_040)
    s = strava(222, T0 + 2 * MIN, distance=9000, external_id="garmin_push_111")
    cache, _ = merge(empty_cache("t", NOW), [garmin(111), f, s], now=NOW)
    apart, _ = unlink_records(cache, "garmin:111", "strava:222", now=LATER)
    kept = {a.id: [j.records for j in a.joins] for a in apart.activities}
    assert kept == {"garmin:111": [[f.key, "garmin:111"]], "strava:222": []}


def _as_v1(cache: Cache) -> bytes:
    """The bytes a schema-1 healthcache wrote for this cache (no joins)."""
    doc = json.loads(codec.encode(cache))
    doc["schema_version"] = 1
    for act in doc["activities"]:
        act.pop("joins", None)
    return msgspec.json.format(json.dumps(doc).encode(), indent=2) + b"\n"


def test_a_v1_file_is_migrated_in_memory_and_saved_only_after_a_backup(store: Store, run: Run) -> None:
    ingest(store, [garmin(111), garmin(555, T0 + timedelta(days=2))])
    ingest(store, [strava(222, T0 + 2 * MIN, distance=9000, external_id="garmin_push_111")])
    v1 = _as_v1(store.read().cache)
    store.paths.cache.write_bytes(v1)
    loaded = store.read().cache
    assert loaded.schema_version == SCHEMA_VERSION and all(a.joins == [] for a in loaded.activities)
    text = run("dupes", "--explain")
    assert text.exit_code == 0, text.output
    assert "strava:222  external_id: external_id 'garmin_push_111' of strava names garmin:111" in text.output
    assert "(joined " not in text.output  # re-derived: nothing was recorded in a v1 file
    assert store.paths.cache.read_bytes() == v1  # reading never rewrites it
    ingest(store, [strava(666, T0 + timedelta(days=2, minutes=1))])
    saved = store.paths.cache.read_bytes()
    assert json.loads(saved)["schema_version"] == SCHEMA_VERSION
    # The save backed the v1 file up first (by its content's hash, whatever form the backup takes).
    assert backup.find(store.paths.backups, hashlib.sha256(v1).hexdigest()) is not None


def test_the_readme_cache_example_is_this_schema_version_with_a_recorded_join() -> None:
    """The README's example of the cache file is the version written now, its join a valid decision."""
    from pathlib import Path

    text = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## The cache file\n", 1)[1].split("\n## ", 1)[0]
    doc = json.loads(section.split("```json\n", 1)[1].split("```", 1)[0])
    assert doc["schema_version"] == SCHEMA_VERSION
    (act,) = doc["activities"]
    (join,) = msgspec.convert(act["joins"], list[Join])
    keys = {act["id"], *act["aliases"], *(f"{s}:{i}" for s, i in act["source_ids"].items())}
    assert set(join.records) <= keys and join.records[0] != act["id"]  # the first record has none
    assert "`joins` holds" in section and "`schema_version` 1" in section
