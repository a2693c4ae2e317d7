"""healthcache rebuild: re-derive from the kept raw payloads, ask for REBUILD, save through the guard."""

from __future__ import annotations

import json
import re
from pathlib import Path

import msgspec

from healthcache import backup, normalise, rebuild
from healthcache.config import Paths
from healthcache.model.records import Activity, Cache, HRSplit
from healthcache.store import Store
from tests import test_views
from tests.test_views import cache_of, hc

sample_template = test_views.sample_template
sample_home = test_views.sample_home


def snapshot(home: Path) -> tuple[bytes, list[str]]:
    paths = Paths(home)
    return paths.cache.read_bytes(), sorted(p.name for p in paths.backups.iterdir())


def make_stale(home: Path, ident: str | None = None, **fields: object) -> Activity:
    """Save (through the store) one activity with fields its payloads no longer agree with,
    as an older healthcache that mis-read them would have written it."""
    store = Store(Paths(home))
    with store.transaction() as tx:
        act = next(a for a in tx.cache.activities if a.id == ident or (ident is None and "garmin" in a.source_ids))
        stale = msgspec.structs.replace(act, **fields)
        acts = [stale if a is act else a for a in tx.cache.activities]
        tx.save(msgspec.structs.replace(tx.cache, activities=acts))
    return act


def test_rebuild_of_a_cache_written_by_this_version_is_a_no_op(sample_home: Path) -> None:
    before = snapshot(sample_home)
    result = hc(sample_home)("rebuild", input="REBUILD\n")
    assert result.exit_code == 0, result.output
    assert "nothing to rebuild; nothing was written" in result.output
    assert "Type REBUILD" not in result.output  # nothing to confirm
    assert snapshot(sample_home) == before  # same bytes, no backup


def test_a_stale_field_is_fixed_and_nothing_else_changes(sample_home: Path) -> None:
    good = make_stale(sample_home, distance_m=1234.0)
    before = cache_of(sample_home)
    _, backups_before = snapshot(sample_home)
    stale_sha = backup.file_sha256(Paths(sample_home).cache)
    dry = hc(sample_home)("rebuild", "--dry-run", "--json")
    assert dry.exit_code == 0
    plan = json.loads(dry.output)
    assert plan["summary"]["changed"] == 1 and plan["kept_as_is"] == []
    (changed,) = plan["diff"]["changed"]
    assert changed["id"] == good.id
    assert {f["path"]: (f["old"], f["new"]) for f in changed["fields"] if f["path"] != "updated_at"} == {
        "distance_m": (1234.0, good.distance_m)
    }
    assert snapshot(sample_home)[1] == backups_before  # the dry run wrote nothing

    result = hc(sample_home)("rebuild", input="REBUILD\n")
    assert result.exit_code == 0, result.output
    assert "distance_m: 1234.0 -> " in result.output and "rebuilt: 1 activity changed" in result.output
    after = cache_of(sample_home)
    fixed = next(a for a in after.activities if a.id == good.id)
    assert fixed.distance_m == good.distance_m
    assert msgspec.structs.replace(fixed, updated_at=good.updated_at) == good  # only that field (and its stamp)
    assert [a for a in after.activities if a.id != good.id] == [a for a in before.activities if a.id != good.id]
    assert (after.tombstones, after.links) == (before.tombstones, before.links)
    # Backed up like every save: the state it replaced is kept, and the output names it.
    saved_as = re.search(r"the previous file was saved as (\S+)", result.output)
    assert saved_as is not None
    info = backup.parse_name(Paths(sample_home).backups / saved_as.group(1))
    assert info is not None and info.path.exists() and stale_sha.startswith(info.digest)
    again = hc(sample_home)("rebuild", input="REBUILD\n")
    assert "nothing to rebuild" in again.output


def test_anything_but_rebuild_aborts_with_nothing_written(sample_home: Path) -> None:
    make_stale(sample_home, name="Mis-read name")
    before = snapshot(sample_home)
    for answer in ("rebuild\n", "yes\n", "", None):
        result = hc(sample_home)("rebuild", input=answer)
        assert result.exit_code == 1, (answer, result.output)
        assert "aborted" in result.output and "nothing was written" in result.output
        assert snapshot(sample_home) == before
    quiet = hc(sample_home)("rebuild", "--json", input="no\n")
    assert quiet.exit_code == 1 and snapshot(sample_home) == before


def test_activities_without_a_readable_payload_are_kept_as_is(sample_home: Path) -> None:
    store = Store(Paths(sample_home))
    with store.transaction() as tx:
        lone = next(a for a in tx.cache.activities if len(a.source_ids) == 1)
        (source,) = lone.source_ids
        bare = msgspec.structs.replace(lone, raw={}, distance_m=(lone.distance_m or 0) + 500)
        tx.save(msgspec.structs.replace(tx.cache, activities=[bare if a is lone else a for a in tx.cache.activities]))
    result = hc(sample_home)("rebuild", "--dry-run")
    assert result.exit_code == 0
    assert "kept as is: 1, no raw payload that can be re-read" in result.output
    assert f"{lone.id}: no raw payload for {source}:{lone.source_ids[source]}" in result.output
    assert "nothing to rebuild" in result.output


def test_values_outside_the_payloads_are_never_dropped(sample_home: Path) -> None:
    """A name typed on the website, a cadence from another tool: a present value is never
    replaced by a missing one, so rebuild keeps what no payload says."""
    cache = cache_of(sample_home)
    act = next(a for a in cache.activities if a.name is None and a.avg_cadence is None)
    make_stale(sample_home, act.id, name="Treadmill tempo", avg_cadence=171.0)
    plan = rebuild.plan(cache_of(sample_home), now="2030-01-01T00:00:00Z")
    assert plan.diff.empty
    kept = next(a for a in plan.cache.activities if a.id == act.id)
    assert (kept.name, kept.avg_cadence) == ("Treadmill tempo", 171.0)


def test_the_plan_is_pure_and_keeps_grouping(sample_home: Path) -> None:
    cache: Cache = cache_of(sample_home)
    plan = rebuild.plan(cache, now="2030-01-01T00:00:00Z")
    assert plan.rebuilt == len(cache.activities) and not plan.changed
    assert [a.source_ids for a in plan.cache.activities] == [a.source_ids for a in cache.activities]
    assert all(x is y for x, y in zip(plan.cache.activities, cache.activities, strict=True))


def test_splits_fetched_apart_from_the_payloads_are_not_replaced(sample_home: Path) -> None:
    """backfill-hr fetches splits for a source whose payload has none; a lesser source's
    splits that arrive later must not replace them, in a merge or in a rebuild."""
    cache = cache_of(sample_home)
    act = next(a for a in cache.activities if set(a.source_ids) == {"garmin", "fit"})
    records = {s: normalise.from_raw(s, act.raw[s]) for s in act.source_ids}
    assert not records["garmin"].hr_splits and records["fit"].hr_splits  # garmin ranks first
    fetched = [HRSplit(km=s.km, duration_s=s.duration_s, avg_hr=(s.avg_hr or 0) + 3) for s in act.hr_splits or []]
    make_stale(sample_home, act.id, hr_splits=fetched, distance_m=1.0)
    plan = rebuild.plan(cache_of(sample_home), now="2030-01-01T00:00:00Z")
    (changed,) = plan.diff.changed
    assert [f.path for f in changed.fields if f.path != "updated_at"] == ["distance_m"]
    kept = next(a for a in plan.cache.activities if a.id == act.id)
    assert kept.hr_splits == fetched
