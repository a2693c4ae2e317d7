"""Properties of the merge over generated workouts, each recorded by several sources.

Workouts start at least 30 minutes apart and their records agree within a
fraction of the heuristic's limits, so the inputs hold no ambiguity: the
right grouping is known (one activity per workout) whatever the order.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from healthcache import codec, guard, normalise
from healthcache.config import DEFAULT_PREFERENCE
from healthcache.merge import FIELD_RULES, MERGED_FIELDS, merge
from healthcache.model.records import HR_FIELDS, Cache, HRSplit, SourceRecord, empty_cache
from healthcache.model.sports import normalise_sport

SOURCES = ("garmin", "fit", "strava", "polar", "apple_health")
T0 = datetime(2023, 3, 1, 6, 0, tzinfo=UTC)
# Per family, the name each source gives it.
SPORT_NAMES: dict[str, dict[str, str]] = {
    "running": {
        "garmin": "running",
        "fit": "running/generic",
        "strava": "Run",
        "polar": "RUNNING",
        "apple_health": "HKWorkoutActivityTypeRunning",
    },
    "treadmill": {
        "garmin": "treadmill_running",
        "fit": "running/treadmill",
        "strava": "VirtualRun",
        "polar": "TREADMILL_RUNNING",
        "apple_health": "HKWorkoutActivityTypeRunning/indoor",
    },
    "cycling": {
        "garmin": "road_biking",
        "fit": "cycling/road",
        "strava": "Ride",
        "polar": "ROAD_BIKING",
        "apple_health": "HKWorkoutActivityTypeCycling",
    },
    "strength": {
        "garmin": "strength_training",
        "fit": "training/strength_training",
        "strava": "WeightTraining",
        "polar": "STRENGTH_TRAINING",
        "apple_health": "HKWorkoutActivityTypeTraditionalStrengthTraining",
    },
}


def normalise_generic(raw: dict[str, Any]) -> SourceRecord:
    """The test sources' payload is the record itself (plus a field no summary uses)."""
    fields = {k: v for k, v in raw.items() if k != "kudos"}
    return msgspec.structs.replace(msgspec.convert(fields, SourceRecord), raw=raw)


def broken(raw: Any) -> SourceRecord:
    raise KeyError("unreadable")


@dataclass
class Workout:
    records: list[SourceRecord]


hr_value = st.one_of(st.none(), st.just(0.0), st.integers(90, 185).map(float))


@st.composite
def record_for(draw: st.DrawFn, source: str, index: int, start: datetime, family: str, dist: float | None, dur: float,
               garmin_id: str | None) -> SourceRecord:  # fmt: skip
    shift = timedelta(seconds=draw(st.integers(-60, 60)))
    distance = None
    if dist is not None and draw(st.booleans() | st.just(True)):
        distance = round(dist * draw(st.floats(0.996, 1.004)), 1)
    duration = round(dur * draw(st.floats(0.99, 1.01)), 1)
    avg = draw(hr_value)
    splits = None
    if avg and draw(st.booleans()):
        splits = [
            HRSplit(km=k + 1, duration_s=300.0, avg_hr=avg, max_hr=avg + 5) for k in range(draw(st.integers(1, 3)))
        ]
    sport_raw = SPORT_NAMES[family][source]
    external_id = None
    if source == "strava" and garmin_id is not None and draw(st.booleans()):
        external_id = f"garmin_push_{garmin_id}"  # garmin_ping_<n> names no Garmin activity
    sid = garmin_id if source == "garmin" and garmin_id else f"{index}{SOURCES.index(source)}"
    rec = SourceRecord(
        source=source,
        source_id=sid,
        start_time=(start + shift).strftime("%Y-%m-%dT%H:%M:%SZ"),
        sport=normalise_sport(source, sport_raw),
        sport_raw=sport_raw,
        name=draw(st.sampled_from([None, "", f"{source} workout {index}"])),
        distance_m=distance,
        duration_s=duration,
        calories=draw(st.sampled_from([None, 0.0, 420.0 + SOURCES.index(source)])),
        avg_hr=avg,
        max_hr=None if avg is None else draw(st.sampled_from([None, avg + 20])),
        avg_power=draw(st.sampled_from([None, 200.0 + SOURCES.index(source)])),
        hr_splits=splits,
        external_id=external_id,
    )
    raw = msgspec.to_builtins(rec)
    raw["kudos"] = draw(st.integers(0, 3))
    return msgspec.structs.replace(rec, raw=raw)


@st.composite
def workouts(draw: st.DrawFn) -> list[Workout]:
    out: list[Workout] = []
    for i in range(draw(st.integers(1, 6))):
        start = T0 + timedelta(minutes=40 * i + draw(st.integers(0, 10)))
        family = draw(st.sampled_from(sorted(SPORT_NAMES)))
        dist = None if family == "strength" else float(draw(st.integers(3000, 40_000)))
        dur = float(draw(st.integers(900, 9000)))
        sources = draw(st.lists(st.sampled_from(SOURCES), min_size=1, max_size=5, unique=True))
        gid = f"9{i}{draw(st.integers(10_000, 99_999))}" if "garmin" in sources else None
        recs = [draw(record_for(s, i, start, family, dist, dur, gid)) for s in sources]
        out.append(Workout(recs))
    return out


def grouping(cache: Cache) -> set[frozenset[str]]:
    return {frozenset(f"{s}:{i}" for s, i in a.source_ids.items()) for a in cache.activities}


def truth(ws: list[Workout]) -> set[frozenset[str]]:
    return {frozenset(r.key for r in w.records) for w in ws}


