"""Pure parts of the API sources: normalisers, per-km splits, rate-limit and skip rules."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from healthcache.errors import HealthcacheError
from healthcache.model.records import HRSplit, SourceRecord
from healthcache.normalise import from_raw
from healthcache.sources import retry
from healthcache.sources.garmin import client as garmin_client
from healthcache.sources.garmin import payloads as garmin
from healthcache.sources.strava import budget as strava_budget
from healthcache.sources.strava import client as strava_client
from healthcache.sources.strava import payloads as strava
from healthcache.sources.strava.budget import next_quarter_hour, next_utc_midnight
from healthcache.sources.sync_state import SkipRule, SourceState, decide_sync, payload_digest
from healthcache.splits import km_laps_to_splits, per_km_splits
from tests.fakes import payloads

START = datetime(2024, 5, 1, 6, 30, 12, tzinfo=UTC)


# --------------------------------------------------------------------------- Garmin normaliser


def test_garmin_activity_normalises_to_utc_with_raw_kept_verbatim() -> None:
    raw = payloads.garmin_activity(14820153642, START, type_key="trail_running", tz_hours=2)
    before = json.dumps(raw)
    rec = garmin.normalise_activity(raw)
    assert rec.source == "garmin"
    assert rec.source_id == "14820153642"
    assert rec.start_time == "2024-05-01T06:30:12Z"
    assert rec.start_time_local == "2024-05-01T08:30:12"
    assert rec.sport == "trail_running" and rec.sport_raw == "trail_running"
    assert rec.distance_m == raw["distance"] and rec.duration_s == raw["elapsedDuration"]  # elapsed, not timer time
    assert rec.moving_time_s == raw["movingDuration"]
    assert (rec.avg_hr, rec.max_hr) == (148.0, 171.0)
    assert rec.avg_cadence == 168.4
    assert rec.raw is raw and json.dumps(raw) == before  # untouched, same object


def test_garmin_cycling_takes_bike_cadence_and_power() -> None:
    rec = garmin.normalise_activity(payloads.garmin_activity(1, START, type_key="cycling"))
    assert (rec.sport, rec.avg_cadence, rec.avg_power) == ("cycling", 86.0, 201.0)


def test_garmin_start_falls_back_to_begin_timestamp() -> None:
    raw = payloads.garmin_activity(7, START)
    del raw["startTimeGMT"]
    assert garmin.normalise_activity(raw).start_time == "2024-05-01T06:30:12Z"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r.pop("activityId"), "activityId"),
        (lambda r: (r.pop("startTimeGMT"), r.pop("beginTimestamp")), "startTimeGMT"),
        (lambda r: r.update(distance="ten km"), "distance"),
        (lambda r: r.update(averageHR=[148]), "averageHR"),
        (lambda r: r.update(activityType="running"), "activityType"),
        (lambda r: r.update(startTimeGMT="yesterday"), "startTimeGMT"),
        (lambda r: r.update(maxHR=512.0), "max_hr"),
        (lambda r: r.update(calories=-5.0), "calories"),
        (lambda r: r.update(activityId=True), "activityId"),
    ],
)
def test_garmin_unusable_payload_names_the_field(change, message: str) -> None:
    raw = payloads.garmin_activity(9, START)
    change(raw)
    with pytest.raises((ValueError, TypeError)) as info:
        garmin.normalise_activity(raw)
    assert message in str(info.value)


def test_garmin_missing_optional_fields_are_none() -> None:
    raw = {"activityId": 5, "startTimeGMT": "2024-05-01 06:30:12", "activityType": {"typeKey": "yoga"}}
    rec = garmin.normalise_activity(raw)
    assert (rec.sport, rec.distance_m, rec.avg_hr, rec.name) == ("yoga", None, None, None)


# --------------------------------------------------------------------------- Strava normaliser


def test_strava_activity_normalises_with_external_id_and_timezone() -> None:
    raw = payloads.strava_activity(
        11734562, START, sport_type="TrailRun", external_id="garmin_ping_14820153642", offset_s=7200
    )
    rec = strava.normalise_activity(raw)
    assert rec.key == "strava:11734562"
    assert rec.start_time == "2024-05-01T06:30:12Z"
    assert rec.start_time_local == "2024-05-01T08:30:12"
    assert rec.timezone == "Europe/Paris"
    assert rec.sport == "trail_running" and rec.sport_raw == "TrailRun"
    assert rec.external_id == "garmin_ping_14820153642"
    assert rec.duration_s == 3012 and rec.moving_time_s == 2987
    assert rec.avg_cadence == pytest.approx(168.4)  # 84.2 strides/min is 168.4 steps/min
    assert rec.device == "Garmin Forerunner 965"
    assert rec.raw is raw


def test_strava_ride_cadence_and_power_are_kept_as_sent() -> None:
    rec = strava.normalise_activity(payloads.strava_activity(3, START, sport_type="Ride"))
    assert (rec.sport, rec.avg_cadence, rec.avg_power) == ("cycling", 86.0, 175.3)


def test_strava_swagger_example_normalises() -> None:
    """The SummaryActivity example of Strava's own API description."""
    raw = {
        "resource_state": 2,
        "athlete": {"id": 134815, "resource_state": 1},
        "name": "Happy Friday",
        "distance": 24931.4,
        "moving_time": 4500,
        "elapsed_time": 4500,
        "total_elevation_gain": 0,
        "type": "Ride",
        "sport_type": "MountainBikeRide",
        "workout_type": None,
        "id": 154504250376823,
        "external_id": "garmin_push_12345678987654321",
        "upload_id": 987654321234567891234,
        "start_date": "2018-05-02T12:15:09Z",
        "start_date_local": "2018-05-02T05:15:09Z",
        "timezone": "(GMT-08:00) America/Los_Angeles",
        "utc_offset": -25200,
        "start_latlng": None,
        "map": {"id": "a12345678987654321", "summary_polyline": None, "resource_state": 2},
        "device_name": "Garmin Edge 1030",
        "average_cadence": 67.1,
        "average_watts": 175.3,
        "has_heartrate": True,
        "average_heartrate": 140.3,
        "max_heartrate": 178,
    }
    rec = strava.normalise_activity(raw)
    assert rec.start_time == "2018-05-02T12:15:09Z"
    assert rec.sport == "mountain_biking"
    assert rec.timezone == "America/Los_Angeles"
    assert rec.external_id == "garmin_push_12345678987654321"
    assert rec.avg_cadence == 67.1 and rec.max_hr == 178


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r.pop("id"), "id"),
        (lambda r: r.pop("start_date"), "start_date"),
        (lambda r: r.update(start_date="2024-13-45T99:00:00Z"), "start_date"),
        (lambda r: r.update(distance="5k"), "distance"),
        (lambda r: r.update(elapsed_time=None, moving_time={"s": 1}), "moving_time"),
        (lambda r: r.update(average_heartrate=float("nan")), "average_heartrate"),
        (lambda r: r.update(name=12), "name"),
    ],
)
def test_strava_unusable_payload_names_the_field(change, message: str) -> None:
    raw = payloads.strava_activity(9, START)
    change(raw)
    with pytest.raises((ValueError, TypeError)) as info:
        strava.normalise_activity(raw)
    assert message in str(info.value)


