"""Notifications (issue 11 point 4): delivered for real to a local SMTP server and a local HTTP webhook."""

from __future__ import annotations

import email
import json
import re
import socket
from collections.abc import Callable, Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import msgspec
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from pytest_httpserver import HTTPServer

from healthcache import history, notify
from healthcache.backup import list_backups
from healthcache.config import Config, Paths, from_document
from healthcache.errors import ConfigError
from healthcache.model.records import Cache
from healthcache.store import Store
from tests import factories
from tests.conftest import Run
from tests.test_history import GPX

PASSWORD = "s3cret-Pw-77"
TOKEN = "tok-9f8e7d6c5b4a"


class Mailbox:
    """A real SMTP server on 127.0.0.1 (aiosmtpd) that keeps every message; AUTH accepted without TLS."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.logins: list[bytes] = []
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.controller = Controller(
            self, hostname="127.0.0.1", port=self.port, authenticator=self._auth, auth_require_tls=False
        )

    def _auth(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        self.logins.append(bytes(getattr(data, "password", b"") or b""))
        return AuthResult(success=True)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"

    def url(self) -> str:
        return (
            f"mailto://healthcache:{PASSWORD}@example.com?smtp=127.0.0.1&port={self.port}"
            "&from=hc@example.com&to=me@example.com&mode=insecure"
        )

    def texts(self) -> list[tuple[str, str]]:
        """(subject, plain-text body) of each message."""
        out = []
        for m in self.messages:
            part = next(p for p in m.walk() if p.get_content_type() == "text/plain")
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            out.append((str(m["Subject"]), payload.decode("utf-8").replace("\r\n", "\n").rstrip("\n")))
        return out


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox()
    box.controller.start()
    try:
        yield box
    finally:
        box.controller.stop()


def hook_url(server: HTTPServer) -> str:
    return f"json://hook:{PASSWORD}@127.0.0.1:{server.port}/hook?token={TOKEN}"


def posted(server: HTTPServer) -> list[dict[str, Any]]:
    return [json.loads(req.get_data()) for req, _ in server.log]


def configure(home: Path, *urls: str, on: list[str] | None = None) -> None:
    lines = ["[notify]", f"urls = {json.dumps(list(urls))}"]
    if on is not None:
        lines.append(f"on = {json.dumps(on)}")
    (home / "healthcache.toml").write_text("\n".join(lines) + "\n")


def no_secret(text: str) -> None:
    assert PASSWORD not in text and TOKEN not in text


@pytest.fixture
def hook(httpserver: HTTPServer) -> HTTPServer:
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    return httpserver


def test_a_failing_step_is_told_with_its_streak_then_its_recovery(
    store: Store, seeded: Callable[[int], Cache], run: Run, home: Path, mailbox: Mailbox, hook: HTTPServer
) -> None:
    seeded(3)
    configure(home, mailbox.url(), hook_url(hook))
    good = store.paths.cache.read_bytes()
    store.paths.cache.write_bytes(good[: len(good) // 2])  # truncated: verify fails (corrupt)
    assert run("verify").exit_code == 4
    assert run("verify").exit_code == 4
    store.paths.cache.write_bytes(good)
    result = run("verify")
    assert result.exit_code == 0 and "warning" not in result.stderr

    mails = mailbox.texts()
    assert [s for s, _ in mails] == [
        "healthcache: verify failed",
        "healthcache: verify failed (2 runs in a row)",
        "healthcache: verify works again",
    ]
    assert "verify failed after 2 consecutive runs." in mails[1][1]
    assert f"verify: [corrupt] {store.paths.cache}" in mails[1][1]
    assert "verify worked again after 2 failed runs." in mails[2][1]
    assert f"workspace: {home}" in mails[2][1]
    hooks = posted(hook)
    assert [h["title"] for h in hooks] == [s for s, _ in mails]
    assert [h["message"] for h in hooks] == [b for _, b in mails]
    for subject, body in mails:
        no_secret(subject + body)
    no_secret(json.dumps(hooks))
    assert mailbox.logins == [PASSWORD.encode()] * 3  # the credential went to the server, never into a body
    # each delivery is recorded in the history, without the credential
    runs = json.loads(run("log", "--json").stdout)["runs"]
    assert [[d["ok"] for d in r["notifications"]] for r in runs] == [[True, True]] * 3
    assert [r["notifications"][0]["events"] for r in runs] == [["recovered"], ["failure"], ["failure"]]
    no_secret(json.dumps(runs))


def test_an_expired_or_missing_login_names_the_auth_command(run: Run, home: Path, hook: HTTPServer) -> None:
    configure(home, hook_url(hook))
    assert run("sync", "--source", "garmin").exit_code == 1
    (h,) = posted(hook)
    assert h["title"] == "healthcache: log in to garmin again"
    assert "Log in again with: healthcache auth garmin" in h["message"]
    assert "nothing new came from garmin" in h["message"]


def test_a_refused_save_is_a_loss_naming_the_ids_and_the_next_step(
    store: Store, seeded: Callable[[int], Cache], run: Run, home: Path, mailbox: Mailbox
) -> None:
    seeded(3)
    with store.transaction() as tx:
        tx.save(msgspec.structs.replace(tx.cache, activities=[*tx.cache.activities, factories.activity(50)]))
    oldest = list_backups(store.paths.backups)[-1].name
    configure(home, mailbox.url(), on=["loss"])
    before = store.paths.cache.read_bytes()
    assert run("restore", oldest).exit_code == 3
    ((subject, body),) = mailbox.texts()
    assert subject == "healthcache restore: data at risk: 1 activity lost or at risk"
    assert "  - garmin:9000000050" in body
    assert "Use --merge to keep both" in body
    assert store.paths.cache.read_bytes() == before


def test_verify_finding_an_outside_loss_is_a_loss(
    store: Store, seeded: Callable[[int], Cache], run: Run, home: Path, hook: HTTPServer
) -> None:
    cache = seeded(4)
    gone = cache.activities[2].id
    kept = msgspec.structs.replace(cache, activities=[a for a in cache.activities if a.id != gone])
    from healthcache import codec

    store.paths.cache.write_bytes(codec.encode(kept))  # an edit outside healthcache
    configure(home, hook_url(hook))
    assert run("verify").exit_code == 3
    (h,) = posted(hook)
    assert h["title"].startswith("healthcache verify: data at risk")
    assert f"  - {gone}" in h["message"]


def test_events_not_chosen_are_not_sent(run: Run, home: Path, hook: HTTPServer) -> None:
    configure(home, hook_url(hook), on=["loss", "recovered"])
    assert run("sync", "--source", "garmin").exit_code == 1
    assert posted(hook) == []


def test_an_undeliverable_notification_is_told_and_recorded_and_changes_nothing(
    run: Run, home: Path, tmp_path: Path
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]  # nothing listens here once the socket is closed
    configure(home, f"json://hook:{PASSWORD}@127.0.0.1:{closed}/hook?token={TOKEN}")
    target = tmp_path / "bad.gpx"
    target.write_text("truncated <gpx")
    result = run("import", str(target))
    assert result.exit_code == 1  # the import's own outcome, not the notification's
    assert f"warning: notification to json://***@127.0.0.1:{closed}/hook (failure) not delivered" in result.stderr
    no_secret(result.stderr)
    (r,) = json.loads(run("log", "--json").stdout)["runs"]
    (d,) = r["notifications"]
    assert d["ok"] is False and d["target"] == f"json://***@127.0.0.1:{closed}/hook" and d["error"]
    # apprise's own words, not its log records ("2026-11-30 11:52:00,952 - WARNING - A Connection error...")
    assert not re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ - (WARNING|ERROR)", d["error"] + result.stderr)
    target.write_text(GPX)
    result = run("import", str(target))
    assert result.exit_code == 0 and "not delivered" in result.stderr  # the recovery could not be told either
    assert len(Store(Paths(home)).read().cache.activities) == 1


def test_notify_test_reports_each_delivery(run: Run, home: Path, mailbox: Mailbox, hook: HTTPServer) -> None:
    configure(home, mailbox.url(), hook_url(hook), "nosuchservice://x/y")
    result = run("notify", "--test", "--json")
    assert result.exit_code == 1
    out = json.loads(result.stdout)
    assert [(d["target"].split("://")[0], d["ok"]) for d in out["deliveries"]] == [
        ("mailto", True),
        ("json", True),
        ("nosuchservice", False),
    ]
    assert out["delivered"] == 2 and out["failed"] == 1
    assert "not a URL apprise understands" in out["deliveries"][2]["error"]
    ((subject, body),) = mailbox.texts()
    assert subject == "healthcache: test notification" and "notify --test" in body
    assert posted(hook)[0]["title"] == "healthcache: test notification"
    no_secret(result.stdout + result.stderr)
    (r,) = json.loads(run("log", "--json").stdout)["runs"]
    assert r["command"] == "notify" and [d["ok"] for d in r["notifications"]] == [True, True, False]


def test_notify_test_without_urls_says_how_to_add_one(run: Run, home: Path) -> None:
    result = run("notify", "--test")
    assert result.exit_code == 1 and "[notify] urls" in result.stderr


def test_no_url_no_apprise_and_no_message(run: Run, home: Path, tmp_path: Path) -> None:
    (tmp_path / "bad.gpx").write_text("x")
    result = run("import", str(tmp_path / "bad.gpx"))
    assert result.exit_code == 1 and "notification" not in result.stderr


def test_bodies_never_carry_credentials_from_a_reason() -> None:
    reason = f"GET https://me:{PASSWORD}@api.example.com/x?access_token={TOKEN}&page=2 failed: Bearer {TOKEN}"
    events: list[notify.Event] = [
        notify.StepFailed(step="sync strava", reason=reason, consecutive=3),
        notify.AuthExpired(source="strava", reason=reason),
        notify.Loss(command="sync", ids=("strava:1",), count=1, what=(reason,), next_steps=(reason,)),
    ]
    for event in events:
        title, body = notify.message(event, "/home/me")
        no_secret(title + body)
        assert "https://***@api.example.com/x?access_token=***&page=2" in body


def test_streaks_and_recovery_from_the_history() -> None:
    def rec(status: str) -> history.Record:
        from tests.test_history import record

        return record(0, steps=[history.Step(name="sync strava", status=status)])

    failing = [rec("failed"), rec("skipped"), rec("failed"), rec("ok")]
    (e,) = notify.events_of(rec("failed"), failing)
    assert e == notify.StepFailed(step="sync strava", reason=None, consecutive=3)
    (e,) = notify.events_of(rec("ok"), failing)
    assert e == notify.Recovered(step="sync strava", after=2)
    assert notify.events_of(rec("ok"), [rec("ok")]) == []
    assert notify.events_of(rec("skipped"), failing) == []


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        (
            {"notify": {"on": ["loss", "failures"]}},
            '[notify] on names an unknown event "failures" (did you mean "failure"?)',
        ),
        ({"notify": {"urls": "mailto://a@b.c"}}, "[notify] urls must be a list of apprise URLs"),
        ({"notify": {"urls": [f"me:{PASSWORD}@example.com"]}}, "[notify] urls[0] must be an apprise URL"),
        ({"notify": {"url": []}}, '[notify] unknown key "url" (did you mean "urls"?)'),
    ],
)
def test_the_notify_section_is_checked(doc: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError) as exc:
        from_document(doc, "healthcache.toml", {})
    assert expected in str(exc.value)
    no_secret(str(exc.value))


def test_the_notify_section_loads() -> None:
    config = from_document({"notify": {"urls": [" ntfy://topic "], "on": ["loss"]}}, "f", {})
    assert config.notify.urls == ("ntfy://topic",) and config.notify.on == ("loss",)
    assert Config().notify.on == ("loss", "failure", "auth", "recovered") and Config().notify.urls == ()
