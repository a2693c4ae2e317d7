"""``auth garmin`` (login, MFA by prompt or in two steps) and ``auth strava`` (OAuth) with the real clients."""

from __future__ import annotations

import json
import stat
import threading
import urllib.parse
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
import requests

from healthcache.sources import tokens
from tests.fakes import payloads
from tests.fakes.strava_server import CLIENT_ID, CLIENT_SECRET

if TYPE_CHECKING:
    from tests.fakes.fixtures import Workspace

pytest_plugins = ["tests.fakes.fixtures"]
NOW = datetime.now(UTC)


def mode(path) -> int:  # type: ignore[no-untyped-def]
    return stat.S_IMODE(path.stat().st_mode)


def assert_private(ws: Workspace, path) -> None:  # type: ignore[no-untyped-def]
    assert mode(path) == 0o600
    folder = path.parent
    while True:
        assert mode(folder) == 0o700, folder
        if folder == ws.paths.credentials:
            break
        folder = folder.parent
    assert ws.paths.tracking not in path.parents and ws.paths.backups not in path.parents


@pytest.fixture
def garmin_password(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("HEALTHCACHE_GARMIN_PASSWORD", ws.garmin.password)
    return ws.garmin.password


# --------------------------------------------------------------------------- Garmin


def test_garmin_login_keeps_private_tokens_that_sync_then_uses(ws: Workspace, garmin_password: str) -> None:
    r = ws.cli("auth", "garmin", "--email", ws.garmin.email)
    assert r.code == 0, r.err
    path = tokens.garmin_tokens_path(ws.paths)
    assert_private(ws, path)
    saved = json.loads(path.read_text())
    assert saved["di_token"] in ws.garmin.access and saved["di_refresh_token"] in ws.garmin.refresh
    assert garmin_password not in r.out + r.err and saved["di_token"] not in r.out + r.err
    # the SSO sign-in page, the credentials, the ticket exchange, and the token check against the API
    assert ws.garmin.paths() == [
        "/mobile/sso/en_US/sign-in",
        "/mobile/api/login",
        "/di-oauth2-service/oauth/token",
        "/userprofile-service/socialProfile",
    ]
    ws.garmin.add(payloads.garmin_activity(31, NOW - timedelta(hours=2)))
    synced = ws.cli("sync", "--source", "garmin")
    assert synced.code == 0, synced.err
    assert [a.source_ids["garmin"] for a in ws.cache().activities] == ["31"]


def test_garmin_mfa_code_from_the_prompt(ws: Workspace, garmin_password: str) -> None:
    ws.garmin.mfa_code = "428913"
    r = ws.cli("auth", "garmin", "--email", ws.garmin.email, input="428913\n")
    assert r.code == 0, r.err
    assert "verification code" in r.err
    assert "/mobile/api/mfa/verifyCode" in ws.garmin.paths()
    assert tokens.garmin_tokens_path(ws.paths).exists()


def test_garmin_password_and_code_on_stdin_for_scripts(ws: Workspace) -> None:
    ws.garmin.mfa_code = "000111"
    r = ws.cli(
        "auth",
        "garmin",
        "--email",
        ws.garmin.email,
        "--password-stdin",
        "--mfa-code",
        "-",
        "--no-prompt",
        input=f"{ws.garmin.password}\n000111\n",
    )
    assert r.code == 0, r.err
    assert ws.garmin.password not in r.out + r.err
    assert tokens.garmin_tokens_path(ws.paths).exists()


def test_garmin_mfa_in_two_runs_resumes_the_pending_login(ws: Workspace, garmin_password: str) -> None:
    ws.garmin.mfa_code = "554433"
    first = ws.cli("auth", "garmin", "--email", ws.garmin.email, "--no-prompt", "--json")
    assert first.code == 0, first.err
    assert json.loads(first.out) == {"source": "garmin", "status": "needs_mfa"}
    pending = tokens.garmin_mfa_path(ws.paths)
    assert_private(ws, pending)
    assert garmin_password not in pending.read_text()
    assert not tokens.garmin_tokens_path(ws.paths).exists()

    # A later run (a new client instance, as in another process) finishes it with the code.
    second = ws.cli("auth", "garmin", "--mfa-code", "554433")
    assert second.code == 0, second.err
    assert tokens.garmin_tokens_path(ws.paths).exists() and not pending.exists()
    assert ws.garmin.paths().count("/mobile/api/mfa/verifyCode") == 1


def test_garmin_wrong_mfa_code_is_refused(ws: Workspace, garmin_password: str) -> None:
    ws.garmin.mfa_code = "554433"
    r = ws.cli("auth", "garmin", "--email", ws.garmin.email, "--mfa-code", "111111")
    assert r.code == 1
    assert "did not accept the MFA code" in r.err
    assert not tokens.garmin_tokens_path(ws.paths).exists()


def test_garmin_wrong_password_is_refused(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEALTHCACHE_GARMIN_PASSWORD", "hunter2")
    r = ws.cli("auth", "garmin", "--email", ws.garmin.email)
    assert r.code == 1
    assert "did not accept the email and password" in r.err and "hunter2" not in r.err
    assert not tokens.garmin_tokens_path(ws.paths).exists()


def test_garmin_no_prompt_without_a_password_is_a_usage_error(ws: Workspace) -> None:
    r = ws.cli("auth", "garmin", "--email", ws.garmin.email, "--no-prompt")
    assert r.code == 2 and "--password-stdin" in r.err
    assert ws.garmin.paths() == []


def test_mfa_code_without_a_pending_login_says_so(ws: Workspace) -> None:
    r = ws.cli("auth", "garmin", "--mfa-code", "123456", "--no-prompt")
    assert r.code == 2 and "--email" in r.err


# --------------------------------------------------------------------------- Strava


@pytest.fixture
def strava_app(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEALTHCACHE_STRAVA_CLIENT_ID", str(CLIENT_ID))
    monkeypatch.setenv("HEALTHCACHE_STRAVA_CLIENT_SECRET", CLIENT_SECRET)


def test_strava_oauth_through_the_local_callback(
    ws: Workspace, strava_app: None, monkeypatch: pytest.MonkeyPatch, ca_bundle
) -> None:
    opened: list[str] = []

    def browser(url: str) -> bool:
        """The person's browser: open the consent page, which redirects to our callback."""
        opened.append(url)
        threading.Thread(target=lambda: requests.get(url, verify=str(ca_bundle), timeout=10), daemon=True).start()
        return True

    monkeypatch.setattr("webbrowser.open", browser)
    r = ws.cli("auth", "strava", "--timeout", "20")
    assert r.code == 0, r.err
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(opened[0]).query)
    assert opened[0].startswith(f"https://{ws.strava.host}/oauth/authorize")
    assert query["client_id"] == [str(CLIENT_ID)]
    assert query["redirect_uri"][0].startswith("http://127.0.0.1:")
    assert query["scope"] == ["read,activity:read_all"] and query["state"][0]
    path = tokens.strava_tokens_path(ws.paths)
    assert_private(ws, path)
    saved = json.loads(path.read_text())
    assert saved["access_token"] in ws.strava.access and saved["scope"] == "read,activity:read_all"
    for secret in (CLIENT_SECRET, saved["access_token"], saved["refresh_token"]):
        assert secret not in r.out + r.err
    ws.strava.add(payloads.strava_activity(9001, NOW - timedelta(hours=3)))
    monkeypatch.delenv("HEALTHCACHE_STRAVA_CLIENT_SECRET")  # sync finds what auth kept
    synced = ws.cli("sync", "--source", "strava")
    assert synced.code == 0, synced.err
    assert [a.source_ids["strava"] for a in ws.cache().activities] == ["9001"]


def test_strava_pasted_redirect_address(ws: Workspace, strava_app: None, ca_bundle) -> None:
    consent = requests.get(
        f"https://{ws.strava.host}/oauth/authorize",
        params={"client_id": CLIENT_ID, "redirect_uri": "http://127.0.0.1:9/callback", "state": "x"},
        verify=str(ca_bundle),
        allow_redirects=False,
        timeout=10,
    )
    landed = consent.headers["Location"]  # what the address bar shows when 127.0.0.1 is another machine
    r = ws.cli("auth", "strava", "--code", landed)
    assert r.code == 0, r.err
    assert tokens.strava_tokens_path(ws.paths).exists()


def test_strava_bad_code_is_refused(ws: Workspace, strava_app: None) -> None:
    r = ws.cli("auth", "strava", "--code", "not-a-real-code")
    assert r.code == 1
    assert "did not accept the code" in r.err and CLIENT_SECRET not in r.err
    assert not tokens.strava_tokens_path(ws.paths).exists()


def test_strava_inactive_application_at_login(ws: Workspace, strava_app: None) -> None:
    ws.strava.inactive = True
    r = ws.cli("auth", "strava", "--code", "whatever")
    assert r.code == 1
    assert "application is inactive" in r.err and "subscription" in r.err


def test_strava_no_answer_in_time_points_to_the_paste_fallback(ws: Workspace, strava_app: None) -> None:
    r = ws.cli("auth", "strava", "--no-browser", "--timeout", "1")
    assert r.code == 1
    assert "https://" in r.err and "/oauth/authorize" in r.err  # the address to open was shown
    assert "--code" in r.err


def test_options_of_the_other_service_are_refused(ws: Workspace) -> None:
    r = ws.cli("auth", "strava", "--mfa-code", "123456")
    assert r.code == 2 and "--mfa-code does not apply to auth strava" in r.err
    r = ws.cli("auth", "garmin", "--code", "abc", "--no-prompt")
    assert r.code == 2 and "--code does not apply to auth garmin" in r.err
    assert ws.requests() == 0