def test_registry_rederives_both_sources_from_stored_raw() -> None:
    g = payloads.garmin_activity(77, START)
    s = payloads.strava_activity(88, START)
    assert from_raw("garmin", copy.deepcopy(g)) == garmin.normalise_activity(g)
    assert from_raw("strava", copy.deepcopy(s)) == strava.normalise_activity(s)
    broken = dict(g, startTimeGMT=None, beginTimestamp=None)
    with pytest.raises(HealthcacheError, match="garmin"):
        from_raw("garmin", broken)


def test_normalised_records_validate_against_the_schema() -> None:
    for rec in (
        garmin.normalise_activity(payloads.garmin_activity(1, START)),
        strava.normalise_activity(payloads.strava_activity(2, START, avg_hr=None)),
    ):
        assert msgspec.convert(msgspec.to_builtins(rec), SourceRecord) == rec


# --------------------------------------------------------------------------- per-km splits


def test_constant_pace_gives_equal_splits_and_a_partial_last() -> None:
    # 3.2 m/s for 1000 s = 3200 m: three full kilometres and 200 m.
    t = [float(i) for i in range(0, 1001)]
    d = [i * 3.2 for i in range(0, 1001)]
    h = [150.0] * 1001
    splits = per_km_splits(t, d, h)
    assert [s.km for s in splits] == [1, 2, 3, 4]
    assert [s.duration_s for s in splits] == [312.5, 312.5, 312.5, 62.5]
    assert all(s.avg_hr == 150.0 and s.max_hr == 150.0 for s in splits)


def test_split_average_is_time_weighted_across_irregular_samples() -> None:
    # 0-500 m in 100 s at 120 bpm, then 500-1000 m in 300 s at 180 bpm (sparse samples).
    splits = per_km_splits([0, 100, 400], [0, 500, 1000], [120, 120, 180])
    assert len(splits) == 1
    first = splits[0]
    assert first.duration_s == 400.0
    # each reading describes the interval it ends: 120 over 100 s, 180 over 300 s -> 165
    assert first.avg_hr == 165.0
    assert first.max_hr == 180.0


