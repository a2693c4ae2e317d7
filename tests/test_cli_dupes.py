"""dupes, link and unlink end to end: exit codes, output, and the saved file read back."""

from __future__ import annotations

import json
import shlex
from datetime import timedelta

import pytest

from healthcache import normalise
from healthcache.ingest import ingest
from healthcache.store import Store
from tests.conftest import CORPUS, Run
from tests.test_merge_payloads import T0, garmin, strava, use_test_normalisers

pytestmark = pytest.mark.usefixtures(use_test_normalisers.__name__)
MIN = timedelta(minutes=1)


def grouping(store: Store) -> set[frozenset[str]]:
    cache = store.read().cache
    return {frozenset(f"{s}:{i}" for s, i in a.source_ids.items()) for a in cache.activities}


@pytest.fixture
def filled(store: Store) -> Store:
    """A garmin run with its strava copy (external_id), a ride and a run at one time, and a lone run."""
    ingest(
        store,
        [garmin(111), garmin(333, T0 + timedelta(days=1), type_key="road_biking"), garmin(555, T0 + timedelta(days=2))],
    )
    ingest(
        store,
        [
            strava(222, T0 + 2 * MIN, distance=9000, external_id="garmin_push_111"),
            strava(444, T0 + timedelta(days=1)),
            strava(666, T0 + timedelta(days=2, minutes=20)),
        ],
    )
    return store


