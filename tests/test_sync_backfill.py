"""``backfill-hr``: per-km HR splits from Garmin details/laps and Strava streams, resumable and rate-limit aware."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from healthcache.sources.backfill import BackfillOptions, backfill_hr
from healthcache.splits import per_km_splits
from tests.fakes import payloads
from tests.test_progress import Recorder

if TYPE_CHECKING:
    from tests.fakes.fixtures import Workspace

pytest_plugins = ["tests.fakes.fixtures"]
NOW = datetime.now(UTC)
STREAMS = "/api/v3/activities/"


def details_path(activity_id: int) -> str:
    return f"/activity-service/activity/{activity_id}/details"


def by_source(ws: Workspace, source: str) -> dict[str, object]:
    return {a.source_ids[source]: a for a in ws.cache().activities if source in a.source_ids}


def expected_from_details(details: dict) -> list:
    """The splits the details payload implies, read with an independent index mapping."""
    index = {d["key"]: d["metricsIndex"] for d in details["metricDescriptors"]}
    rows = [m["metrics"] for m in details["activityDetailMetrics"]]
    return per_km_splits(
        [r[index["sumElapsedDuration"]] for r in rows],
        [r[index["sumDistance"]] for r in rows],
        [r[index["directHeartRate"]] for r in rows],
    )


def test_garmin_details_become_per_km_splits(ws: Workspace) -> None:
    acts = [
        ws.garmin.add(payloads.garmin_activity(600 + i, s, duration=1500 + 300 * i))
        for i, s in enumerate(payloads.spaced_starts(3, NOW, timedelta(hours=8)))
    ]
    ws.login_garmin()
    assert ws.cli("sync", "--source", "garmin").code == 0
    before = {k: (a.avg_hr, a.max_hr, a.name) for k, a in by_source(ws, "garmin").items()}
    r = ws.cli("backfill-hr")
    assert r.code == 0, r.err
    assert "3 filled" in r.out and "backfilling" not in r.err.lower()  # no terminal: no progress bar
    cache = by_source(ws, "garmin")
    for raw in acts:
        act = cache[str(raw["activityId"])]
        splits = act.hr_splits
        assert splits == expected_from_details(ws.garmin.details[raw["activityId"]])
        assert len(splits) == round(raw["distance"] / 1000 + 0.49)
        assert (
            sum(s.duration_s for s in splits) == round(raw["duration"], 0)
            or abs(sum(s.duration_s for s in splits) - raw["duration"]) < 10
        )
        assert (act.avg_hr, act.max_hr, act.name) == before[str(raw["activityId"])]  # only HR splits added
    # Nothing is left to do: the next run asks nothing.
    logged = len(ws.garmin.server.log)
    again = ws.cli("backfill-hr")
    assert again.code == 0 and "0 without splits" in again.out
    assert len(ws.garmin.server.log) == logged


def test_garmin_falls_back_to_kilometre_laps(ws: Workspace) -> None:
    raw = ws.garmin.add(payloads.garmin_activity(700, NOW - timedelta(hours=5), duration=1250), details=False)
    ws.login_garmin()
    assert ws.cli("sync", "--source", "garmin").code == 0
    r = ws.cli("backfill-hr", "--source", "garmin")
    assert r.code == 0, r.err
    laps = ws.garmin.laps[700]["lapDTOs"]
    splits = by_source(ws, "garmin")["700"].hr_splits
    assert [s.avg_hr for s in splits] == [lap["averageHR"] for lap in laps]
    assert [s.duration_s for s in splits] == [lap["duration"] for lap in laps]
    assert ws.garmin.paths("/activity-service/activity/700/") == [
        details_path(700),
        "/activity-service/activity/700/splits",
    ]
    del raw


def test_strava_streams_and_activities_without_hr_are_remembered(ws: Workspace) -> None:
    with_hr = [
        ws.strava.add(payloads.strava_activity(9100 + i, s, elapsed=1800))
        for i, s in enumerate(payloads.spaced_starts(2, NOW, timedelta(hours=6)))
    ]
    # Says it has HR, but its streams carry none (a strap that dropped out at the start).
    odd = payloads.strava_activity(9200, NOW - timedelta(hours=20))
    ws.strava.add(odd)
    del ws.strava.streams[9200]["heartrate"]
    # No HR at all: not even asked.
    ws.strava.add(payloads.strava_activity(9300, NOW - timedelta(hours=30), avg_hr=None))
    ws.login_strava()
    assert ws.cli("sync", "--source", "strava").code == 0
    r = ws.cli("backfill-hr", "--source", "strava", "--json")
    assert r.code == 0, r.err
    report = json.loads(r.out)
    assert (report["candidates"], report["filled"], report["no_hr"]) == (3, 2, 1)
    acts = by_source(ws, "strava")
    for raw in with_hr:
        streams = ws.strava.streams[raw["id"]]
        assert acts[str(raw["id"])].hr_splits == per_km_splits(
            streams["time"]["data"], streams["distance"]["data"], streams["heartrate"]["data"]
        )
    assert acts["9200"].hr_splits is None and acts["9300"].hr_splits is None
    assert "strava:9200" in json.loads(ws.paths.state_file("backfill-hr").read_text())["no_hr"]
    asked = ws.strava.paths(STREAMS)
    assert sorted(asked) == sorted(f"/api/v3/activities/{i}/streams" for i in (9100, 9101, 9200))
    again = ws.cli("backfill-hr", "--source", "strava", "--json")
    assert json.loads(again.out)["candidates"] == 0
    assert ws.strava.paths(STREAMS) == asked


def test_limit_makes_it_resumable(ws: Workspace) -> None:
    for i, s in enumerate(payloads.spaced_starts(5, NOW, timedelta(hours=4))):
        ws.garmin.add(payloads.garmin_activity(800 + i, s, duration=700))
    ws.login_garmin()
    assert ws.cli("sync", "--source", "garmin").code == 0
    first = ws.cli("backfill-hr", "--limit", "2", "--json")
    assert json.loads(first.out)["filled"] == 2
    filled = {k for k, a in by_source(ws, "garmin").items() if a.hr_splits}
    assert filled == {"800", "801"}  # newest first
    second = ws.cli("backfill-hr", "--json")
    assert json.loads(second.out)["filled"] == 3
    assert all(a.hr_splits for a in by_source(ws, "garmin").values())
    asked = [p for p in ws.garmin.paths("/activity-service/") if p.endswith("/details")]
    assert len(asked) == len(set(asked)) == 5  # nothing fetched twice


def test_rate_limit_stops_strava_keeps_garmin_and_sync_waits(ws: Workspace) -> None:
    for i, s in enumerate(payloads.spaced_starts(3, NOW, timedelta(hours=5))):
        ws.garmin.add(payloads.garmin_activity(900 + i, s, duration=900))
        ws.strava.add(payloads.strava_activity(9900 + i, s + timedelta(hours=2), elapsed=900))
    ws.login_garmin()
    ws.login_strava()
    assert ws.cli("sync").code == 0
    ws.strava.fail(
        STREAMS,
        429,
        {"message": "Rate Limit Exceeded", "errors": []},
        headers={"X-RateLimit-Limit": "200,2000", "X-RateLimit-Usage": "50,2001"},
        skip=1,
    )
    r = ws.cli("backfill-hr", "--json")
    assert r.code == 1
    report = json.loads(r.out)
    assert report["filled"] == 4 and report["not_reached"] == 2
    assert "daily request budget is spent" in report["stopped"]["strava"]
    assert len(ws.strava.paths(STREAMS)) == 2  # stopped at the 429, did not keep asking
    assert all(a.hr_splits for a in by_source(ws, "garmin").values())
    assert ws.state("strava")["rate_limited_until"].endswith("T00:00:00Z")
    logged = len(ws.strava.server.log)
    s = ws.cli("sync", "--force")
    assert "rate limited until" in s.out and len(ws.strava.server.log) == logged


def test_library_progress_callback_and_activities_with_splits_untouched(ws: Workspace) -> None:
    for i, s in enumerate(payloads.spaced_starts(3, NOW, timedelta(hours=3))):
        ws.garmin.add(payloads.garmin_activity(1000 + i, s, duration=600))
    ws.login_garmin()
    assert ws.cli("sync", "--source", "garmin").code == 0
    assert ws.cli("backfill-hr", "--limit", "1").code == 0
    done = by_source(ws, "garmin")["1000"].hr_splits
    rec = Recorder()
    report = backfill_hr(ws.store(), BackfillOptions(), tracker=rec)
    assert report.filled == 2
    assert rec.events == [
        ("start", 2, "backfilling HR splits"),
        ("advance", 1, "garmin:1001"),
        ("advance", 1, "garmin:1002"),
        ("done",),
    ]
    assert by_source(ws, "garmin")["1000"].hr_splits == done
