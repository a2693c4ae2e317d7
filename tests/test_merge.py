"""The merge engine on real-shaped payloads: which records become one workout, by which rule."""

from __future__ import annotations

from datetime import timedelta

import msgspec
import pytest

from healthcache import codec, guard
from healthcache.cli.render import render_merge_report
from healthcache.merge import FIELD_RULES, MERGED_FIELDS, garmin_ref, merge
from healthcache.model.records import SUMMARY_FIELDS, Cache, Link, SourceRecord, Tombstone, empty_cache
from tests.test_merge_payloads import (
    CORPUS,
    T0,
    fit,
    fit_session,
    fit_session_from_file,
    garmin,
    garmin_payload,
    normalise_fit,
    normalise_garmin,
    strava,
    use_test_normalisers,
)

NOW = "2024-06-01T00:00:00Z"
LATER = "2024-06-02T00:00:00Z"
pytestmark = pytest.mark.usefixtures(use_test_normalisers.__name__)


def grouping(cache: Cache) -> set[frozenset[str]]:
    return {frozenset(f"{s}:{i}" for s, i in a.source_ids.items()) for a in cache.activities}


def run(*batches: list[SourceRecord], cache: Cache | None = None) -> tuple[Cache, list]:
    cache = cache if cache is not None else empty_cache("t", NOW)
    reports = []
    for i, batch in enumerate(batches):
        new, report = merge(cache, batch, now=f"2024-06-{i + 1:02d}T00:00:00Z")
        assert guard.check(cache, new, None) == []
        assert codec.hard_invariants(new) == []
        cache = new
        reports.append(report)
    return cache, reports


SEC = timedelta(seconds=1)
MIN = timedelta(minutes=1)

TREADMILL_1 = fit(T0 + 4 * SEC, sub_sport="treadmill", distance=None, elapsed=1818)
TREADMILL_8 = fit(T0 + 4 * SEC, sub_sport="treadmill", distance=None, elapsed=1950)
SAME_RUN = fit(T0 + 1 * SEC, distance=10_003.5, elapsed=3001)

# (case, batches in order, expected groups, rule of the record that joined)
CASES = [
    (
        "garmin run and its strava copy with external_id",
        [[garmin(111)], [strava(222, T0 + 3 * SEC, distance=10_150, external_id="garmin_push_111")]],
        [{"garmin:111", "strava:222"}],
        "external_id",
    ),
    (
        "strava copy without external_id: seconds apart, distances 1.5 % apart",
        [[garmin(111)], [strava(222, T0 + 7 * SEC, distance=10_150)]],
        [{"garmin:111", "strava:222"}],
        "heuristic",
    ),
    (
        "strava copy cropped 8 %: only the external_id can tell",
        [[garmin(111)], [strava(222, T0 + 40 * SEC, distance=9_200, elapsed=2700, external_id="garmin_push_111")]],
        [{"garmin:111", "strava:222"}],
        "external_id",
    ),
    (
        "strava first, garmin later: external_id read from the kept strava payload",
        [[strava(222, T0 + 40 * SEC, distance=9_200, external_id="garmin_push_111")], [garmin(111)]],
        [{"garmin:111", "strava:222"}],
        "external_id",
    ),
    (
        "a manual upload of the garmin file keeps its file name",
        [[garmin(12129115726)], [strava(222, T0 + 2 * MIN, distance=9_000, external_id="12129115726_ACTIVITY.fit")]],
        [{"garmin:12129115726", "strava:222"}],
        "external_id",
    ),
    (
        "both in one batch",
        [[strava(222, T0 + 5 * SEC, distance=10_100), garmin(111)]],
        [{"garmin:111", "strava:222"}],
        "heuristic",
    ),
    (
        "two different runs 20 minutes apart on one day",
        [[garmin(111)], [strava(222, T0 + 20 * MIN, distance=10_050)]],
        [{"garmin:111"}, {"strava:222"}],
        None,
    ),
    (
        "starts 6 minutes apart",
        [[garmin(111)], [strava(222, T0 + 6 * MIN)]],
        [{"garmin:111"}, {"strava:222"}],
        None,
    ),
    (
        "treadmill run without distance: durations 1 % apart",
        [
            [garmin(111, type_key="treadmill_running", distance=None, duration=1800)],
            [TREADMILL_1],
        ],
        [{"garmin:111", TREADMILL_1.key}],
        "heuristic",
    ),
    (
        "treadmill run without distance: durations 8 % apart",
        [
            [garmin(111, type_key="treadmill_running", distance=0.0, duration=1800)],
            [TREADMILL_8],
        ],
        [{"garmin:111"}, {TREADMILL_8.key}],
        None,
    ),
    (
        "garmin run and the FIT file of the same run",
        [[garmin(111)], [SAME_RUN]],
        [{"garmin:111", SAME_RUN.key}],
        "heuristic",
    ),
    (
        "a ride and a run at the same time",
        [[garmin(111, type_key="road_biking", distance=10_000)], [strava(222, T0)]],
        [{"garmin:111"}, {"strava:222"}],
        None,
    ),
    (
        "10 km distances 2.5 % apart",
        [[garmin(111)], [strava(222, T0, distance=10_250)]],
        [{"garmin:111"}, {"strava:222"}],
        None,
    ),
    (
        "3 km distances 3 % apart are within the 100 m floor",
        [[garmin(111, distance=3000, duration=1000)], [strava(222, T0, distance=3090, elapsed=1000)]],
        [{"garmin:111", "strava:222"}],
        "heuristic",
    ),
    (
        "two garmin records at the same time are never joined by heuristic",
        [[garmin(111), garmin(112, T0 + 2 * SEC)]],
        [{"garmin:111"}, {"garmin:112"}],
        None,
    ),
    (
        "a file-name reference on another day is not trusted",
        [[garmin(4531922147)], [strava(222, T0 + timedelta(days=3), external_id="4531922147.fit")]],
        [{"garmin:4531922147"}, {"strava:222"}],
        None,
    ),
]


