"""Strava sync with the real stravalib client against a fake Strava over TLS on 127.0.0.1."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import msgspec
import pytest

from healthcache.sources import retry, tokens
from healthcache.sources.strava.budget import next_quarter_hour, next_utc_midnight
from healthcache.sources.sync_state import load_state, update_states_locked
from healthcache.timeutil import utc_iso
from tests.fakes import payloads
from tests.fakes.strava_server import CLIENT_SECRET

if TYPE_CHECKING:
    from tests.fakes.fixtures import Workspace

pytest_plugins = ["tests.fakes.fixtures"]
NOW = datetime.now(UTC)
LIST = "/api/v3/athlete/activities"


def seed(
    ws: Workspace, count: int, *, every: timedelta = timedelta(minutes=20), first_id: int = 11_700_000_000
) -> list[dict]:
    return [
        ws.strava.add(payloads.strava_activity(first_id + i, start))
        for i, start in enumerate(payloads.spaced_starts(count, NOW, every))
    ]


def strava_ids(ws: Workspace) -> set[str]:
    return {a.source_ids["strava"] for a in ws.cache().activities if "strava" in a.source_ids}


def test_sync_pages_to_the_end_and_keeps_payloads_verbatim(ws: Workspace) -> None:
    sent = seed(ws, 450)  # 200 + 200 + 50: the short page ends the listing
    ws.strava.add(payloads.strava_activity(1, NOW - timedelta(days=40)))  # before the window
    ws.login_strava()
    r = ws.cli("sync", "--source", "strava", "--days", "7")
    assert r.code == 0, r.err
    lists = [req for req, _ in ws.strava.server.log if req.path == LIST]
    assert [(req.args["page"], req.args["per_page"]) for req in lists] == [("1", "200"), ("2", "200"), ("3", "200")]
    (after,) = {int(req.args["after"]) for req in lists}
    assert abs(after - (datetime.now(UTC) - timedelta(days=7)).timestamp()) < 60
    assert strava_ids(ws) == {str(a["id"]) for a in sent}
    by_id = {a.source_ids["strava"]: a for a in ws.cache().activities}
    for raw in sent[:5]:
        assert by_id[str(raw["id"])].raw["strava"] == raw
    assert "3 requests" in r.out


def test_expired_token_is_refreshed_and_the_rotated_tokens_are_kept(ws: Workspace) -> None:
    seed(ws, 3)
    ws.login_strava(ttl=-60)
    path = tokens.strava_tokens_path(ws.paths)
    before = json.loads(path.read_text())
    r = ws.cli("sync", "--source", "strava")
    assert r.code == 0, r.err
    assert ws.strava.paths() == ["/oauth/token", LIST]
    after = json.loads(path.read_text())
    assert after["refresh_token"] != before["refresh_token"]
    assert after["expires_at"] > NOW.timestamp() + 3600
    assert before["refresh_token"] not in ws.strava.refresh  # used up: only the saved one works now
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert after["client_secret"] == CLIENT_SECRET
    for secret in (CLIENT_SECRET, after["access_token"], after["refresh_token"]):
        assert secret not in r.out + r.err
    r2 = ws.cli("sync", "--source", "strava", "--force")
    assert r2.code == 0, r2.err
    assert ws.strava.paths("/oauth") == ["/oauth/token"]


def test_revoked_refresh_token_asks_for_auth(ws: Workspace) -> None:
    seed(ws, 2)
    ws.login_strava(ttl=-60)
    ws.strava.refresh.clear()
    r = ws.cli("sync", "--source", "strava")
    assert r.code == 1
    assert "did not renew the saved login" in r.err and "healthcache auth strava" in r.err
    assert ws.cache_stat() is None


def test_401_asks_for_auth_and_leaves_the_cache_alone(ws: Workspace) -> None:
    seed(ws, 3)
    ws.login_strava()
    assert ws.cli("sync", "--source", "strava").code == 0
    before, backups = ws.cache_stat(), ws.backups()
    ws.strava.access.clear()  # the athlete revoked access
    r = ws.cli("sync", "--source", "strava", "--force")
    assert r.code == 1
    assert "HTTP 401" in r.err and "healthcache auth strava" in r.err
    assert ws.cache_stat() == before and ws.backups() == backups


def test_inactive_application_is_explained(ws: Workspace) -> None:
    seed(ws, 1)
    ws.login_strava()
    ws.strava.inactive = True
    r = ws.cli("sync", "--source", "strava")
    assert r.code == 1
    assert "application is inactive" in r.err
    assert "subscription" in r.err and "settings/api" in r.err
    assert CLIENT_SECRET not in r.out + r.err
    assert ws.cache_stat() is None


def test_429_mid_paging_keeps_the_fetched_page_and_skips_until_the_reset(ws: Workspace) -> None:
    sent = seed(ws, 450)
    ws.login_strava()
    ws.strava.fail(
        LIST,
        429,
        {
            "message": "Rate Limit Exceeded",
            "errors": [{"resource": "Application", "field": "rate limit", "code": "exceeded"}],
        },
        headers={"X-RateLimit-Limit": "200,2000", "X-RateLimit-Usage": "201,250"},
        skip=1,
    )
    r = ws.cli("sync", "--source", "strava")
    assert r.code == 1
    assert "15-minute request budget is spent (HTTP 429)" in r.err
    oldest_first = sorted(sent, key=lambda a: a["start_date"])
    assert strava_ids(ws) == {str(a["id"]) for a in oldest_first[:200]}  # page 1 was saved
    state = ws.state("strava")
    until = datetime.fromisoformat(state["rate_limited_until"].replace("Z", "+00:00"))
    assert until in (next_quarter_hour(NOW), next_quarter_hour(datetime.now(UTC)))
    assert "last_success" not in state

    logged = len(ws.strava.server.log)
    r2 = ws.cli("sync", "--source", "strava")
    assert r2.code == 0, r2.err
    assert "rate limited until" in r2.out and "no request sent" in r2.out
    r3 = ws.cli("sync", "--source", "strava", "--force")
    assert r3.code == 0 and "rate limited until" in r3.out
    assert len(ws.strava.server.log) == logged  # not a single request while the limit holds

    # Once the reset time has passed, the next run fetches the whole window again.
    def past(cur):  # type: ignore[no-untyped-def]
        return msgspec.structs.replace(cur, rate_limited_until=utc_iso(datetime.now(UTC) - timedelta(seconds=1)))

    update_states_locked(ws.paths, {"strava": past})
    r4 = ws.cli("sync", "--source", "strava")
    assert r4.code == 0, r4.err
    assert strava_ids(ws) == {str(a["id"]) for a in sent}
    assert load_state(ws.paths, "strava").rate_limited_until is None


def test_spent_budget_in_headers_stops_before_the_next_request(ws: Workspace) -> None:
    seed(ws, 250)
    ws.login_strava()
    ws.strava.usage_15 = ws.strava.limit_15 - 1  # the first page spends the last request
    r = ws.cli("sync", "--source", "strava")
    assert r.code == 1
    assert ws.strava.paths(LIST) == [LIST]  # no request that would have been refused
    assert "15-minute request budget is spent (used 200/200" in r.err
    assert len(strava_ids(ws)) == 200
    assert ws.state("strava")["rate_limited_until"] == utc_iso(next_quarter_hour(datetime.now(UTC)))


def test_spent_daily_budget_waits_for_midnight_utc(ws: Workspace) -> None:
    seed(ws, 250)
    ws.login_strava()
    ws.strava.usage_day = ws.strava.limit_day - 1
    r = ws.cli("sync", "--source", "strava")
    assert r.code == 1 and "daily request budget" in r.err
    assert ws.state("strava")["rate_limited_until"] == utc_iso(next_utc_midnight(datetime.now(UTC)))


def test_server_errors_are_retried(ws: Workspace) -> None:
    seed(ws, 4)
    ws.login_strava()
    ws.strava.fail(LIST, 502, {"message": "Bad Gateway"}, times=2)
    r = ws.cli("sync", "--source", "strava")
    assert r.code == 0, r.err
    assert ws.strava.paths(LIST) == [LIST] * 3
    assert len(strava_ids(ws)) == 4


def test_persistent_server_errors_fail_after_a_few_attempts(ws: Workspace) -> None:
    seed(ws, 4)
    ws.login_strava()
    ws.strava.fail(LIST, 503, {"message": "Service Unavailable"}, times=99)
    r = ws.cli("sync", "--source", "strava")
    assert r.code == 1
    assert "HTTP 503 (after 3 attempts)" in r.err
    assert ws.strava.paths(LIST) == [LIST] * 3
    assert ws.cache_stat() is None


def test_retry_after_sets_the_wait_of_a_retried_server_error(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []
    monkeypatch.setattr(retry, "pause", waits.append)
    seed(ws, 4)
    ws.login_strava()
    ws.strava.fail(LIST, 503, {"message": "Service Unavailable"}, headers={"Retry-After": "7"}, times=1)
    r = ws.cli("sync", "--source", "strava")
    assert r.code == 0, r.err
    assert waits == [7.0]  # the server's word, not the doubling wait (0 s in tests)
    assert ws.strava.paths(LIST) == [LIST] * 2
    assert len(strava_ids(ws)) == 4


def test_a_retry_after_longer_than_a_run_waits_is_not_waited_for(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    waits: list[float] = []
    monkeypatch.setattr(retry, "pause", waits.append)
    seed(ws, 4)
    ws.login_strava()
    ws.strava.fail(LIST, 503, {"message": "Service Unavailable"}, headers={"Retry-After": "3600"}, times=99)
    r = ws.cli("sync", "--source", "strava")
    assert r.code == 1
    assert "HTTP 503 (after 1 attempt; it asked to wait 3600 s)" in r.err
    assert waits == [] and ws.strava.paths(LIST) == [LIST]
    assert ws.cache_stat() is None


def test_malformed_json_is_reported(ws: Workspace) -> None:
    seed(ws, 2)
    ws.login_strava()
    ws.strava.fail(LIST, 200, raw=b"<html><body>Strava is down for maintenance</body></html>")
    r = ws.cli("sync", "--source", "strava")
    assert r.code == 1
    assert "not valid JSON" in r.err
    assert ws.cache_stat() is None


def test_wrong_types_skip_only_those_records(ws: Workspace) -> None:
    good = seed(ws, 3)
    bad = payloads.strava_activity(777, NOW - timedelta(hours=3))
    bad["elapsed_time"] = "50:12"
    ws.strava.add(bad, streams=False)
    ws.login_strava()
    r = ws.cli("sync", "--source", "strava")
    assert r.code == 1
    assert "strava:777: unusable payload: elapsed_time" in r.err
    assert strava_ids(ws) == {str(a["id"]) for a in good}
