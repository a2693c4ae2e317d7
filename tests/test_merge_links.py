"""link and unlink as library functions: decisions that override the rules, and splits that lose nothing."""

from __future__ import annotations

from datetime import timedelta

import msgspec
import pytest

from healthcache import codec, guard, normalise
from healthcache.errors import HealthcacheError, UsageError
from healthcache.merge import groups, link_records, merge, near_misses, unlink_records
from healthcache.model.records import Cache, SourceRecord, empty_cache
from tests.test_merge_payloads import T0, fit, garmin, strava, use_test_normalisers

NOW = "2024-06-01T00:00:00Z"
LATER = "2024-06-03T00:00:00Z"
MIN = timedelta(minutes=1)
pytestmark = pytest.mark.usefixtures(use_test_normalisers.__name__)


def grouping(cache: Cache) -> set[frozenset[str]]:
    return {frozenset(f"{s}:{i}" for s, i in a.source_ids.items()) for a in cache.activities}


def merged(*records: SourceRecord) -> Cache:
    cache, _ = merge(empty_cache("t", NOW), list(records), now=NOW)
    return cache


def checked(old: Cache, new: Cache) -> Cache:
    assert guard.check(old, new, None) == []
    assert codec.hard_invariants(new) == []
    return new


def test_link_joins_what_the_heuristic_keeps_apart_and_it_stays_joined() -> None:
    g, s = garmin(111), strava(222, T0 + 9 * MIN, distance=7000)
    cache = merged(g, s)
    assert len(cache.activities) == 2
    new, report = link_records(cache, "strava:222", "garmin:111", now=LATER)
    checked(cache, new)
    assert grouping(new) == {frozenset({"garmin:111", "strava:222"})}
    (act,) = new.activities
    assert act.id == "garmin:111" and act.aliases == ["strava:222"]  # same first_seen_at: the id decides
    assert report.entries[0].outcome == "merged" and report.absorbed == ["strava:222"]
    assert [(x.ids, x.kind) for x in new.links] == [(["strava:222", "garmin:111"], "same")]
    again, report2 = merge(new, [g, s], now=LATER)
    assert again == new and not report2.changed
    # Linking again records nothing new.
    same, _ = link_records(new, "garmin:111", "strava:222", now=LATER)
    assert same.links == new.links and same.activities == new.activities


def test_link_refuses_two_records_of_one_source() -> None:
    cache = merged(garmin(111), garmin(112, T0 + 3 * MIN))
    with pytest.raises(UsageError, match="one record per source"):
        link_records(cache, "garmin:111", "garmin:112", now=LATER)


def test_link_refuses_activities_holding_the_same_source() -> None:
    cache = merged(
        garmin(111), strava(222, T0), garmin(112, T0 + 2 * MIN, distance=5000), fit(T0 + 2 * MIN, distance=5000)
    )
    assert len(cache.activities) == 2
    fit_key = next(k for a in cache.activities for k in a.record_keys() if k.startswith("fit:"))
    with pytest.raises(UsageError, match="both hold a garmin record"):
        link_records(cache, "strava:222", fit_key, now=LATER)


def test_link_refuses_unknown_and_malformed_ids() -> None:
    cache = merged(garmin(111))
    with pytest.raises(UsageError, match="no activity"):
        link_records(cache, "garmin:111", "strava:999", now=LATER)
    with pytest.raises(UsageError, match="not an id"):
        link_records(cache, "garmin:111", "999", now=LATER)