@pytest.mark.parametrize(("batches", "expected", "rule"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_table(batches: list[list[SourceRecord]], expected: list[set[str]], rule: str | None) -> None:
    cache, reports = run(*batches)
    assert grouping(cache) == {frozenset(g) for g in expected}
    joined = [e for r in reports for e in r.entries if e.outcome == "merged"]
    if rule is None:
        assert joined == []
    else:
        assert [e.rule for e in joined] == [rule]
    again, report = merge(cache, [r for b in batches for r in b], now=LATER)
    assert again == cache
    assert report.summary()["unchanged"] == sum(len(b) for b in batches)
    assert not report.changed


def test_real_fit_file_and_its_garmin_summary() -> None:
    """A real Forerunner run read from its FIT file, and Garmin Connect's summary of it."""
    path = CORPUS / "fit" / "dtcooper__python-fitparse__2013-02-06-12-11-14.fit"
    if not path.exists():
        pytest.skip("corpus not present")
    fit_rec = normalise_fit(fit_session_from_file(path))
    start = T0.replace(year=2013, month=2, day=6, hour=12, minute=11, second=14)
    g = normalise_garmin(garmin_payload(2_514_203_441, start, distance=4835.0, duration=2625.1, hr=None))
    cache, (report,) = run([g, fit_rec])
    assert grouping(cache) == {frozenset({g.key, fit_rec.key})}
    act = cache.activities[0]
    assert act.id == g.key and act.avg_hr == 147 and act.max_hr == 171  # HR only the file had
    assert act.distance_m == 4835.0  # garmin is preferred where both have a value
    assert set(act.raw) == {"garmin", "fit"}
    assert report.entries[1].rule == "heuristic"


def test_real_indoor_ride_without_distance_joins_by_duration() -> None:
    path = CORPUS / "fit" / "dtcooper__python-fitparse__sample-activity-indoor-trainer.fit"
    if not path.exists():
        pytest.skip("corpus not present")
    fit_rec = normalise_fit(fit_session_from_file(path))
    assert fit_rec.distance_m == 0.0
    start = T0.replace(year=2011, month=11, day=2, hour=12, minute=54, second=19)
    g = normalise_garmin(garmin_payload(77, start, distance=None, duration=2275.0, type_key="indoor_cycling"))
    cache, (report,) = run([g, fit_rec])
    assert grouping(cache) == {frozenset({g.key, fit_rec.key})}
    assert "duration" in (report.entries[1].detail or "")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("garmin_push_12129115726", ("12129115726", False)),
        ("garmin_ping_319619866387", None),  # since 2022 not a Garmin activity id
        ("GARMIN_PUSH_42", ("42", False)),
        ("12129115726_ACTIVITY.fit", ("12129115726", True)),
        ("4531922147.fit", ("4531922147", True)),
        ("activity_3074364463.tcx", ("3074364463", True)),
        ("activity_3074364463.gpx", ("3074364463", True)),
        ("exports/12129115726_activity.FIT", ("12129115726", True)),
        ("12129115726.zip", ("12129115726", True)),
        ("zwift-activity-123456789.fit", None),
        ("2019-02-17-062644-ELEMNT-297E-195-0.fit", None),
        ("12.fit", None),
        ("garmin_push_", None),
        ("", None),
        (None, None),
    ],
)
def test_garmin_ref(text: str | None, expected: tuple[str, bool] | None) -> None:
    got = garmin_ref(text)
    assert (None if got is None else tuple(got)) == expected


