"""Real recorded Garmin Connect and Strava payloads (tests/payloads) through every reader.

The files are response bodies other projects recorded from the real services
(tests/payloads/README.md gives origin, commit and license).  Each test checks
what a person would: durations in seconds that agree with the payload's own
neighbouring fields, the sport the payload names, HR splits that agree with
the activity's summary, and the real clients storing all of it through sync.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import pytest
from garminconnect import parse_activity_detail_metrics

from healthcache.importers.strava_export import read_activities_csv
from healthcache.merge import garmin_ref, merge
from healthcache.model.records import SourceRecord, empty_cache
from healthcache.model.sports import compatible, garmin_sport, normalise_sport
from healthcache.sources.garmin import payloads as garmin
from healthcache.sources.strava import payloads as strava
from healthcache.splits import per_km_splits

if TYPE_CHECKING:
    from tests.fakes.fixtures import Workspace

pytest_plugins = ["tests.fakes.fixtures"]

PAYLOADS = Path(__file__).parent / "payloads"
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
DETAILS_2018 = PAYLOADS / "garmin" / "pe-st_activity-details_2018.json"
STREAMS_2018 = PAYLOADS / "strava" / "sweatpy_activity-streams_2018.json"
SPLITS_2025 = PAYLOADS / "garmin" / "garth-mcp_activity-splits_2025.json"
DAY = 86_400.0
RUN_RACE, RIDE_RACE = 1, 11  # Strava's workout_type of a race
# A streams payload names no activity.  Which one it belongs to is the cassette's request URL;
# its summary figures are quoted from the ``GET /activities/{id}`` answer recorded beside it in
# the same cassette set (tests/payloads/README.md), which is not kept: it carries an embed_token.
STREAMS_OF: dict[str, dict[str, Any]] = {
    STREAMS_2018.name: {
        "id": 1478313529,
        "type": "Ride",
        "start_date": "2018-03-29T15:49:30Z",
        "start_date_local": "2018-03-29T17:49:30Z",
        "elapsed_time": 3914,
        "moving_time": 3808,
        "distance": 29302.8,
        "has_heartrate": True,
        "average_heartrate": 136.1,
        "max_heartrate": 166.0,
    },
    "sweatpy_activity-streams_2020.json": {
        "id": 3547667536,
        "type": "Ride",
        "start_date": "2020-06-01T13:03:45Z",
        "elapsed_time": 7305,
        "moving_time": 7209,
        "distance": 52260.1,
        "has_heartrate": True,
        "average_heartrate": 158.0,
        "max_heartrate": 180.0,
    },
}


def load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def shape(path: Path) -> str | None:
    """What a payload file is, from its content: every file must be one of these."""
    data, source = load(path), path.parent.name
    if isinstance(data, list) and data and all(isinstance(a, dict) for a in data):
        if source == "garmin" and all("activityId" in a for a in data):
            return "garmin list"
        if source == "strava" and all("id" in a and "elapsed_time" in a for a in data):
            return "strava list"
        if source == "strava" and all("type" in s and "data" in s for s in data):
            return "strava streams"
    if isinstance(data, dict):
        if source == "garmin" and isinstance(data.get("summaryDTO"), dict):
            return "garmin activity"
        if source == "garmin" and "lapDTOs" in data:
            return "garmin splits"
        if source == "garmin" and (garmin._LEGACY_WRAPPER in data or "activityDetailMetrics" in data):
            return "garmin details"
        if source == "strava" and "id" in data and "elapsed_time" in data:
            return "strava activity"
        if source == "strava" and all(isinstance(v, dict) and "data" in v for v in data.values()):
            return "strava streams"
    return None


def files(kind: str) -> list[Path]:
    return sorted(p for p in PAYLOADS.rglob("*.json") if shape(p) == kind)


def garmin_list_activities() -> list[tuple[str, dict[str, Any]]]:
    return [(f"{p.name}:{a['activityId']}", a) for p in files("garmin list") for a in load(p)]


def garmin_activities() -> list[tuple[str, dict[str, Any]]]:
    """Every Garmin activity payload (list entries and single-activity payloads) as sent."""
    return garmin_list_activities() + [(p.name, load(p)) for p in files("garmin activity")]


def strava_list_activities() -> list[tuple[str, dict[str, Any]]]:
    return [(f"{p.name}:{a['id']}", a) for p in files("strava list") for a in load(p)]


def strava_activities() -> list[tuple[str, dict[str, Any]]]:
    return strava_list_activities() + [(p.name, load(p)) for p in files("strava activity")]


def readme_rows() -> list[list[str]]:
    text = (PAYLOADS / "README.md").read_text(encoding="utf-8")
    return [
        [c.strip() for c in line.strip("|").split("|")]
        for line in text.splitlines()
        if line.startswith("| `") and line.count("|") >= 8
    ]


def detail_samples() -> int:
    return sum(len(garmin._current_shape(load(p)).get("activityDetailMetrics") or []) for p in files("garmin details"))


def stream_samples() -> int:
    return sum(len(strava.stream_series(load(p))[0]) for p in files("strava streams"))


# --------------------------------------------------------------------------- the corpus itself


def test_every_payload_file_is_documented_with_origin_commit_and_license() -> None:
    files = {str(p.relative_to(PAYLOADS)) for p in PAYLOADS.rglob("*.json")}
    rows = readme_rows()
    documented = {r[0].strip("`") for r in rows}
    assert files == documented
    for row in rows:
        _, _what, year, repo, path, commit, license_ = row
        assert re.fullmatch(r"`[0-9a-f]{40}`", commit), row
        assert re.fullmatch(r"\d{4}", year) and repo.startswith("[") and path.startswith("`"), row
        assert license_ in {"MIT", "Apache-2.0", "BSD-3-Clause"}, row


@pytest.mark.parametrize("path", sorted(PAYLOADS.rglob("*.json")), ids=lambda p: p.name)
def test_every_payload_file_has_a_shape_the_tests_below_exercise(path: Path) -> None:
    """A file added to the folder is tested by being added: its shape decides which tests read it."""
    assert shape(path) is not None, path


def test_the_figures_in_the_readme_are_the_corpus() -> None:
    rows = readme_rows()
    activities = len(garmin_activities()) + len(strava_activities())
    repos = {r[3] for r in rows}
    years = sorted({r[2] for r in rows})
    text = (PAYLOADS / "README.md").read_text(encoding="utf-8")
    figures = (
        f"**{len(rows)} payload files: {activities} activity payloads, {detail_samples()} Garmin detail samples, "
        f"{stream_samples()} Strava stream samples and the laps of {len(files('garmin splits'))} Garmin activity, "
        f"from {len(repos)} repositories, recorded in {len(years)} years "
        f"({', '.join(years)})**"
    )
    assert figures in " ".join(text.split())
    assert len(repos) >= 8 and len(years) >= 8


def test_no_credential_in_the_corpus() -> None:
    for path in PAYLOADS.rglob("*"):
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            assert not re.search(r"(?i)bearer\s+[a-z0-9._-]{20,}|access_token|refresh_token|password", text), path


# --------------------------------------------------------------------------- Garmin normaliser


@pytest.mark.parametrize(("key", "raw"), garmin_activities(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_real_garmin_activity_normalises_in_seconds(key: str, raw: dict[str, Any]) -> None:
    rec = garmin.normalise_activity(raw)
    raw = garmin.list_shape(raw)  # a single-activity payload is checked against its own summary
    assert rec.duration_s is not None and 60 < rec.duration_s < DAY, key
    # Elapsed time covers the timer time and the moving time, and is not wildly more.
    assert rec.duration_s >= 0.99 * raw["duration"], key
    if raw.get("movingDuration"):
        assert rec.moving_time_s is not None and rec.moving_time_s <= rec.duration_s * 1.01, key
    assert rec.duration_s <= 3 * raw["duration"], key
    if raw.get("endTimeGMT"):  # the newest lists say when it ended: elapsed is that span
        span = (garmin._garmin_time(raw["endTimeGMT"], "e") - garmin._garmin_time(raw["startTimeGMT"], "s")).seconds
        assert abs(rec.duration_s - span) <= 2, key
    if raw.get("distance") and raw.get("averageSpeed"):
        assert rec.duration_s >= 0.9 * raw["distance"] / raw["averageSpeed"], key


@pytest.mark.parametrize(("key", "raw"), garmin_activities(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_real_garmin_activity_has_the_sport_it_names(key: str, raw: dict[str, Any]) -> None:
    rec = garmin.normalise_activity(raw)
    raw = garmin.list_shape(raw)
    assert rec.sport != "other", (key, raw["activityType"])
    assert rec.sport_raw == raw["activityType"]["typeKey"]


def test_elapsed_in_milliseconds_is_read_as_seconds_and_says_so() -> None:
    (raw,) = load(PAYLOADS / "garmin" / "pe-st_activitylist-service_2018.json")
    value, how = garmin.elapsed_seconds(raw)
    assert value == pytest.approx(2627.3798828125)
    assert "milliseconds" in how
    newest = load(PAYLOADS / "garmin" / "garth_activity-list_2026.json")[0]
    assert garmin.elapsed_seconds(newest) == (2225.44091796875, "elapsedDuration, seconds")


def test_elapsed_without_neighbours_is_taken_as_it_is() -> None:
    raw = {"elapsedDuration": 3600.0}
    assert garmin.elapsed_seconds(raw) == (3600.0, "elapsedDuration (nothing to check it against)")
    assert garmin.elapsed_seconds({"duration": 1800.0})[0] == 1800.0


def test_versioned_type_keys_and_parent_types() -> None:
    assert normalise_sport("garmin", "stand_up_paddleboarding_v2") == "paddling"
    assert normalise_sport("garmin_export", "stand_up_paddleboarding_v2") == "paddling"
    assert garmin_sport("road_running_v3", 1) == "running"  # unknown key: the parent type decides
    assert garmin_sport("something_new", 2) == "cycling"
    assert garmin_sport("something_new", 17) == "other"  # 17 is "all activities": says nothing
    assert garmin_sport("other", 1) == "other"  # a key Garmin itself calls "other" stays other
    assert garmin_sport("breathwork", 4) == "yoga"  # the 2025 list: parent 4 ("other") says nothing


# --------------------------------------------------------------------------- single-activity payloads


def single_with_list_entry() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    listed = {a["activityId"]: a for _, a in garmin_list_activities()}
    return [
        (p.name, load(p), listed[load(p)["activityId"]])
        for p in files("garmin activity")
        if load(p)["activityId"] in listed
    ]


@pytest.mark.parametrize(
    ("name", "single", "entry"), single_with_list_entry(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_the_single_activity_payload_reads_as_its_list_entry(
    name: str, single: dict[str, Any], entry: dict[str, Any]
) -> None:
    """``activity-service/activity/{id}`` (summaryDTO, activityTypeDTO) of 2018, 2021, 2025 and 2026.

    Before: no ``startTimeGMT`` at the top level, so the payload was refused.  Its
    ``elapsedDuration`` is in seconds even where the list entry's is in milliseconds.
    """
    one, listed = garmin.normalise_activity(single), garmin.normalise_activity(entry)
    assert (one.source_id, one.start_time, one.start_time_local) == (
        listed.source_id,
        listed.start_time,
        listed.start_time_local,
    )
    assert one.sport == listed.sport and one.sport_raw == listed.sport_raw
    for field in ("distance_m", "duration_s", "moving_time_s", "elevation_gain_m", "calories", "avg_hr", "max_hr"):
        a, b = getattr(one, field), getattr(listed, field)
        assert (a is None) == (b is None) and (a is None or abs(a - b) < 1), (name, field, a, b)
    for field in ("avg_cadence", "avg_power"):  # summaryDTO names them apart (averageRunCadence, averagePower)
        a, b = getattr(one, field), getattr(listed, field)
        assert a is None or b is None or abs(a - b) < 1, (name, field, a, b)
    assert one.raw == single  # the payload as sent is what is kept


def test_the_single_activity_payload_names_cadence_and_power_apart() -> None:
    one = garmin.normalise_activity(load(PAYLOADS / "garmin" / "garth_activity_2026.json"))
    assert (one.avg_cadence, one.avg_power) == (111.734375, 194.0)


def test_a_multisport_child_lies_within_its_parent_and_has_its_own_sport() -> None:
    parent = load(PAYLOADS / "garmin" / "pe-st_activity-multisport_2021.json")
    child = load(PAYLOADS / "garmin" / "pe-st_activity-multisport-child_2021.json")
    p, c = garmin.normalise_activity(parent), garmin.normalise_activity(child)
    assert child["activityId"] in parent["metadataDTO"]["childIds"] and child["parentId"] == parent["activityId"]
    assert (p.sport, c.sport) == ("multisport", "walking")
    start = datetime.fromisoformat(p.start_time.replace("Z", "+00:00"))
    child_start = datetime.fromisoformat(c.start_time.replace("Z", "+00:00"))
    assert p.duration_s is not None and c.duration_s is not None
    assert start <= child_start and (child_start - start).total_seconds() + c.duration_s <= p.duration_s + 1


# --------------------------------------------------------------------------- Strava normaliser


@pytest.mark.parametrize(("key", "raw"), strava_activities(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_real_strava_activity_normalises(key: str, raw: dict[str, Any]) -> None:
    rec = strava.normalise_activity(raw)
    assert rec.duration_s == raw["elapsed_time"] and rec.moving_time_s == raw["moving_time"], key
    assert rec.moving_time_s is not None and rec.duration_s is not None
    assert 60 < rec.duration_s < DAY and rec.moving_time_s <= rec.duration_s, key
    assert rec.distance_m == raw["distance"], key
    if raw.get("average_speed"):  # distance over moving time; over elapsed time for a race (2018 list)
        race = raw.get("workout_type") in (RUN_RACE, RIDE_RACE)
        over = rec.duration_s if race else rec.moving_time_s
        assert raw["distance"] / over == pytest.approx(raw["average_speed"], abs=0.06), key
    assert rec.sport != "other" and rec.sport_raw == (raw.get("sport_type") or raw["type"]), key
    assert rec.start_time == raw["start_date"]
    if rec.avg_hr is not None:
        assert rec.max_hr is not None and rec.avg_hr <= rec.max_hr


@pytest.mark.parametrize("path", files("strava activity"), ids=lambda p: p.name)
def test_a_detailed_strava_activity_reads_as_its_list_entry(path: Path) -> None:
    """``GET /activities/{id}`` (2013, 2016) gives the record its list entry would, and only adds.

    No licensed recording holds a detailed activity together with its list entry (go.strava's
    pair was removed: no licence), so the list entry is the detailed payload cut to the keys
    that real list entries carry (every list of the corpus, 2017-2025).  Every field read from
    both is the same; a field only the detailed answer carries (``calories``) fills a gap.
    """
    list_keys = set().union(*(a.keys() for _, a in strava_list_activities()))
    detailed = load(path)
    listed = {k: v for k, v in detailed.items() if k in list_keys}
    one = msgspec.structs.asdict(strava.normalise_activity(detailed))
    entry = msgspec.structs.asdict(strava.normalise_activity(listed))
    assert entry["source_id"] == one["source_id"] and entry["start_time"] and entry["duration_s"]
    for field, value in entry.items():
        if field != "raw":
            assert value == one[field] or (value is None and field == "calories"), (path.name, field)
    assert one["raw"] == detailed and entry["raw"] == listed  # each answer kept as sent


def test_every_real_garmin_ping_number_is_far_above_every_real_garmin_id() -> None:
    """Strava's 2025 list (strava-ruby-client) against Garmin's 2025/2026 lists (garth, garth-mcp-server)."""
    pings = [a["external_id"] for _, a in strava_activities() if str(a.get("external_id")).startswith("garmin_ping_")]
    assert len(pings) >= 25
    highest_garmin_id = max(int(a["activityId"]) for _, a in garmin_activities())
    assert all(garmin_ref(p) is None for p in pings)
    assert min(int(p.removeprefix("garmin_ping_")) for p in pings) > 10 * highest_garmin_id
    # garmin_push_<id> (2016-2017, slashdotdash/strava) still names the Garmin activity.
    pushes = [a["external_id"] for _, a in strava_activities() if str(a.get("external_id")).startswith("garmin_push_")]
    assert pushes and all(garmin_ref(p) == (p.removeprefix("garmin_push_"), False) for p in pushes)


def test_garmin_ping_names_no_garmin_activity() -> None:
    assert garmin_ref("garmin_ping_319619866387") is None
    assert garmin_ref("garmin_push_12129115726") == ("12129115726", False)
    assert garmin_ref("93951588.fit") == ("93951588", True)  # a file name, checked against the day


def test_a_garmin_ping_number_equal_to_a_garmin_id_does_not_join_two_workouts() -> None:
    """Before: ``garmin_ping_<n>`` was trusted as the Garmin id, with no check of start or sport."""
    run = garmin.normalise_activity(load(PAYLOADS / "garmin" / "garth_activity-list_2026.json")[0])
    copy = dict(load(PAYLOADS / "strava" / "strava-ruby-client_athlete-activities_2018.json")[1])
    copy["external_id"] = f"garmin_ping_{run.source_id}"  # same digits, a 2018 run in New York
    ride = strava.normalise_activity(copy)
    cache, report = merge(empty_cache("t", "2026-01-09T00:00:00Z"), [run, ride], now="2026-01-09T00:00:00Z")
    assert {frozenset(a.source_ids.items()) for a in cache.activities} == {
        frozenset({("garmin", run.source_id)}),
        frozenset({("strava", ride.source_id)}),
    }
    assert all(e.rule != "external_id" for e in report.entries)


# --------------------------------------------------------------------------- the heuristic and sports


def record(source: str, sid: str, sport: str, sport_raw: str, distance: float = 8225.0) -> SourceRecord:
    return SourceRecord(
        source=source,
        source_id=sid,
        start_time="2018-03-08T11:23:22Z",
        sport=sport,
        sport_raw=sport_raw,
        distance_m=distance,
        duration_s=2627.0,
    )


def test_an_unknown_sport_is_not_a_wildcard_for_the_heuristic() -> None:
    """Same start, same distance: a Garmin activity of a sport nobody knows is not the Strava run."""
    unknown = record("garmin", "1", normalise_sport("garmin", "underwater_hockey_v7"), "underwater_hockey_v7")
    run = record("strava", "2", "running", "Run")
    assert unknown.sport == "other"
    cache, _ = merge(empty_cache("t", "2018-03-09T00:00:00Z"), [unknown, run], now="2018-03-09T00:00:00Z")
    assert len(cache.activities) == 2
    # ...while the versioned SUP key, now read as paddling, still finds its Strava copy.
    sup = record("garmin", "3", garmin_sport("stand_up_paddleboarding_v2", 228), "stand_up_paddleboarding_v2")
    paddle = record("strava", "4", normalise_sport("strava", "StandUpPaddling"), "StandUpPaddling", 8200.0)
    cache, _ = merge(empty_cache("t", "2018-03-09T00:00:00Z"), [sup, paddle], now="2018-03-09T00:00:00Z")
    assert len(cache.activities) == 1


def test_tcx_other_means_neither_running_nor_cycling() -> None:
    tcx = normalise_sport("tcx", "Other")
    assert compatible(tcx, "pool_swimming") and compatible(tcx, "hiking") and compatible(tcx, "other")
    assert not compatible(tcx, "running") and not compatible(tcx, "virtual_cycling")
    assert not compatible("other", "pool_swimming") and compatible("other", "other")


# --------------------------------------------------------------------------- Garmin details for backfill-hr


def test_the_2018_details_payload_gives_splits_that_agree_with_its_summary() -> None:
    times, metres, bpm = garmin.detail_series(load(DETAILS_2018), parse_activity_detail_metrics)
    (summary,) = load(PAYLOADS / "garmin" / "pe-st_activitylist-service_2018.json")
    assert metres[-1] == pytest.approx(summary["distance"], abs=1)  # kilometres converted
    splits = per_km_splits(times, metres, bpm)
    assert [s.km for s in splits] == list(range(1, 10))  # 8.2 km: eight whole km and the rest
    assert sum(s.duration_s for s in splits) == pytest.approx(summary["duration"], abs=3)
    assert max(s.max_hr or 0 for s in splits) == summary["maxHR"]
    weighted = sum((s.avg_hr or 0) * s.duration_s for s in splits) / sum(s.duration_s for s in splits)
    assert weighted == pytest.approx(summary["averageHR"], abs=3)


def test_details_in_an_unknown_distance_unit_give_no_splits_rather_than_wrong_ones() -> None:
    details = json.loads(DETAILS_2018.read_text(encoding="utf-8"))
    inner = details["com.garmin.activity.details.json.ActivityDetails"]
    for d in inner["measurements"]:
        if d["key"] == "sumDistance":
            d["unit"] = "furlong"
    assert garmin.detail_series(details, parse_activity_detail_metrics) == ([], [], [])


# --------------------------------------------------------------------------- real clients, fake servers


def test_sync_stores_every_real_garmin_list_payload(ws: Workspace) -> None:
    raws = [a for _, a in garmin_list_activities()]
    for raw in raws:
        ws.garmin.add(raw, details=False, laps=False)
    ws.login_garmin()
    days = (datetime.now(UTC) - datetime(2018, 3, 1, tzinfo=UTC)).days + 2
    r = ws.cli("sync", "--source", "garmin", "--days", str(days))
    assert r.code == 0, r.err
    stored = {a.source_ids["garmin"]: a for a in ws.cache().activities}
    assert set(stored) == {str(a["activityId"]) for a in raws}
    for raw in raws:
        act = stored[str(raw["activityId"])]
        assert act.duration_s == pytest.approx(garmin.elapsed_seconds(raw)[0])
        assert act.duration_s is not None and act.duration_s < DAY
        assert act.sport == garmin.normalise_activity(raw).sport != "other"
        assert act.raw["garmin"] == raw  # the payload exactly as the server sent it


def test_sync_stores_every_real_strava_list_payload(ws: Workspace) -> None:
    raws = [a for _, a in strava_list_activities()]
    for raw in raws:
        ws.strava.add(raw, streams=False)
    ws.login_strava()
    days = (datetime.now(UTC) - datetime(2010, 8, 1, tzinfo=UTC)).days + 2
    r = ws.cli("sync", "--source", "strava", "--days", str(days))
    assert r.code == 0, r.err
    stored = {a.source_ids["strava"]: a for a in ws.cache().activities}
    assert set(stored) == {str(a["id"]) for a in raws}
    for raw in raws:
        act = stored[str(raw["id"])]
        assert act.duration_s == raw["elapsed_time"] and act.raw["strava"] == raw
        assert act.sport == normalise_sport("strava", raw.get("sport_type") or raw["type"]) != "other"


def test_backfill_hr_reads_the_real_2018_details_payload(ws: Workspace) -> None:
    (raw,) = load(PAYLOADS / "garmin" / "pe-st_activitylist-service_2018.json")
    ws.garmin.add(raw, details=False, laps=False)
    ws.garmin.details[raw["activityId"]] = load(DETAILS_2018)
    ws.login_garmin()
    days = (datetime.now(UTC) - datetime(2018, 3, 1, tzinfo=UTC)).days + 2
    assert ws.cli("sync", "--source", "garmin", "--days", str(days)).code == 0
    r = ws.cli("backfill-hr", "--source", "garmin")
    assert r.code == 0, r.out + r.err
    (act,) = ws.cache().activities
    assert [s.km for s in act.hr_splits] == list(range(1, 10))
    assert act.hr_splits == per_km_splits(*garmin.detail_series(load(DETAILS_2018), parse_activity_detail_metrics))
    assert act.avg_hr == raw["averageHR"] and act.max_hr == raw["maxHR"]  # HR only ever added
    assert ws.garmin.paths("/activity-service/activity/2541953812/splits") == []  # details were enough


def keyed(streams: list[dict[str, Any]]) -> dict[str, Any]:
    """The same streams as Strava sends them with ``key_by_type=true`` (what healthcache asks for)."""
    return {s["type"]: {k: v for k, v in s.items() if k != "type"} for s in streams}


@pytest.mark.parametrize("path", files("strava streams"), ids=lambda p: p.name)
def test_real_strava_streams_give_splits_that_agree_with_the_summary(path: Path) -> None:
    """Either shape of the streams answer (as recorded: a list of streams, which gave no splits
    before; keyed by type, as healthcache asks), and with a ``null`` point as Strava also sends.

    Strava's mean HR is over moving time, the splits' over elapsed time (the 2018 ride: 3914 s
    elapsed, 3808 s moving), so they agree to 10 %, not to the beat.
    """
    summary = STREAMS_OF[path.name]
    payload = load(path)
    assert isinstance(payload, list)
    with_null = [{**s, "data": [s["data"][0], None, *s["data"][2:]]} for s in payload]
    for answer in (payload, keyed(payload), with_null):
        splits = per_km_splits(*strava.stream_series(answer))
        assert [s.km for s in splits] == list(range(1, math.ceil(summary["distance"] / 1000) + 1))
        assert sum(s.duration_s for s in splits) == pytest.approx(summary["elapsed_time"], abs=2)
        assert max(s.max_hr or 0 for s in splits) == summary["max_heartrate"]
        weighted = sum((s.avg_hr or 0) * s.duration_s for s in splits) / sum(s.duration_s for s in splits)
        assert weighted == pytest.approx(summary["average_heartrate"], rel=0.1)


def test_streams_without_heart_rate_give_no_splits() -> None:
    payload = [s for s in load(STREAMS_2018) if s["type"] != "heartrate"]
    assert strava.stream_series(payload)[2] == [] and per_km_splits(*strava.stream_series(payload)) == []
    assert strava.stream_series({"time": "not a stream"}) == ([], [], []) and strava.stream_series(None) == ([], [], [])


def test_backfill_hr_reads_the_real_2018_strava_streams(ws: Workspace) -> None:
    """The real streams through the real client; the activity is its quoted summary (see STREAMS_OF)."""
    raw = dict(STREAMS_OF[STREAMS_2018.name])
    ws.strava.add(raw, streams=False)
    ws.strava.streams[raw["id"]] = keyed(load(STREAMS_2018))
    ws.login_strava()
    days = (datetime.now(UTC) - datetime(2018, 3, 1, tzinfo=UTC)).days + 2
    assert ws.cli("sync", "--source", "strava", "--days", str(days)).code == 0
    r = ws.cli("backfill-hr", "--source", "strava")
    assert r.code == 0, r.out + r.err
    (act,) = ws.cache().activities
    assert act.hr_splits == per_km_splits(*strava.stream_series(load(STREAMS_2018)))
    assert len(act.hr_splits) == 30 and sum(s.duration_s for s in act.hr_splits) == pytest.approx(3914, abs=2)
    assert act.avg_hr == raw["average_heartrate"] and act.max_hr == raw["max_heartrate"]  # HR only ever added


def test_backfill_hr_on_real_laps_without_distance_finds_no_splits_and_remembers(ws: Workspace) -> None:
    """The 2025 yoga session: no detail samples kept (404), one lap without distance."""
    (raw,) = [a for _, a in garmin_list_activities() if a["activityId"] == load(SPLITS_2025)["activityId"]]
    ws.garmin.add(raw, details=False, laps=False)
    ws.garmin.laps[raw["activityId"]] = load(SPLITS_2025)
    ws.login_garmin()
    assert ws.cli("sync", "--source", "garmin", "--days", "3650").code == 0
    before = ws.cache().activities
    r = ws.cli("backfill-hr", "--source", "garmin", "--json")
    assert r.code == 0, r.out + r.err
    assert json.loads(r.out)["no_hr"] == 1 and ws.cache().activities == before
    assert ws.garmin.paths(f"/activity-service/activity/{raw['activityId']}/splits")
    again = ws.cli("backfill-hr", "--source", "garmin", "--json")
    assert json.loads(again.out)["candidates"] == 0  # remembered: not asked again


# --------------------------------------------------------------------------- Strava account export


def test_every_csv_column_stays_in_raw_even_repeated_and_translated() -> None:
    header = [
        "Activity ID",
        "Activity Date",
        "Activity Name",
        "Activity Type",
        "Activity Description",
        "Elapsed Time",
        "Distance",
        "Relative Effort",
        "Commute",
        "Private Note",
        "Activity Gear",
        "Filename",
        "Elapsed Time",
        "Distance",
        '<span class="translation_missing" title="x">Relative Effort</span>',
    ]
    row = ["42", "Oct 5, 2014, 4:15:21 PM", "Lunch", "Run", "", "1800", "5.01", "31", "false", "knee ok"]
    row += ["Pegasus 40", "activities/42.fit.gz", "1800.0", "5012.3", "31.0"]
    text = io.StringIO()
    csv.writer(text).writerows([header, row])
    (rec,) = read_activities_csv(text.getvalue().encode(), "activities.csv").records
    kept = rec.raw["export_csv"]
    assert kept == {
        "Activity ID": "42",
        "Activity Date": "Oct 5, 2014, 4:15:21 PM",
        "Activity Name": "Lunch",
        "Activity Type": "Run",
        "Elapsed Time": "1800",
        "Distance": "5.01",
        "Relative Effort": "31",
        "Commute": "false",
        "Private Note": "knee ok",
        "Activity Gear": "Pegasus 40",
        "Filename": "activities/42.fit.gz",
        "Elapsed Time (2)": "1800.0",
        "Distance (2)": "5012.3",
        "Relative Effort (2)": "31.0",
    }
    assert rec.distance_m == 5012.3 and rec.duration_s == 1800  # the readings are unchanged


def test_the_corpus_export_keeps_gear_on_every_row_that_has_it() -> None:
    path = CORPUS / "strava_export" / "JoBoSo__Strava-Activity-Map__activities.csv"
    if not path.exists():
        pytest.skip("corpus not present")
    data = path.read_bytes()
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    gear_col = rows[0].index("Activity Gear")
    with_gear = {r[0]: r[gear_col] for r in rows[1:] if len(r) > gear_col and r[gear_col].strip()}
    records = read_activities_csv(data, path.name).records
    assert len(records) == len(rows) - 1
    kept = {r.source_id: r.raw["export_csv"].get("Activity Gear") for r in records}
    assert {k: v for k, v in kept.items() if v} == with_gear and len(with_gear) == 827