def test_interval_crossing_several_kilometres_is_divided_by_distance() -> None:
    splits = per_km_splits([0, 1000], [0, 2500], [140, 160])
    assert [(s.km, s.duration_s) for s in splits] == [(1, 400.0), (2, 400.0), (3, 200.0)]
    assert all(s.avg_hr == 160.0 for s in splits)  # the reading that ends the interval


def test_dropouts_glitches_and_gps_backsteps_are_ignored() -> None:
    t = [0, 10, 20, 30, 40, None, 60]
    d = [0, 300, 280, 600, 900, 950, 1200]  # a GPS correction steps back
    h = [0, 140, 400, 150, None, 155, 152]  # 0 = dropout, 400 = glitch
    splits = per_km_splits(t, d, h)
    assert [s.km for s in splits] == [1, 2]
    assert all(s.max_hr is None or s.max_hr <= 155 for s in splits)
    assert splits[0].avg_hr is not None and 139 < splits[0].avg_hr < 156


def test_no_heart_rate_or_no_distance_gives_nothing() -> None:
    assert per_km_splits([0, 10, 20], [0, 50, 100], [None, None, None]) == []
    assert per_km_splits([0, 10, 20], [0, 0, 0], [120, 130, 140]) == []
    assert per_km_splits([], [], []) == []


def test_a_few_metres_after_the_last_kilometre_are_not_a_split() -> None:
    splits = per_km_splits([0, 300, 302], [0, 1000, 1004], [150, 150, 150])
    assert [s.km for s in splits] == [1]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(0.1, 30), st.floats(0, 15), st.one_of(st.none(), st.floats(40, 220))),
        min_size=2,
        max_size=200,
    )
)
@example([(1.5, 5e-324, None), (1.0, 10.0, None)])  # a subnormal step: 1.5 * 5e-324 rounds up to 1e-323
def test_split_durations_add_up_to_the_elapsed_time(steps: list[tuple[float, float, float | None]]) -> None:
    t, d, h = [0.0], [0.0], [150.0]
    for dt, dd, hr in steps:
        t.append(t[-1] + dt)
        d.append(d[-1] + dd)
        h.append(hr)
    splits = per_km_splits(t, d, h)
    if not splits:
        return
    assert [s.km for s in splits] == list(range(1, len(splits) + 1))
    assert all(s.avg_hr is None or 40 <= s.avg_hr <= 220 for s in splits)
    total = sum(s.duration_s for s in splits)
    # The dropped tail (< 10 m) is the only time not accounted for.
    assert total <= t[-1] + 0.05 * len(splits)


def test_kilometre_laps_become_splits_other_laps_do_not() -> None:
    activity = payloads.garmin_activity(1, START, duration=1000)
    laps = payloads.garmin_laps(activity)["lapDTOs"]
    splits = km_laps_to_splits(laps)
    assert len(splits) == len(laps) and splits[0] == HRSplit(
        km=1, duration_s=laps[0]["duration"], avg_hr=laps[0]["averageHR"], max_hr=laps[0]["maxHR"]
    )
    miles = payloads.garmin_laps(activity, lap_m=1609.3)["lapDTOs"]
    assert km_laps_to_splits(miles) == []
    assert km_laps_to_splits([{"distance": "1000", "duration": 300}]) == []


# --------------------------------------------------------------------------- rate limits, skip, retry


def test_strava_budgets_from_both_header_families() -> None:
    headers = {
        "X-RateLimit-Limit": "200,2000",
        "X-RateLimit-Usage": "12,300",
        "X-ReadRateLimit-Limit": "100,1000",
        "X-ReadRateLimit-Usage": "100,301",
    }
    budgets = strava_budget.budgets_from_headers(headers)
    assert len(budgets) == 2
    assert strava_budget.spent(budgets) == "15-minute"
    assert (
        strava_budget.spent(
            strava_budget.budgets_from_headers({"x-ratelimit-limit": "200,2000", "x-ratelimit-usage": "5,2000"})
        )
        == "daily"
    )
    assert (
        strava_budget.spent(
            strava_budget.budgets_from_headers({"X-RateLimit-Limit": "200,2000", "X-RateLimit-Usage": "199,1999"})
        )
        is None
    )
    assert strava_budget.budgets_from_headers({"X-RateLimit-Usage": "junk"}) == []


def test_reset_times_follow_stravas_windows() -> None:
    now = datetime(2024, 5, 1, 10, 7, 31, tzinfo=UTC)
    assert next_quarter_hour(now) == datetime(2024, 5, 1, 10, 15, tzinfo=UTC)
    assert next_quarter_hour(datetime(2024, 5, 1, 23, 50, tzinfo=UTC)) == datetime(2024, 5, 2, 0, 0, tzinfo=UTC)
    assert next_utc_midnight(now) == datetime(2024, 5, 2, tzinfo=UTC)
    assert strava_budget.reset_time(now, "daily") == datetime(2024, 5, 2, tzinfo=UTC)
    assert strava_budget.reset_time(now, None) == datetime(2024, 5, 1, 10, 15, tzinfo=UTC)


