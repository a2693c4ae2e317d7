"""healthcache diff: states by name, field-level changes, the fate of every activity that left."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest

from healthcache import backup, diff
from healthcache.config import Paths
from healthcache.model.records import Activity, Cache
from healthcache.store import Store
from tests import factories, test_views
from tests.test_views import cache_of, hc

# The imported sample workspace (fixtures shared with test_views).
sample_template = test_views.sample_template
sample_home = test_views.sample_home


def edit(home: Path, change: Callable[[Cache], Cache]) -> None:
    """Save ``change(cache)`` through the real store (guard, backup, index)."""
    store = Store(Paths(home))
    with store.transaction() as tx:
        tx.save(change(tx.cache))


def with_distance(cache: Cache, ident: str, metres: float) -> Cache:
    acts = [msgspec.structs.replace(a, distance_m=metres) if a.id == ident else a for a in cache.activities]
    return msgspec.structs.replace(cache, activities=acts)


def test_no_backup_differs_right_after_the_first_save(sample_home: Path) -> None:
    result = hc(sample_home)("diff")
    assert result.exit_code == 1
    assert "no backup" in result.output and "differs from the current file" in result.output


def test_a_delete_shows_as_tombstoned(sample_home: Path) -> None:
    run = hc(sample_home)
    victim = cache_of(sample_home).activities[0]
    assert run("delete", victim.id, "--reason", "double upload").exit_code == 0
    result = run("diff", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["a"].startswith("latest (unified-cache-") and data["b"] == "current"
    assert data["added"] == [] and data["changed"] == []
    assert [(r["id"], r["fate"], r["reason"]) for r in data["removed"]] == [(victim.id, "tombstoned", "double upload")]
    assert data["unchanged"] == len(cache_of(sample_home).activities)
    assert data["tombstones"] == [0, 1]
    text = run("diff").output
    assert f"- {victim.id}" in text and "tombstoned: double upload" in text


def test_field_level_changes_and_direction(sample_home: Path) -> None:
    act = next(a for a in cache_of(sample_home).activities if a.distance_m)
    old = act.distance_m
    edit(sample_home, lambda c: with_distance(c, act.id, 1234.5))
    data = json.loads(hc(sample_home)("diff", "--json").output)
    (changed,) = data["changed"]
    assert changed["id"] == act.id
    assert changed["fields"] == [{"path": "distance_m", "change": "changed", "old": old, "new": 1234.5}]
    back = json.loads(hc(sample_home)("diff", "current", "latest", "--json").output)
    assert back["changed"][0]["fields"][0] == {"path": "distance_m", "change": "changed", "old": 1234.5, "new": old}
    text = hc(sample_home)("diff").output
    assert f"~ {act.id}" in text and f"    distance_m: {old!r} -> 1234.5" in text


def test_unlink_shows_the_split_and_link_the_absorbed_activity(sample_home: Path) -> None:
    run = hc(sample_home)
    pair = next(a for a in cache_of(sample_home).activities if set(a.source_ids) == {"garmin", "fit"})
    garmin, fit = (f"{s}:{pair.source_ids[s]}" for s in ("garmin", "fit"))
    result = run("unlink", garmin, fit)
    assert result.exit_code == 0, result.output
    split = json.loads(run("diff", "--json").output)
    (added,) = split["added"]
    assert added["id"] == fit and added["note"] == f"part of {pair.id} in {split['a']}"
    assert [c["id"] for c in split["changed"]] == [pair.id]
    result = run("link", garmin, fit)
    assert result.exit_code == 0, result.output
    data = json.loads(run("diff", "--json").output)
    (gone,) = data["removed"]
    keeper = next(x for x in cache_of(sample_home).activities if gone["id"] in x.aliases)
    assert gone["fate"] == "absorbed" and gone["into"] == keeper.id and {gone["id"], keeper.id} == {pair.id, fit}
    (changed,) = data["changed"]
    assert changed["id"] == keeper.id
    paths = {f["path"] for f in changed["fields"]}
    assert any(p.startswith("aliases") for p in paths) and any(p.startswith("source_ids") for p in paths)
    assert f"absorbed into {keeper.id}" in run("diff").output


def test_backups_by_name_stamp_prefix_and_hash_prefix(sample_home: Path) -> None:
    run = hc(sample_home)
    act = cache_of(sample_home).activities[-1]
    edit(sample_home, lambda c: with_distance(c, act.id, 999.0))
    items = backup.list_backups(Paths(sample_home).backups)
    older = next(b for b in items if b.digest != items[0].digest)
    stamp = older.name.removeprefix(backup.PREFIX).split("-")[0]
    for spec in (older.name, stamp, older.digest[:6], str(older.path)):
        result = run("diff", spec, "current", "--json")
        assert result.exit_code == 0, (spec, result.output)
        data = json.loads(result.output)
        assert data["a"] == older.name and [c["id"] for c in data["changed"]] == [act.id]
    ambiguous = run("diff", "2")
    assert ambiguous.exit_code == 2
    assert all(b.name in ambiguous.output for b in items)
    unknown = run("diff", "nonesuch")
    assert unknown.exit_code == 2 and "healthcache backups list" in unknown.output
    assert run("diff", "a", "b", "c").exit_code == 2


def test_latest_skips_a_backup_of_the_current_file(sample_home: Path) -> None:
    """The newest backup may be the current state itself; latest means the newest that differs."""
    paths = Paths(sample_home)
    act = cache_of(sample_home).activities[-1]
    edit(sample_home, lambda c: with_distance(c, act.id, 777.0))
    sha = backup.file_sha256(paths.cache)
    newest = backup.list_backups(paths.backups)[0]
    if not sha.startswith(newest.digest):  # keep the current state as the newest backup ourselves
        from datetime import UTC, datetime

        shutil.copyfile(paths.cache, paths.backups / backup.backup_name(datetime.now(UTC), sha))
    assert sha.startswith(backup.list_backups(paths.backups)[0].digest)
    data = json.loads(hc(sample_home)("diff", "--json").output)
    assert [c["id"] for c in data["changed"]] == [act.id]
    assert sha[:12] not in data["a"]


def test_baseline_compares_counts_only(sample_home: Path) -> None:
    run = hc(sample_home)
    assert run("diff", "baseline").exit_code == 2  # none recorded yet
    assert run("verify", "--baseline").exit_code == 0
    victim = next(a for a in cache_of(sample_home).activities if a.avg_hr is not None)
    assert run("delete", victim.id, "--reason", "test").exit_code == 0
    data = json.loads(run("diff", "baseline", "--json").output)
    assert "counts" in data["note"]
    rows = {r["what"]: (r["a"], r["b"]) for r in data["rows"]}
    before = len(cache_of(sample_home).activities) + 1
    assert rows["activities"] == (before, before - 1)
    assert rows["records"][0] == rows["records"][1]  # a tombstone keeps the records it covers
    assert rows["with avg_hr"][1] == rows["with avg_hr"][0] - 1
    assert any(k.startswith("records ") for k in rows)
    text = run("diff", "baseline").output
    assert "only counts can be compared" in text and "activities" in text


def test_a_drop_without_tombstone_is_named_dropped() -> None:
    a = factories.cache(5)
    b = msgspec.structs.replace(a, activities=a.activities[1:])
    d = diff.diff_caches(a, b, a_label="before", b_label="after")
    assert [(r.id, r.fate) for r in d.removed] == [(a.activities[0].id, "dropped")]
    assert "(DROPPED)" in diff.render(d)
    assert d.summary()["dropped"] == 1 and not d.empty
    assert diff.diff_caches(a, a).empty


def test_deepdiff_runs_only_on_activities_whose_content_differs(monkeypatch: pytest.MonkeyPatch) -> None:
    a = factories.cache(3000)
    changed_ids = {a.activities[10].id, a.activities[2000].id}
    acts = [
        msgspec.structs.replace(x, calories=(x.calories or 0) + 1) if x.id in changed_ids else x for x in a.activities
    ]
    # Equal copies (decoded again, not the same objects) are recognised as unchanged.
    b = msgspec.json.decode(msgspec.json.encode(msgspec.structs.replace(a, activities=acts)), type=Cache)
    calls: list[str] = []
    real = diff.field_changes

    def counting(old: Activity, new: Activity) -> list[diff.FieldChange]:
        calls.append(old.id)
        return real(old, new)

    monkeypatch.setattr(diff, "field_changes", counting)
    d = diff.diff_caches(a, b)
    assert set(calls) == changed_ids and len(calls) == 2
    assert {c.id for c in d.changed} == changed_ids and d.unchanged == 2998
    assert all([f.path for f in c.fields] == ["calories"] for c in d.changed)


def test_restore_dry_run_prints_the_same_diff(sample_home: Path) -> None:
    run = hc(sample_home)
    victim = cache_of(sample_home).activities[0]
    assert run("delete", victim.id, "--reason", "double upload").exit_code == 0
    older = backup.list_backups(Paths(sample_home).backups)[-1]
    before = Paths(sample_home).cache.read_bytes()
    dry = run("restore", older.name, "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    shown = json.loads(dry.output)["diff"]
    direct = json.loads(run("diff", "current", older.name, "--json").output)
    for key in ("added", "removed", "changed", "unchanged", "tombstones"):
        assert shown[key] == direct[key], key
    assert [a["id"] for a in shown["added"]] == [victim.id]
    text = run("restore", older.name, "--dry-run").output
    assert f"current -> {older.name} (replace): 1 added" in text and f"+ {victim.id}" in text
    assert Paths(sample_home).cache.read_bytes() == before