def test_unlink_splits_a_merged_activity_and_it_stays_split() -> None:
    g, s = garmin(111, hr=None), strava(222, T0 + 5 * MIN - timedelta(seconds=10), hr=141.0)
    cache = merged(g, s)
    (act,) = cache.activities
    assert act.avg_hr == 141.0  # strava's HR, kept by the merge
    new, report = unlink_records(cache, "garmin:111", "strava:222", now=LATER)
    checked(cache, new)
    assert grouping(new) == {frozenset({"garmin:111"}), frozenset({"strava:222"})}
    by_id = {a.id: a for a in new.activities}
    assert by_id["garmin:111"].avg_hr == 141.0  # the activity keeping the id keeps its HR (the guard)
    assert by_id["strava:222"].avg_hr == 141.0 and by_id["strava:222"].name == "Morning Run"
    assert by_id["strava:222"].raw == {"strava": s.raw} and by_id["garmin:111"].raw == {"garmin": g.raw}
    assert by_id["strava:222"].first_seen_at == act.first_seen_at
    assert "avg_hr" in (report.entries[0].detail or "")
    assert [(x.ids, x.kind) for x in new.links] == [(["garmin:111", "strava:222"], "distinct")]
    # A later sync of both, and a FIT file matching both, never rejoins them.
    f = fit(T0 + 2 * MIN)
    again, report2 = merge(new, [g, s, f], now=LATER)
    assert [e.outcome for e in report2.entries] == ["unchanged", "unchanged", "merged"]
    assert not any(frozenset({"garmin:111", "strava:222"}) <= grp for grp in grouping(again))
    assert not report2.absorbed


def test_unlink_of_three_sources_keeps_the_third_with_its_closest() -> None:
    f = fit(T0 + timedelta(seconds=2), distance=10_010)
    cache = merged(garmin(111), strava(222, T0 + 4 * MIN, distance=10_100), f)
    assert len(cache.activities) == 1
    new, _ = unlink_records(cache, "garmin:111", "strava:222", now=LATER)
    checked(cache, new)
    assert grouping(new) == {frozenset({"garmin:111", f.key}), frozenset({"strava:222"})}


def test_unlink_moves_aliases_with_their_records() -> None:
    """An absorbed activity's id goes back to the part holding its record."""
    f = fit(T0 + timedelta(seconds=1), distance=10_170)
    cache, _ = merge(empty_cache("t", NOW), [strava(222, T0, distance=10_350)], now=NOW)
    cache, _ = merge(cache, [garmin(111)], now="2024-06-02T00:00:00Z")
    cache, _ = merge(cache, [f], now="2024-06-02T12:00:00Z")
    (act,) = cache.activities
    assert act.id == "strava:222" and act.aliases == ["garmin:111"]
    new, _ = unlink_records(cache, "strava:222", "garmin:111", now=LATER)
    checked(cache, new)
    by_id = {a.id: a for a in new.activities}
    assert set(by_id) == {"strava:222", "garmin:111"}
    assert by_id["strava:222"].aliases == [] and by_id["garmin:111"].aliases == []


def test_unlink_refuses_when_a_payload_cannot_be_read(monkeypatch: pytest.MonkeyPatch) -> None:
    cache = merged(garmin(111), strava(222, T0))
    monkeypatch.setitem(normalise.NORMALISERS, "strava", "tests.test_merge_payloads:broken")
    with pytest.raises(HealthcacheError, match=r"cannot split garmin:111.*nothing was changed"):
        unlink_records(cache, "garmin:111", "strava:222", now=LATER)


def test_unlink_refuses_without_a_kept_payload() -> None:
    cache = merged(garmin(111), strava(222, T0))
    (act,) = cache.activities
    stripped = msgspec.structs.replace(
        cache, activities=[msgspec.structs.replace(act, raw={"garmin": act.raw["garmin"]})]
    )
    with pytest.raises(HealthcacheError, match="no strava payload"):
        unlink_records(stripped, "garmin:111", "strava:222", now=LATER)


def test_unlink_of_separate_activities_only_records_the_decision() -> None:
    cache = merged(garmin(111), strava(222, T0 + 20 * MIN))
    new, report = unlink_records(cache, "garmin:111", "strava:222", now=LATER)
    assert new.activities == cache.activities
    assert [x.kind for x in new.links] == ["distinct"]
    assert report.entries[0].outcome == "unchanged"


