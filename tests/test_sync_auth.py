"""``auth garmin`` (login, MFA by prompt or in two steps) and ``auth strava`` (OAuth) with the real clients."""

from __future__ import annotations

import json
import stat
import threading
import urllib.parse
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
import requests

from healthcache.sources import tokens
from healthcache.sources.garmin import login as garmin_login
from healthcache.sources.strava import oauth as strava_oauth
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


# --------------------------------------------------------------------------- the login steps, without a terminal


@dataclass
class Person:
    """A ``Prompter`` that answers from a table (None: may not be asked) and records what it was asked."""

    answers: dict[str, str | None]
    asked: list[str] = field(default_factory=list)
    told: list[str] = field(default_factory=list)

    def ask(self, label: str, *, secret: bool = False) -> str | None:
        self.asked.append(f"{label} (hidden)" if secret else label)
        return self.answers.get(label)

    def say(self, text: str) -> None:
        self.told.append(text)

    def show_url(self, url: str) -> None:
        self.told.append(url)

    def warn(self, text: str) -> None:
        self.told.append(text)


@pytest.mark.parametrize(
    ("email", "code_offered", "pending", "start"),
    [
        (None, True, True, "finish_pending"),
        ("a@b.c", True, True, "sign_in"),  # an email starts afresh, the code answers this login's MFA
        (None, True, False, "sign_in"),  # nothing waits: sign in (and ask for the email)
        (None, False, True, "sign_in"),
    ],
)
def test_garmin_first_step(email: str | None, code_offered: bool, pending: bool, start: str) -> None:
    looked: list[bool] = []

    def waiting() -> bool:
        looked.append(True)
        return pending

    chosen, why = garmin_login.first_step(email, code_offered, waiting)
    assert chosen == start and why
    assert looked == ([True] if code_offered and not email else [])  # the pending file is read only when it matters


def test_garmin_login_steps_ask_through_the_prompter(ws: Workspace) -> None:
    """The state machine the CLI used to hold: email, password, MFA, each asked only when needed."""
    ws.garmin.mfa_code = "246810"
    config = ws.store().config
    person = Person({"Garmin email": ws.garmin.email, "Garmin password": ws.garmin.password})
    waiting = garmin_login.login(ws.paths, config, garmin_login.GarminLogin(), person, environ={})
    assert waiting.status == "needs_mfa" and waiting.as_dict() == {"source": "garmin", "status": "needs_mfa"}
    assert person.asked == ["Garmin email", "Garmin password (hidden)", "Garmin sent a verification code; enter it"]
    assert "--mfa-code" in waiting.reason and tokens.garmin_mfa_path(ws.paths).exists()
    assert not tokens.garmin_tokens_path(ws.paths).exists()

    later = Person({})
    request = garmin_login.GarminLogin(code=lambda: "246810", code_offered=True)
    done = garmin_login.login(ws.paths, config, request, later, environ={})
    assert done.status == "ok" and done.tokens == tokens.garmin_tokens_path(ws.paths) and done.tokens.exists()
    assert later.asked == [] and not tokens.garmin_mfa_path(ws.paths).exists()
    assert ws.garmin.password not in json.dumps(done.as_dict()) + done.reason


def test_garmin_login_steps_never_ask_what_was_given(ws: Workspace) -> None:
    ws.garmin.mfa_code = "135790"
    read: list[str] = []
    request = garmin_login.GarminLogin(
        email=ws.garmin.email,
        password=lambda: read.append("password") or ws.garmin.password,
        code=lambda: read.append("code") or "135790",
    )
    person = Person({})
    result = garmin_login.login(ws.paths, ws.store().config, request, person, environ={})
    assert result.status == "ok" and person.asked == []
    assert read == ["password", "code"]  # standard input order: the password, then the code Garmin asked for
    assert person.told == ["Logging in to Garmin Connect (this takes a few seconds) ..."]


def test_strava_login_steps_ask_for_unknown_app_credentials(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch, ca_bundle
) -> None:
    consent = requests.get(
        f"https://{ws.strava.host}/oauth/authorize",
        params={"client_id": CLIENT_ID, "redirect_uri": "http://127.0.0.1:9/callback", "state": "x"},
        verify=str(ca_bundle),
        allow_redirects=False,
        timeout=10,
    )
    person = Person(
        {
            "Strava client id (https://www.strava.com/settings/api)": str(CLIENT_ID),
            "Strava client secret": CLIENT_SECRET,
        }
    )
    request = strava_oauth.StravaLogin(code=consent.headers["Location"])
    result = strava_oauth.login(ws.paths, ws.store().config, request, person, environ={})
    assert result.status == "ok" and result.tokens.exists()
    assert person.asked == [
        "Strava client id (https://www.strava.com/settings/api)",
        "Strava client secret (hidden)",
    ]
    assert json.loads(result.tokens.read_text())["client_id"] == CLIENT_ID


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