def test_merge_never_mutates_its_input() -> None:
    cache, _ = run([garmin(111), strava(300, T0 + timedelta(hours=3))])
    before = codec.encode(cache)
    merge(cache, [strava(222, T0 + 3 * SEC), garmin(111, name="Renamed"), fit(T0 + 2 * SEC)], now=LATER)
    assert codec.encode(cache) == before


def test_unsorted_input_is_handled() -> None:
    cache, _ = run([garmin(i, T0 + timedelta(hours=i)) for i in range(5)])
    shuffled = msgspec.structs.replace(cache, activities=list(reversed(cache.activities)))
    new, report = merge(shuffled, [strava(9, T0 + timedelta(hours=3, seconds=5))], now=LATER)
    assert report.entries[0].outcome == "merged" and report.entries[0].activity_id == "garmin:3"
    assert [a.start_time for a in new.activities] == sorted(a.start_time for a in new.activities)


# --- field merge ----------------------------------------------------------------


def test_preferred_source_provides_each_field_and_gaps_are_filled() -> None:
    cache, _ = run(
        [strava(222, T0 + 5 * SEC, distance=10_100, watts=250.0, name="Morning Run")],
        [garmin(111, hr=None, name="Paris Running")],
    )
    (act,) = cache.activities
    assert act.id == "strava:222"  # the first record seen names the activity forever
    assert act.source == "garmin"
    assert act.name == "Paris Running" and act.distance_m == 10_000.0 and act.start_time == "2024-05-01T06:30:00Z"
    assert act.avg_power == 250.0  # only strava had power
    assert act.avg_hr == 150.0 and act.max_hr == 172.0  # HR from any source is kept
    assert act.timezone == "Europe/Paris"
    assert act.sport_raw == {"garmin": "running", "strava": "Run"}
    assert set(act.raw) == {"garmin", "strava"}


def test_configured_preference_changes_the_provider() -> None:
    cache, _ = run([garmin(111), strava(222, T0 + 5 * SEC, distance=10_100)])
    new, _ = merge(empty_cache("t", NOW), [garmin(111), strava(222, T0 + 5 * SEC, distance=10_100)], now=NOW,
                   preference=("strava", "garmin"))  # fmt: skip
    assert cache.activities[0].name == "Paris Running"
    assert new.activities[0].name == "Morning Run" and new.activities[0].source == "strava"


def test_a_value_is_never_replaced_by_a_missing_one() -> None:
    cache, _ = run([garmin(111, power=300.0)], [garmin(111, power=None, hr=None)])
    act = cache.activities[0]
    assert act.avg_power == 300.0 and act.avg_hr == 150.0


def test_update_of_the_preferred_source_replaces_its_values() -> None:
    cache, reports = run([garmin(111), strava(222, T0)], [garmin(111, name="Renamed")])
    assert cache.activities[0].name == "Renamed"
    (entry,) = reports[1].entries
    assert (entry.outcome, entry.rule) == ("updated", "same_id")
    assert "name" in entry.fields and "raw" in entry.fields
    assert cache.activities[0].updated_at == "2024-06-02T00:00:00Z"


