"""Garmin Connect sync with the real garminconnect client against a fake server on 127.0.0.1."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

import pytest

from healthcache.sources import retry, tokens
from tests.fakes import payloads
from tests.fakes.garmin_server import LIST_PATH, TOKEN_PATH

if TYPE_CHECKING:
    from tests.fakes.fixtures import Workspace

pytest_plugins = ["tests.fakes.fixtures"]
NOW = datetime.now(UTC)


def seed(
    ws: Workspace, count: int, *, every: timedelta = timedelta(hours=3), first_id: int = 14_820_000_000
) -> list[dict]:
    return [
        ws.garmin.add(payloads.garmin_activity(first_id + i, start))
        for i, start in enumerate(payloads.spaced_starts(count, NOW, every))
    ]


def garmin_keys(ws: Workspace) -> set[str]:
    return {f"garmin:{a.source_ids['garmin']}" for a in ws.cache().activities if "garmin" in a.source_ids}


def test_sync_pages_to_the_end_and_keeps_payloads_verbatim(ws: Workspace) -> None:
    sent = seed(ws, 45)  # 20 + 20 + 5, then the empty page that ends the listing
    ws.garmin.add(payloads.garmin_activity(1, NOW - timedelta(days=30)))  # outside the window
    ws.login_garmin()
    r = ws.cli("sync", "--source", "garmin", "--days", "7")
    assert r.code == 0, r.err
    lists = [req for req, _ in ws.garmin.server.log if req.path == LIST_PATH]
    assert [req.args["start"] for req in lists] == ["0", "20", "40", "45"]
    first = parse_qs(urlsplit(lists[0].url).query)
    assert first["startDate"] == [(NOW - timedelta(days=8)).date().isoformat()]
    assert first["endDate"] == [(NOW + timedelta(days=1)).date().isoformat()]
    cache = ws.cache()
    assert garmin_keys(ws) == {f"garmin:{a['activityId']}" for a in sent}
    by_id = {a.source_ids["garmin"]: a for a in cache.activities}
    for raw in sent:
        act = by_id[str(raw["activityId"])]
        assert act.raw["garmin"] == raw  # exactly as the server sent it
        assert act.start_time == raw["startTimeGMT"].replace(" ", "T") + "Z"
    assert "seen 45  new 45" in r.out


def test_expired_token_is_renewed_and_the_new_tokens_are_kept(ws: Workspace) -> None:
    seed(ws, 3)
    ws.login_garmin(ttl=-60)
    path = tokens.garmin_tokens_path(ws.paths)
    before = json.loads(path.read_text())
    r = ws.cli("sync", "--source", "garmin")
    assert r.code == 0, r.err
    assert ws.garmin.paths(TOKEN_PATH) == [TOKEN_PATH]
    after = json.loads(path.read_text())
    assert after["di_token"] != before["di_token"]
    assert after["di_refresh_token"] != before["di_refresh_token"]
    assert before["di_refresh_token"] not in ws.garmin.refresh  # the server rotated it: the old one is dead
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(ws.paths.credentials.stat().st_mode) == 0o700
    for secret in (after["di_token"], after["di_refresh_token"], before["di_refresh_token"]):
        assert secret not in r.out + r.err
    # The kept tokens work for the next run (no second renewal needed).
    r2 = ws.cli("sync", "--source", "garmin", "--force")
    assert r2.code == 0, r2.err
    assert ws.garmin.paths(TOKEN_PATH) == [TOKEN_PATH]


def test_rejected_login_asks_for_auth_and_leaves_the_cache_alone(ws: Workspace) -> None:
    seed(ws, 4)
    ws.login_garmin()
    assert ws.cli("sync", "--source", "garmin").code == 0
    before, backups = ws.cache_stat(), ws.backups()
    ws.garmin.access.clear()  # Garmin revoked the session
    ws.garmin.refresh.clear()
    ws.garmin.add(payloads.garmin_activity(99, NOW - timedelta(hours=1)))
    r = ws.cli("sync", "--source", "garmin", "--force")
    assert r.code == 1
    assert "garmin" in r.err and "healthcache auth garmin" in r.err
    assert ws.cache_stat() == before and ws.backups() == backups
    state = ws.state("garmin")
    assert "no longer accepts the saved login" in state["last_error"]
    assert state["last_attempt"] > state["last_success"]


def test_server_errors_are_retried_then_succeed(ws: Workspace) -> None:
    seed(ws, 5)
    ws.login_garmin()
    ws.garmin.fail(LIST_PATH, 503, {"message": "Service Unavailable"}, times=2)
    r = ws.cli("sync", "--source", "garmin")
    assert r.code == 0, r.err
    assert len(ws.garmin.paths(LIST_PATH)) == 2 + 2  # two failures, then a page and the empty page
    assert len(garmin_keys(ws)) == 5


def test_retry_after_sets_the_wait_and_one_rule_retries_garmin_too(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    waits: list[float] = []
    monkeypatch.setattr(retry, "pause", waits.append)
    seed(ws, 5)
    ws.login_garmin()
    ws.garmin.fail(LIST_PATH, 503, {"message": "Service Unavailable"}, headers={"Retry-After": "4"}, times=2)
    r = ws.cli("sync", "--source", "garmin")
    assert r.code == 0, r.err
    assert waits == [4.0, 4.0]
    assert len(ws.garmin.paths(LIST_PATH)) == 2 + 2
    assert len(garmin_keys(ws)) == 5


def test_failure_mid_paging_saves_what_was_fetched(ws: Workspace) -> None:
    sent = seed(ws, 30)
    ws.login_garmin()
    ws.garmin.fail(LIST_PATH, 500, {"message": "Internal Server Error"}, times=3, skip=1)
    r = ws.cli("sync", "--source", "garmin")
    assert r.code == 1
    assert "sync failed for garmin" in r.err and "500" in r.err
    newest_first = sorted(sent, key=lambda a: a["startTimeLocal"], reverse=True)
    assert garmin_keys(ws) == {f"garmin:{a['activityId']}" for a in newest_first[:20]}
    state = ws.state("garmin")
    assert "last_success" not in state and "500" in state["last_error"]
    # Not a success, so the next run is not skipped; it completes the window.
    r2 = ws.cli("sync", "--source", "garmin")
    assert r2.code == 0, r2.err
    assert len(garmin_keys(ws)) == 30


def test_malformed_json_is_reported_and_nothing_is_written(ws: Workspace) -> None:
    seed(ws, 3)
    ws.login_garmin()
    ws.garmin.fail(LIST_PATH, 200, raw=b'[{"activityId": 1, "startTimeGMT": ')
    r = ws.cli("sync", "--source", "garmin")
    assert r.code == 1
    assert "not valid JSON" in r.err
    assert ws.cache_stat() is None and ws.backups() == []


def test_missing_fields_and_wrong_types_skip_only_those_records(ws: Workspace) -> None:
    good = seed(ws, 3)
    no_start = payloads.garmin_activity(501, NOW - timedelta(hours=2))
    del no_start["startTimeGMT"], no_start["beginTimestamp"]
    wrong = payloads.garmin_activity(502, NOW - timedelta(hours=4))
    wrong["distance"] = "12.3 km"
    ws.garmin.add(no_start, details=False, laps=False)
    ws.garmin.add(wrong, details=False, laps=False)
    ws.login_garmin()
    r = ws.cli("sync", "--source", "garmin")
    assert r.code == 1
    assert "garmin:501: unusable payload: startTimeGMT" in r.err
    assert "garmin:502: unusable payload: distance" in r.err
    assert garmin_keys(ws) == {f"garmin:{a['activityId']}" for a in good}
    state = ws.state("garmin")
    assert set(state["seen"]) == {str(a["activityId"]) for a in good}
    assert "last_success" not in state


def test_garmin_429_backs_off_without_further_requests(ws: Workspace) -> None:
    seed(ws, 2)
    ws.login_garmin()
    ws.garmin.fail(LIST_PATH, 429, {"message": "Too Many Requests"})
    r = ws.cli("sync", "--source", "garmin")
    assert r.code == 1
    assert "rate limiting" in r.err
    until = datetime.fromisoformat(ws.state("garmin")["rate_limited_until"].replace("Z", "+00:00"))
    assert timedelta(minutes=25) < until - datetime.now(UTC) <= timedelta(minutes=30)
    logged = len(ws.garmin.server.log)
    r2 = ws.cli("sync", "--source", "garmin", "--force")
    assert r2.code == 0
    assert "rate limited until" in r2.out
    assert len(ws.garmin.server.log) == logged