def merge_checked(cache: Cache, batch: list[SourceRecord], now: str) -> Cache:
    """Merge, and check that nothing the old cache held is lost."""
    new, _ = merge(cache, batch, now=now)
    assert guard.check(cache, new, None) == []
    assert codec.hard_invariants(new) == []
    old_keys = {k for a in cache.activities for k in a.record_keys()}
    new_keys = {k for a in new.activities for k in a.record_keys()}
    assert old_keys <= new_keys
    return new


def by_source(ws: list[Workout], order: tuple[str, ...]) -> list[list[SourceRecord]]:
    return [[r for w in ws for r in w.records if r.source == s] for s in order]


def run(batches: list[list[SourceRecord]]) -> Cache:
    cache = empty_cache("t", "2024-01-01T00:00:00Z")
    for day, batch in enumerate(batches, start=1):
        cache = merge_checked(cache, batch, f"2024-01-{day:02d}T00:00:00Z")
    return cache


@pytest.fixture
def readable(monkeypatch: pytest.MonkeyPatch) -> None:
    for source in SOURCES:
        monkeypatch.setitem(normalise.NORMALISERS, source, "tests.test_merge_properties:normalise_generic")


@pytest.fixture
def unreadable(monkeypatch: pytest.MonkeyPatch) -> None:
    for source in SOURCES:
        monkeypatch.setitem(normalise.NORMALISERS, source, "tests.test_merge_properties:broken")


COMMON = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@COMMON
@given(ws=workouts(), orders=st.lists(st.permutations(SOURCES), min_size=2, max_size=3))
@pytest.mark.usefixtures("readable")
def test_grouping_does_not_depend_on_source_order(ws: list[Workout], orders: list[tuple[str, ...]]) -> None:
    results = [grouping(run(by_source(ws, tuple(order)))) for order in orders]
    assert all(r == truth(ws) for r in results)


@COMMON
@given(ws=workouts(), seed=st.randoms(use_true_random=False))
@pytest.mark.usefixtures("readable")
def test_one_batch_in_any_record_order_groups_the_same(ws: list[Workout], seed: Any) -> None:
    records = [r for w in ws for r in w.records]
    seed.shuffle(records)
    assert grouping(run([records])) == truth(ws)


@COMMON
@given(ws=workouts(), order=st.permutations(SOURCES), split=st.integers(1, 4))
@pytest.mark.usefixtures("readable")
def test_merging_twice_equals_merging_once(ws: list[Workout], order: tuple[str, ...], split: int) -> None:
    batches = by_source(ws, tuple(order))
    once = run(batches)
    records = [r for b in batches for r in b]
    for chunk in (records, records[:split], records[split:]):
        again, report = merge(once, chunk, now="2025-01-01T00:00:00Z")
        assert again == once
        assert report.summary()["unchanged"] == len(chunk)
        assert not report.changed


def _preferred(records: list[SourceRecord], name: str) -> tuple[Any, set[Any]]:
    """The value the most preferred source with a value gives, and every value present."""
    ranked = sorted(records, key=lambda r: DEFAULT_PREFERENCE.index(r.source))
    present = [getattr(r, name) for r in ranked if getattr(r, name) is not None]
    good = [v for v in present if v not in FIELD_RULES[name].empty]
    return (good[0] if good else None), {repr(v) for v in present}


@COMMON
@given(ws=workouts(), order=st.permutations(SOURCES))
@pytest.mark.usefixtures("readable")
def test_fields_come_from_the_preferred_source_and_hr_is_kept(ws: list[Workout], order: tuple[str, ...]) -> None:
    cache = run(by_source(ws, tuple(order)))
    where = {k: a for a in cache.activities for k in a.record_keys()}
    for w in ws:
        act = where[w.records[0].key]
        for rec in w.records:
            assert act.raw[rec.source] == rec.raw  # every input, its HR included, is kept
        for name in MERGED_FIELDS:
            best, present = _preferred(w.records, name)
            value = getattr(act, name)
            if best is not None:
                assert value == best, name
            else:
                assert (value is None and not present) or repr(value) in present, name


@COMMON
@given(ws=workouts(), order=st.permutations(SOURCES))
@pytest.mark.usefixtures("unreadable")
def test_without_readable_payloads_nothing_is_lost(ws: list[Workout], order: tuple[str, ...]) -> None:
    """If no stored payload can be re-read, grouping and HR still hold (values are kept, not guessed)."""
    cache = run(by_source(ws, tuple(order)))
    assert grouping(cache) == truth(ws)
    where = {k: a for a in cache.activities for k in a.record_keys()}
    for w in ws:
        act = where[w.records[0].key]
        for name in HR_FIELDS:
            values = [getattr(r, name) for r in w.records if getattr(r, name) not in (None, [], 0.0)]
            if values:
                assert getattr(act, name) in values


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ws=workouts(), data=st.data())
@pytest.mark.usefixtures("readable")
def test_no_id_or_alias_ever_disappears(ws: list[Workout], data: st.DataObject) -> None:
    """Batches in arbitrary pieces, later updates and repeats: every step passes the guard."""
    records = [r for w in ws for r in w.records]
    pieces = data.draw(st.lists(st.integers(0, len(records)), max_size=4).map(sorted))
    bounds = [0, *pieces, len(records)]
    batches = [records[a:b] for a, b in itertools.pairwise(bounds)]
    updated = [msgspec.structs.replace(r, name="renamed", raw={**r.raw, "name": "renamed"}) for r in records[:3]]
    run([*batches, updated, records])