def test_update_of_a_less_preferred_source_keeps_the_preferred_value() -> None:
    cache, reports = run([garmin(111), strava(222, T0)], [strava(222, T0, name="Renamed on Strava")])
    act = cache.activities[0]
    assert act.name == "Paris Running"
    assert act.raw["strava"]["name"] == "Renamed on Strava"
    assert reports[1].entries[0].fields == ["raw"]


def test_update_of_a_less_preferred_source_that_provides_a_field() -> None:
    """strava provides power (garmin has none): a new strava value replaces it (needs the garmin payload)."""
    cache, _ = run([garmin(111), strava(222, T0, watts=240.0)], [strava(222, T0, watts=255.0)])
    assert cache.activities[0].avg_power == 255.0


def test_a_source_between_two_others_uses_their_payloads() -> None:
    """garmin lacks power, strava has it; a FIT file (preferred over strava) brings its own."""
    cache, _ = run([garmin(111), strava(222, T0, watts=240.0)], [fit(T0 + SEC, power=251)])
    assert cache.activities[0].avg_power == 251
    cache2, _ = run([garmin(111, power=260.0), strava(222, T0, watts=240.0)], [fit(T0 + SEC, power=251)])
    assert cache2.activities[0].avg_power == 260.0


def test_without_normalisers_a_present_value_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    """When another source's payload cannot be re-read the engine keeps what it has (no guess)."""
    from healthcache import normalise

    for source in ("garmin", "strava", "fit"):
        monkeypatch.setitem(normalise.NORMALISERS, source, "tests.test_merge_payloads:broken")
    cache, _ = run([garmin(111), strava(222, T0, watts=240.0)], [fit(T0 + SEC, power=251, hr=140)])
    act = cache.activities[0]
    assert act.avg_power == 240.0 and act.avg_hr == 150.0
    assert set(act.source_ids) == {"garmin", "strava", "fit"}


def test_zero_hr_counts_as_no_hr() -> None:
    cache, _ = run([garmin(111, hr=0.0)], [strava(222, T0, hr=141.0)])
    assert cache.activities[0].avg_hr == 141.0


def test_field_rules_cover_every_merged_field() -> None:
    assert set(MERGED_FIELDS) == {"start_time", "sport", *SUMMARY_FIELDS, "hr_splits"} == set(FIELD_RULES)


# --- ambiguity, absorption, tombstones, links ------------------------------------


def test_closest_candidate_wins_and_the_other_is_reported() -> None:
    cache, reports = run([garmin(111), garmin(112, T0 + 3 * MIN)], [strava(222, T0 + 20 * SEC)])
    (entry,) = reports[1].entries
    assert entry.outcome == "joined_closest" and entry.activity_id == "garmin:111"
    assert entry.candidates == ["garmin:112"] and entry.rule == "heuristic"
    assert grouping(cache) == {frozenset({"garmin:111", "strava:222"}), frozenset({"garmin:112"})}
    assert "1 joined the closest of several matches" in render_merge_report(reports[1])


def test_a_record_matching_two_kept_apart_activities_joins_them() -> None:
    """garmin and strava differ by 3.5 % (kept apart); the FIT file is within 2 % of both."""
    f = fit(T0 + SEC, distance=10_170)
    cache, reports = run([strava(222, T0, distance=10_350)], [garmin(111, distance=10_000)], [f])
    assert grouping(cache) == {frozenset({"garmin:111", "strava:222", f.key})}
    (act,) = cache.activities
    assert act.id == "strava:222"  # first seen
    assert act.aliases == ["garmin:111"]
    assert reports[2].absorbed == ["garmin:111"] and reports[2].entries[0].absorbed == ["garmin:111"]
    assert act.first_seen_at == "2024-06-01T00:00:00Z"
    assert act.distance_m == 10_000.0  # garmin still provides it
    again, report = merge(cache, [strava(222, T0, distance=10_350), garmin(111), f], now=LATER)
    assert again == cache and not report.changed


