"""The smart skip (issue 11 point 5): when a source is synced again, decided from its state alone."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import msgspec
import pytest

from healthcache import codec
from healthcache.config import from_document
from healthcache.errors import ConfigError
from healthcache.notify import AuthExpired
from healthcache.sources import registry
from healthcache.sources.sync_state import Seen, SkipRule, SourceState, decide_sync, update_states_locked
from healthcache.timeutil import utc_iso
from tests.fakes import payloads

if TYPE_CHECKING:
    from tests.fakes.fixtures import Workspace

pytest_plugins = ["tests.fakes.fixtures"]

NOW = datetime(2024, 5, 20, 12, 0, tzinfo=UTC)


def state(synced_ago: timedelta | None, newest_activity_ago: timedelta | None, **extra: str) -> SourceState:
    seen = {} if newest_activity_ago is None else {"1": Seen("d" * 24, utc_iso(NOW - newest_activity_ago))}
    last = None if synced_ago is None else utc_iso(NOW - synced_ago, micro=True)
    return SourceState(last_success=last, seen=seen, **extra)


H, D = timedelta(hours=1), timedelta(days=1)


@pytest.mark.parametrize(
    ("synced_ago", "activity_ago", "force", "sync", "reason", "next_in"),
    [
        # a source never synced is always synced
        (None, None, False, True, "never synced", None),
        (None, 1 * D, False, True, "never synced", None),
        # never again within the hour, active or not
        (30 * timedelta(minutes=1), 1 * D, False, False, "synced 30 min ago (every 2 h: an activity", 1.5 * H),
        (59 * timedelta(minutes=1), 30 * D, False, False, "(every 4 h: no activity in the last 7 days)", 181 / 60 * H),
        # between 1 and 6 hours: 2 h when there was an activity in the last 7 days ...
        (1.5 * H, 2 * D, False, False, "synced 1 h 30 min ago (every 2 h: an activity in the last 7 days)", 0.5 * H),
        (2 * H, 2 * D, False, True, "synced 2 h ago (every 2 h: an activity in the last 7 days)", 0 * H),
        (3 * H, 6.9 * D, False, True, "every 2 h", -1 * H),
        # ... 4 h when not (an activity 8 days ago, or none remembered)
        (3 * H, 8 * D, False, False, "synced 3 h ago (every 4 h: no activity in the last 7 days); next after", 1 * H),
        (3 * H, None, False, False, "no activity in the last 7 days", 1 * H),
        (4 * H, 8 * D, False, True, "synced 4 h ago (every 4 h: no activity", 0 * H),
        (5.5 * H, None, False, True, "every 4 h", -1.5 * H),
        # always after 6 hours
        (6 * H, None, False, True, "synced 6 h ago", -2 * H),
        (30 * H, 8 * D, False, True, "synced 30 h ago", -26 * H),
        # --force overrides the interval
        (10 * timedelta(minutes=1), 1 * D, True, True, "forced (--force)", None),
        # a last sync in the future (the clock went back) does not block syncing
        (-2 * H, 1 * D, False, True, "is in the future", None),
    ],
)
def test_the_rule(
    synced_ago: timedelta | None,
    activity_ago: timedelta | None,
    force: bool,
    sync: bool,
    reason: str,
    next_in: timedelta | None,
) -> None:
    decision = decide_sync(state(synced_ago, activity_ago), NOW, SkipRule(), force=force)
    assert decision.sync is sync
    assert reason in decision.reason
    if next_in is None:
        assert decision.next_at is None
    else:
        assert decision.next_at is not None
        assert abs(decision.next_at - (NOW + next_in)) < timedelta(seconds=1)
    if not sync:
        assert "no request sent; --force to sync now" in decision.reason


def test_a_rate_limit_holds_even_under_force() -> None:
    limited = state(3 * H, 1 * D, rate_limited_until="2024-05-20T12:10:00Z", rate_limit_reason="daily budget spent")
    for force in (False, True):
        decision = decide_sync(limited, NOW, SkipRule(), force=force)
        assert not decision.sync
        assert decision.reason.startswith("rate limited until 2024-05-20T12:10:00Z (daily budget spent)")
        assert decision.next_at == datetime(2024, 5, 20, 12, 10, tzinfo=UTC)
    assert decide_sync(limited, NOW + timedelta(minutes=11), SkipRule()).sync


def test_every_threshold_is_configurable() -> None:
    rule = SkipRule(min_minutes=10, active_minutes=30, quiet_minutes=90, max_minutes=120, active_days=2)
    assert decide_sync(state(31 * timedelta(minutes=1), 1 * D), NOW, rule).sync
    assert not decide_sync(state(31 * timedelta(minutes=1), 3 * D), NOW, rule).sync  # 3 days: quiet with 2
    assert decide_sync(state(91 * timedelta(minutes=1), 3 * D), NOW, rule).sync
    assert not decide_sync(state(5 * timedelta(minutes=1), 1 * D), NOW, rule).sync
    config = from_document(
        {
            "sync": {
                "min_interval_minutes": 10,
                "active_interval_minutes": 30,
                "quiet_interval_minutes": 90,
                "max_interval_minutes": 120,
                "active_days": 2,
            }
        },
        "healthcache.toml",
        {},
    )
    assert SkipRule.of(config.sync) == rule


@pytest.mark.parametrize(
    ("sync", "message"),
    [
        (
            {"active_interval_minutes": 30},
            "[sync] active_interval_minutes must lie between min_interval_minutes (60) and "
            "max_interval_minutes (360), got 30",
        ),
        ({"quiet_interval_minutes": 400}, "[sync] quiet_interval_minutes must lie between"),
        ({"min_interval_minutes": 600}, "[sync] min_interval_minutes (600) is above max_interval_minutes (360)"),
        ({"active_days": -1}, "[sync] active_days must be a number of at least 0"),
    ],
)
def test_thresholds_out_of_order_are_refused_by_name(sync: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        from_document({"sync": sync}, "healthcache.toml", {})
    assert message in str(exc.value)


def test_auth_command_of_any_registered_source(monkeypatch: pytest.MonkeyPatch) -> None:
    """The notification names `healthcache auth <source>` for every source of the registry, not a fixed pair."""
    monkeypatch.setitem(registry.SOURCES, "toy", "tests.test_source_registry:TOY")
    assert AuthExpired(source="toy", reason=None).command == "healthcache auth toy"
    assert AuthExpired(source="strava", reason=None).command == "healthcache auth strava"
    assert AuthExpired(source="nope", reason=None).command == "healthcache auth garmin|strava|toy"


# --------------------------------------------------------------------------- end to end, real clients


def age(ws: Workspace, hours: float) -> None:
    stamp = utc_iso(datetime.now(UTC) - timedelta(hours=hours), micro=True)
    update = {s: (lambda cur: msgspec.structs.replace(cur, last_success=stamp)) for s in ("garmin", "strava")}
    update_states_locked(ws.paths, update)


def test_an_active_source_is_synced_after_2_hours_a_quiet_one_waits_for_4(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = datetime.now(UTC)
    ws.garmin.add(payloads.garmin_activity(14_900_000_001, now - timedelta(days=1)))  # trained yesterday
    ws.strava.add(payloads.strava_activity(11_800_000_001, now - timedelta(days=12)))  # nothing for 12 days
    ws.login_garmin()
    ws.login_strava()
    assert ws.cli("sync", "--days", "30").code == 0

    age(ws, 2.5)
    garmin_before, strava_before = len(ws.garmin.server.log), len(ws.strava.server.log)
    cache = ws.cache_stat()

    def no_parse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the skip decision parsed the cache")

    monkeypatch.setattr(codec, "decode", no_parse)
    r = ws.cli("sync", "--days", "30")
    assert r.code == 0, r.err
    assert len(ws.garmin.server.log) > garmin_before  # active: due after 2 h
    assert len(ws.strava.server.log) == strava_before  # quiet: not before 4 h
    assert "synced 2 h 30 min ago (every 4 h: no activity in the last 7 days); next after" in r.out
    assert ws.cache_stat() == cache

    status = json.loads(ws.cli("status", "--json").out)["next_sync"]
    assert (
        status["garmin"]["due"] is False and "every 2 h: an activity in the last 7 days" in status["garmin"]["reason"]
    )
    assert status["strava"]["due"] is False and status["strava"]["at"] is not None
    due = datetime.fromisoformat(status["strava"]["at"].replace("Z", "+00:00"))
    assert timedelta(hours=1, minutes=25) < due - datetime.now(UTC) < timedelta(hours=1, minutes=35)
    text = ws.cli("status").out
    assert "next sync strava: after " in text and "(synced 2 h 30 min ago (every 4 h" in text

    age(ws, 4.2)
    r = ws.cli("sync", "--days", "30", "--source", "strava")
    assert r.code == 0, r.err
    assert len(ws.strava.server.log) > strava_before


def test_status_says_a_source_without_login_is_not_set_up(ws: Workspace) -> None:
    ws.login_garmin()
    status = json.loads(ws.cli("status", "--json").out)["next_sync"]
    assert status["garmin"] == {"due": True, "at": None, "reason": "never synced"}
    assert status["strava"]["due"] is False and "healthcache auth strava" in status["strava"]["reason"]
