"""The Strava login (``auth strava``) as steps: app credentials, consent (local callback or a pasted code), tokens.

Strava's consent page redirects to a one-shot server on 127.0.0.1 (random
port, a fresh ``state`` against cross-site answers); where no browser can
reach it, the code (or the whole address the browser landed on) is pasted.
"""

from __future__ import annotations

import html
import os
import secrets
import threading
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from healthcache.config import Config, Paths
from healthcache.errors import SourceError, UsageError
from healthcache.sources import tokens
from healthcache.sources.login import LoginResult, Prompter
from healthcache.sources.strava.client import (
    ENV_CLIENT_ID,
    ENV_CLIENT_SECRET,
    INACTIVE_HINT,
    AppCredentials,
    app_credentials,
    make_client,
    strava_host,
)

SCOPES = ["read", "activity:read_all"]


@dataclass
class Callback:
    code: str | None = None
    scope: str | None = None
    error: str | None = None


class CallbackServer:
    """The redirect target of Strava's consent page: one GET on 127.0.0.1, random port."""

    def __init__(self, state: str) -> None:
        import http.server

        self.state = state
        self.result: Callback | None = None
        done = threading.Event()
        self.done = done
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                query = urllib.parse.parse_qs(url.query)
                if url.path != "/callback":
                    self._reply(404, "Not the healthcache callback.")
                    return
                if query.get("state", [""])[0] != outer.state:
                    self._reply(400, "This answer is not for the login healthcache started (state mismatch).")
                    return
                if "error" in query:
                    outer.result = Callback(error=query["error"][0])
                    self._reply(200, "Strava did not grant access. You can close this tab.")
                else:
                    outer.result = Callback(code=query.get("code", [None])[0], scope=query.get("scope", [None])[0])
                    self._reply(200, "healthcache is now connected to Strava. You can close this tab.")
                done.set()

            def _reply(self, status: int, text: str) -> None:
                body = f"<!doctype html><title>healthcache</title><p>{html.escape(text)}</p>".encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # the query holds the code
                return

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.redirect_uri = f"http://127.0.0.1:{self.port}/callback"
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def wait(self, timeout: float) -> Callback:
        if not self.done.wait(timeout):
            raise SourceError(
                f"no answer from Strava's consent page within {timeout:.0f} s",
                hint="Open the link again, or paste the code: healthcache auth strava --code CODE",
            )
        assert self.result is not None
        return self.result

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def new_state() -> str:
    return secrets.token_urlsafe(16)


def authorization_url(config: Config, app: AppCredentials, redirect_uri: str, state: str) -> str:
    client = make_client(strava_host(config))
    url: str = client.authorization_url(
        client_id=app.client_id, redirect_uri=redirect_uri, approval_prompt="auto", scope=SCOPES, state=state
    )
    return url


def code_from(text: str) -> str:
    """Accept the code itself or the whole redirected URL the browser shows."""
    text = text.strip()
    if "code=" in text:
        query = urllib.parse.urlsplit(text).query or text.split("?", 1)[-1]
        values = urllib.parse.parse_qs(query).get("code")
        if values:
            return values[0]
    if not text:
        raise UsageError("the Strava code is empty")
    return text


def exchange_code(paths: Paths, config: Config, app: AppCredentials, code: str, *, scope: str | None = None) -> None:
    """Trade the consent code for tokens and keep them (0600), with the app credentials."""
    from stravalib import exc as sexc

    client = make_client(strava_host(config))
    try:
        info = client.exchange_code_for_token(client_id=app.client_id, client_secret=app.client_secret, code=code)
    except sexc.Fault as exc:
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if isinstance(exc, sexc.ApplicationInactive):
            raise SourceError(
                "the Strava API application is inactive (HTTP 403)",
                hint=INACTIVE_HINT.format(client_id=app.client_id),
            ) from exc
        raise SourceError(
            f"Strava did not accept the code (HTTP {status})",
            hint="Codes are single-use and expire quickly; run healthcache auth strava again.",
        ) from exc
    except Exception as exc:
        raise SourceError(f"could not reach Strava to finish the login: {type(exc).__name__}") from exc
    saved: dict[str, Any] = {
        "client_id": app.client_id,
        "client_secret": app.client_secret,
        "access_token": info["access_token"],
        "refresh_token": info["refresh_token"],
        "expires_at": int(info["expires_at"]),
    }
    if scope:
        saved["scope"] = scope
    tokens.write_json_secret(paths, tokens.strava_tokens_path(paths), saved)


def missing_scope(scope: str | None) -> bool:
    """True when Strava granted less than activity reading."""
    if scope is None:
        return False
    granted = set(scope.replace(" ", "").split(","))
    return not granted & {"activity:read", "activity:read_all"}


@dataclass(frozen=True)
class StravaLogin:
    """What the command line gave: a client id, and a pasted code (no local callback then)."""

    client_id: str | None = None
    code: str | None = None
    timeout: float = 300.0  # seconds to wait for the consent page's answer


def login(
    paths: Paths, config: Config, request: StravaLogin, prompter: Prompter, environ: Mapping[str, str] | None = None
) -> LoginResult:
    """The whole login: the app's id and secret (asked when unknown), consent, the tokens kept (0600)."""
    env = os.environ if environ is None else environ
    saved = tokens.read_json(tokens.strava_tokens_path(paths)) or {}
    cid = request.client_id or env.get(ENV_CLIENT_ID) or saved.get("client_id") or config.sync.strava_client_id
    if not cid:
        cid = _required(prompter.ask("Strava client id (https://www.strava.com/settings/api)"), "give --client-id")
    secret = env.get(ENV_CLIENT_SECRET) or saved.get("client_secret")
    if not secret:
        secret = _required(prompter.ask("Strava client secret", secret=True), f"set ${ENV_CLIENT_SECRET}")
    app = app_credentials(config, {"client_id": cid, "client_secret": secret}, environ={})
    assert app is not None
    scope = None
    if request.code:
        exchange_code(paths, config, app, code_from(request.code))
    else:
        answer = consent(config, app, prompter, request.timeout)
        scope = answer.scope
        exchange_code(paths, config, app, str(answer.code), scope=scope)
    if missing_scope(scope):
        prompter.warn("warning: Strava granted no activity scope; sync will be refused. Run auth again and allow it.")
    path = tokens.strava_tokens_path(paths)
    return LoginResult("strava", "ok", path, f"Logged in to Strava; tokens kept in {path} (0600).")


def consent(config: Config, app: AppCredentials, prompter: Prompter, timeout: float) -> Callback:
    """Show Strava's consent page and wait for its answer on the local callback."""
    server = CallbackServer(new_state())
    try:
        prompter.show_url(authorization_url(config, app, server.redirect_uri, server.state))
        answer = server.wait(timeout)
    finally:
        server.close()
    if answer.error or not answer.code:
        raise UsageError(f"Strava did not grant access ({answer.error or 'no code'})")
    return answer


def _required(value: str | None, missing: str) -> str:
    if not value:
        raise UsageError(missing)
    return value