def test_dupes_lists_groups_and_explains(run: Run, filled: Store) -> None:
    result = run("dupes", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert [g["id"] for g in data["groups"]] == ["garmin:111"]
    assert [m["key"] for m in data["groups"][0]["members"]] == ["garmin:111", "strava:222"]
    assert "near_misses" not in data
    text = run("dupes", "--explain").output
    assert "1 activity merged from several sources" in text
    assert "strava:222  external_id: external_id 'garmin_push_111' of strava names garmin:111" in text


def test_dupes_near_misses(run: Run, filled: Store) -> None:
    data = json.loads(run("dupes", "--near-misses", "--json").output)
    pairs = {(n["a"], n["b"]): n["reasons"] for n in data["near_misses"]}
    assert pairs == {("garmin:333", "strava:444"): ["sports cycling and running differ"]}
    assert "garmin:333 / strava:444" in run("dupes", "--near-misses").output


def test_dupes_reads_without_the_write_lock(run: Run, filled: Store) -> None:
    with filled.transaction():
        result = run("dupes", "--json")
    assert result.exit_code == 0
    assert len(json.loads(result.output)["groups"]) == 1


def test_link_joins_and_saves_through_the_guard(run: Run, filled: Store) -> None:
    backups_before = len(list(filled.paths.backups.iterdir()))
    result = run("link", "garmin:555", "strava:666")
    assert result.exit_code == 0, result.output
    assert "linked garmin:555 and strava:666" in result.output
    assert "0 new, 0 updated, 1 merged as duplicates" in result.output
    assert frozenset({"garmin:555", "strava:666"}) in grouping(filled)
    cache = filled.read().cache
    assert [(x.ids, x.kind) for x in cache.links] == [(["garmin:555", "strava:666"], "same")]
    assert len(list(filled.paths.backups.iterdir())) == backups_before + 1
    again = run("link", "garmin:555", "strava:666", "--json")
    assert again.exit_code == 0 and json.loads(again.output)["changed_file"] is False


def test_link_of_one_source_is_a_usage_error(run: Run, filled: Store) -> None:
    before = filled.paths.cache.read_bytes()
    result = run("link", "garmin:111", "garmin:555")
    assert result.exit_code == 2
    assert "one record per source" in result.output
    assert filled.paths.cache.read_bytes() == before


def test_link_of_an_unknown_id(run: Run, filled: Store) -> None:
    result = run("link", "garmin:111", "polar:1")
    assert result.exit_code == 2 and "no activity has the id 'polar:1'" in result.output


def test_unlink_splits_and_the_split_survives_a_sync(run: Run, filled: Store) -> None:
    result = run("unlink", "garmin:111", "strava:222", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["changed_file"] is True and data["summary"]["new"] == 1
    groups = grouping(filled)
    assert frozenset({"garmin:111"}) in groups and frozenset({"strava:222"}) in groups
    assert [x.kind for x in filled.read().cache.links] == ["distinct"]
    after = ingest(filled, [strava(222, T0 + 2 * MIN, distance=9000, external_id="garmin_push_111"), garmin(111)])
    assert after.report.summary()["unchanged"] == 2
    assert json.loads(run("dupes", "--json").output)["groups"] == []
    misses = json.loads(run("dupes", "--near-misses", "--json").output)["near_misses"]
    assert any(n["reasons"] == ["kept apart by unlink (a distinct link)"] for n in misses)


def test_unlink_refused_when_a_payload_cannot_be_read(run: Run, filled: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(normalise.NORMALISERS, "strava", "tests.test_merge_payloads:broken")
    before = filled.paths.cache.read_bytes()
    result = run("unlink", "garmin:111", "strava:222")
    assert result.exit_code == 1
    assert "cannot split garmin:111" in result.output and "nothing was changed" in result.output
    assert filled.paths.cache.read_bytes() == before


def test_link_waits_for_no_one_under_cron(run: Run, filled: Store) -> None:
    with filled.transaction():
        result = run("link", "garmin:555", "strava:666", "--quiet")
    assert result.exit_code == 75


def test_dupes_on_an_empty_workspace(run: Run) -> None:
    result = run("dupes", "--explain", "--near-misses")
    assert result.exit_code == 0
    assert result.output.splitlines() == [
        "0 activities merged from several sources",
        "0 near misses (kept apart)",
        "0 possible copies within one source (never merged automatically: one source's records stay apart)",
    ]


def test_link_refuses_records_days_apart_or_of_other_sports_unless_forced(run: Run, filled: Store) -> None:
    ingest(filled, [strava(888, T0 + timedelta(days=5))])
    before = filled.paths.cache.read_bytes()
    far = run("link", "garmin:555", "strava:888")
    assert far.exit_code == 2
    assert "refusing to link garmin:555 and strava:888: their starts are 72.0 h apart" in far.output
    assert "healthcache link garmin:555 strava:888 --force" in far.output
    sport = run("link", "garmin:333", "strava:444")
    assert sport.exit_code == 2 and "sports cycling and running cannot be one workout" in sport.output
    assert filled.paths.cache.read_bytes() == before
    forced = run("link", "garmin:555", "strava:888", "--force")
    assert forced.exit_code == 0, forced.output
    assert frozenset({"garmin:555", "strava:888"}) in grouping(filled)


def test_near_misses_list_copies_within_one_source_and_how_to_remove_them(run: Run, filled: Store) -> None:
    day10 = T0 + timedelta(days=10)
    ingest(filled, [garmin(777, day10), garmin(778, day10 + timedelta(seconds=30)), garmin(779, day10 + 9 * MIN)])
    before = filled.paths.cache.read_bytes()
    data = json.loads(run("dupes", "--near-misses", "--json").output)
    (copies,) = data["same_source_copies"]
    assert (copies["source"], copies["keep"], copies["copies"]) == ("garmin", "garmin:777", ["garmin:778"])
    command = 'healthcache delete garmin:778 --reason "duplicate of garmin:777"'
    assert copies["commands"] == [command]
    text = run("dupes", "--near-misses").output
    assert "1 possible copy within one source" in text and command in text
    assert filled.paths.cache.read_bytes() == before  # listed, never merged
    removed = run(*shlex.split(command)[1:])
    assert removed.exit_code == 0, removed.output
    assert json.loads(run("dupes", "--near-misses", "--json").output)["same_source_copies"] == []


@pytest.mark.skipif(not (CORPUS / "fit").is_dir(), reason="the shared device corpus is not present")
def test_corpus_copies_of_one_2012_workout_are_listed(run: Run, store: Store) -> None:
    """The corpus holds seven FIT files of one 2012 SDK example run (re-saved, chained, cut short)."""
    imported = run("import", str(CORPUS / "fit"), "--quiet")
    assert imported.exit_code in (0, 1), imported.output  # one empty corpus file fails by design
    cache = store.read().cache
    same_start = sorted(a.id for a in cache.activities if a.start_time == "2012-04-09T21:22:26Z")
    assert len(same_start) == 7 and all(i.startswith("fit:") for i in same_start)
    data = json.loads(run("dupes", "--near-misses", "--json").output)
    found = [c for c in data["same_source_copies"] if c["start_time"] == "2012-04-09T21:22:26Z"]
    assert len(found) == 1
    assert found[0]["source"] == "fit" and sorted([found[0]["keep"], *found[0]["copies"]]) == same_start
    assert len(found[0]["commands"]) == 6
    assert len(store.read().cache.activities) == len(cache.activities)