def test_tombstoned_records_never_come_back() -> None:
    cache, _ = run([garmin(111)])
    cache = msgspec.structs.replace(
        cache,
        activities=[],
        tombstones=[Tombstone(id="garmin:111", deleted_at=NOW, reason="test", source_ids={"garmin": "111"})],
    )
    new, report = merge(cache, [garmin(111), strava(222, T0 + timedelta(hours=2), external_id="garmin_push_111")],
                        now=LATER)  # fmt: skip
    assert [e.outcome for e in report.entries] == ["tombstoned", "tombstoned"]
    assert new.activities == []


def test_distinct_link_overrides_heuristic_and_external_id() -> None:
    base, _ = run([garmin(111)])
    cache = msgspec.structs.replace(base, links=[Link(ids=["garmin:111", "strava:222"], kind="distinct", at=NOW)])
    new, report = merge(cache, [strava(222, T0, external_id="garmin_push_111")], now=LATER)
    assert grouping(new) == {frozenset({"garmin:111"}), frozenset({"strava:222"})}
    assert report.entries[0].outcome == "new"


def test_same_link_overrides_the_heuristic() -> None:
    base, _ = run([garmin(111)])
    cache = msgspec.structs.replace(base, links=[Link(ids=["strava:222", "garmin:111"], kind="same", at=NOW)])
    new, report = merge(cache, [strava(222, T0 + 12 * MIN, distance=7000)], now=LATER)
    assert grouping(new) == {frozenset({"garmin:111", "strava:222"})}
    assert report.entries[0].rule == "link"


def test_external_id_naming_a_taken_garmin_activity_keeps_the_record_apart() -> None:
    cache, _ = run([garmin(111), strava(222, T0)])
    new, report = merge(cache, [strava(223, T0 + 2 * MIN, distance=9000, external_id="garmin_push_111")], now=LATER)
    (entry,) = report.entries
    assert entry.outcome == "kept_apart" and entry.candidates == ["garmin:111"]
    assert "already has strava:222" in (entry.detail or "")
    assert grouping(new) == {frozenset({"garmin:111", "strava:222"}), frozenset({"strava:223"})}


def test_export_ids_are_the_platform_ids() -> None:
    export = msgspec.structs.replace(garmin(111, T0 + 30 * MIN, distance=12_000), source="garmin_export")
    cache, reports = run([garmin(111)], [export])
    assert grouping(cache) == {frozenset({"garmin:111", "garmin_export:111"})}
    assert reports[1].entries[0].rule == "external_id"


def test_report_rendering() -> None:
    _, reports = run([garmin(111), garmin(5, T0 + timedelta(days=1))], [strava(222, T0), garmin(111, name="New")])
    text = render_merge_report(reports[1], verbose=True)
    lines = text.splitlines()
    assert lines[0] == "0 new, 1 updated, 1 merged as duplicates, 0 unchanged"
    assert any(line.split()[:4] == ["merged", "strava:222", "->", "garmin:111"] for line in lines)
    assert any("[same_id] fields: name" in line for line in lines)
    assert render_merge_report(reports[1]).count("\n") == 0
    data = reports[1].as_dict()
    assert data["summary"]["merged"] == 1 and data["entries"][0]["key"] == "strava:222"


def test_hr_splits_from_any_source_are_kept() -> None:
    from healthcache.model.records import HRSplit

    splits = [HRSplit(km=1, duration_s=300.0, avg_hr=150.0, max_hr=160.0)]
    s = msgspec.structs.replace(strava(222, T0), hr_splits=splits)
    cache, _ = run([s], [garmin(111)])
    assert cache.activities[0].hr_splits == splits


def test_fit_session_sport_with_sub_sport() -> None:
    rec = normalise_fit(fit_session(sport="cycling", sub_sport="virtual_activity"))
    assert rec.sport == "virtual_cycling"


def test_a_record_twice_in_one_batch_the_later_wins() -> None:
    batch = [garmin(111, name="First"), garmin(111, name="Second")]
    cache, (report,) = run(batch)
    assert cache.activities[0].name == "Second"
    assert [e.outcome for e in report.entries] == ["unchanged", "new"]
    again, report2 = merge(cache, batch, now=LATER)
    assert again == cache and not report2.changed