def test_skip_reason_rules() -> None:
    """The smart skip's basics (the full table: tests/test_smart_skip.py)."""
    now = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    rule = SkipRule()
    recent = SourceState(last_success="2024-05-01T11:40:00.000000Z")
    assert "synced 20 min ago" in decide_sync(recent, now, rule).reason
    assert not decide_sync(recent, now, rule).sync
    assert decide_sync(recent, now, rule, force=True).sync
    assert decide_sync(recent, now, SkipRule(min_minutes=15, active_minutes=15, quiet_minutes=15)).sync
    limited = SourceState(rate_limited_until="2024-05-01T12:15:00Z", rate_limit_reason="429")
    assert "rate limited until 2024-05-01T12:15:00Z" in decide_sync(limited, now, rule, force=True).reason
    assert decide_sync(limited, now + timedelta(minutes=16), rule).sync
    assert decide_sync(SourceState(), now, rule).sync


def test_retry_call_retries_only_what_it_is_told_to() -> None:
    calls: list[int] = []
    waits: list[float] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("boom")
        return "ok"

    assert (
        retry.call(flaky, lambda e: isinstance(e, ConnectionError), retries=2, base_seconds=0.5, sleep=waits.append)
        == "ok"
    )
    assert waits == [0.5, 1.0]
    calls.clear()
    with pytest.raises(ConnectionError):
        retry.call(flaky, lambda e: False, retries=5, base_seconds=0, sleep=waits.append)
    assert len(calls) == 1


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        (" 0 ", 0.0),
        ("Wed, 01 May 2024 12:00:30 GMT", 30.0),  # an HTTP date: the time left until then
        ("Wed, 01 May 2024 11:00:00 GMT", 0.0),  # already past: no wait
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_reads_seconds_and_http_dates(value: str | None, seconds: float | None) -> None:
    assert retry.parse_retry_after(value, datetime(2024, 5, 1, 12, 0, tzinfo=UTC)) == seconds


def test_retry_waits_the_servers_retry_after_else_doubles() -> None:
    class Busy(Exception):
        def __init__(self, after: str | None) -> None:
            self.response = type("R", (), {"headers": {"Retry-After": after} if after else {}})()

    answers: list[Exception | str] = [Busy("3"), Busy(None), "ok"]
    waits: list[float] = []

    def call() -> str:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert retry.call(call, lambda e: isinstance(e, Busy), retries=2, base_seconds=0.5, sleep=waits.append) == "ok"
    assert waits == [3.0, 1.0]  # the server's 3 s, then the doubling rule's second wait
    answers[:] = [Busy("600"), "ok"]
    with pytest.raises(Busy):  # longer than a run waits: reported now, the next run tries again
        retry.call(call, lambda e: isinstance(e, Busy), retries=2, base_seconds=0.5, sleep=waits.append)
    assert waits == [3.0, 1.0]


def test_payload_digest_sees_any_change() -> None:
    raw = payloads.garmin_activity(1, START)
    same = json.loads(json.dumps(raw))
    assert payload_digest(raw) == payload_digest(same)
    same["activityName"] = "Renamed"
    assert payload_digest(raw) != payload_digest(same)


# --------------------------------------------------------------------------- endpoints


def test_endpoints_come_from_config_and_environment(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from healthcache.config import Config, Paths

    paths = Paths(tmp_path)
    paths.config_file.write_text(
        '[sync]\ngarmin_api_base = "https://proxy.example/garmin/"\nstrava_api_host = "https://strava.proxy.example/"\n'
    )
    config = Config.load(paths, environ={})
    ends = garmin_client.Endpoints.resolve(config, environ={"HEALTHCACHE_GARMIN_SSO_URL": "https://sso.proxy.example/"})
    assert ends == garmin_client.Endpoints(
        api_base="https://proxy.example/garmin", sso="https://sso.proxy.example", token_url=None
    )
    assert strava_client.strava_host(config) == "strava.proxy.example"
    assert strava_client.strava_host(Config()) == "www.strava.com"


def test_configure_endpoints_sets_the_client_hosts_and_keeps_the_rest() -> None:
    from garminconnect.client import Client

    client = Client()
    garmin_client.configure_endpoints(
        client, garmin_client.Endpoints(api_base="http://127.0.0.1:9", token_url="http://127.0.0.1:9/t")
    )
    assert (client._connectapi, client._di_token_url) == ("http://127.0.0.1:9", "http://127.0.0.1:9/t")
    assert client._sso == "https://sso.garmin.com"  # not configured: the library's own
    assert client._resolve_url("/activitylist-service/x") == "http://127.0.0.1:9/activitylist-service/x"