def test_link_after_unlink_replaces_the_decision() -> None:
    cache = merged(garmin(111), strava(222, T0))
    apart, _ = unlink_records(cache, "garmin:111", "strava:222", now=LATER)
    together, _ = link_records(apart, "garmin:111", "strava:222", now="2024-06-04T00:00:00Z")
    checked(apart, together)
    assert grouping(together) == {frozenset({"garmin:111", "strava:222"})}
    assert [x.kind for x in together.links] == ["same"]


def test_groups_explain_the_rule_of_each_record() -> None:
    f = fit(T0 + timedelta(seconds=3), distance=10_040)
    cache = merged(garmin(111), strava(222, T0 + 2 * MIN, distance=9000, external_id="garmin_push_111"), f)
    (group,) = groups(cache, explain=True)
    rules = {m.key: (m.rule, m.detail) for m in group.members}
    assert rules["garmin:111"] == (None, None)
    assert rules["strava:222"][0] == "external_id" and "garmin_push_111" in (rules["strava:222"][1] or "")
    assert rules[f.key][0] == "heuristic" and "start +3 s" in (rules[f.key][1] or "")
    member = next(m for m in group.members if m.key == f.key)
    assert member.comparison is not None and member.comparison["difference"] == pytest.approx(40.0)
    linked, _ = link_records(merged(garmin(5), strava(6, T0 + 30 * MIN)), "garmin:5", "strava:6", now=LATER)
    (g2,) = groups(linked, explain=True)
    assert g2.members[1].rule == "link"


def test_near_misses_say_what_kept_them_apart() -> None:
    day = timedelta(days=1)
    cache = merged(
        garmin(111, type_key="road_biking"),
        strava(222, T0),  # a run at the same time as the ride
        garmin(333, T0 + day),
        strava(444, T0 + day + 6 * MIN),  # starts 6 min apart
        garmin(555, T0 + 2 * day),
        strava(666, T0 + 2 * day, distance=10_300),  # 3 % apart: within twice the limit
        garmin(777, T0 + 3 * day),
        strava(888, T0 + 3 * day, distance=15_000),  # far apart: not near
    )
    found = {(n.a, n.b): n.reasons for n in near_misses(cache)}
    assert set(found) == {("garmin:111", "strava:222"), ("garmin:333", "strava:444"), ("garmin:555", "strava:666")}
    assert "sports cycling and running differ" in found[("garmin:111", "strava:222")]
    assert found[("garmin:333", "strava:444")][0].startswith("starts 6 min apart")
    assert found[("garmin:555", "strava:666")][0].startswith("distance differs by 300 m (2.9 %)")


def test_link_refuses_starts_days_apart_or_incompatible_sports_unless_forced() -> None:
    hour = timedelta(hours=1)
    cache = merged(
        garmin(1),
        strava(2, T0 + 25 * hour),  # a wrong clock or time zone: still linkable
        strava(3, T0 + 27 * hour),  # beyond any time-zone error
        strava(4, T0 + 10 * MIN, sport_type="Ride"),  # a ride beside a run
    )
    joined, _ = link_records(cache, "garmin:1", "strava:2", now=LATER)
    assert frozenset({"garmin:1", "strava:2"}) in grouping(checked(cache, joined))
    with pytest.raises(UsageError, match=r"starts are 27\.0 h apart") as far:
        link_records(cache, "garmin:1", "strava:3", now=LATER)
    assert "healthcache link garmin:1 strava:3 --force" in str(far.value)
    with pytest.raises(UsageError, match="sports running and cycling cannot be one workout"):
        link_records(cache, "garmin:1", "strava:4", now=LATER)
    for other in ("strava:3", "strava:4"):
        forced, _ = link_records(cache, "garmin:1", other, now=LATER, force=True)
        assert frozenset({"garmin:1", other}) in grouping(checked(cache, forced))
