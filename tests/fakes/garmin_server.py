"""A fake Garmin Connect (API, DI token service, mobile SSO) on 127.0.0.1, plain HTTP.

The real ``garminconnect`` client talks to it once its ``_connectapi``,
``_sso`` and ``_di_token_url`` point here.  It checks what the real services
check (bearer tokens and their expiry, refresh tokens, service tickets, the SSO
session cookie on the MFA step) and answers in their shapes; faults (5xx, 429,
401, malformed JSON) can be queued per path.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests.fakes import payloads

CLIENT_ID = "GARMIN_CONNECT_MOBILE_ANDROID_DI_2025Q2"
TOKEN_PATH = "/di-oauth2-service/oauth/token"
LIST_PATH = "/activitylist-service/activities/search/activities"


def jwt(claims: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.{secrets.token_urlsafe(16)}"


@dataclass
class Fault:
    path: str
    status: int
    body: bytes
    headers: dict[str, str]
    times: int
    skip: int = 0  # let this many matching requests through first


@dataclass
class FakeGarmin:
    server: HTTPServer
    email: str = "runner@example.com"
    password: str = "correct horse battery staple"
    mfa_code: str | None = None  # when set, logins need this code
    activities: list[dict[str, Any]] = field(default_factory=list)
    details: dict[int, dict[str, Any]] = field(default_factory=dict)
    laps: dict[int, dict[str, Any]] = field(default_factory=dict)
    access: dict[str, float] = field(default_factory=dict)  # token -> expiry (epoch s)
    refresh: set[str] = field(default_factory=set)
    tickets: set[str] = field(default_factory=set)
    sessions: set[str] = field(default_factory=set)
    faults: list[Fault] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _listing: tuple[Any, list[dict[str, Any]]] = (None, [])

    def __post_init__(self) -> None:
        self.server.expect_request(re.compile(".*")).respond_with_handler(self.handle)

    # -- test helpers

    @property
    def base(self) -> str:
        return self.server.url_for("/").rstrip("/")

    @property
    def token_url(self) -> str:
        return self.base + TOKEN_PATH

    def env(self) -> dict[str, str]:
        return {
            "HEALTHCACHE_GARMIN_API_BASE": self.base,
            "HEALTHCACHE_GARMIN_SSO_URL": self.base,
            "HEALTHCACHE_GARMIN_TOKEN_URL": self.token_url,
        }

    def issue(self, ttl: float = 3600) -> dict[str, str]:
        """A token pair as the DI service issues it (access token is a JWT with exp and client_id)."""
        exp = time.time() + ttl
        access = jwt({"exp": int(exp), "client_id": CLIENT_ID, "scope": ["CONNECT_READ"]})
        refresh = jwt({"exp": int(time.time() + 90 * 86400), "client_id": CLIENT_ID, "type": "refresh"})
        self.access[access] = exp
        self.refresh.add(refresh)
        return {"access_token": access, "refresh_token": refresh}

    def token_file(self, ttl: float = 3600) -> str:
        """The library's token-store JSON for a fresh pair (what ``auth garmin`` leaves behind)."""
        pair = self.issue(ttl)
        return json.dumps(
            {"di_token": pair["access_token"], "di_refresh_token": pair["refresh_token"], "di_client_id": CLIENT_ID}
        )

    def add(self, activity: dict[str, Any], *, details: bool = True, laps: bool = True) -> dict[str, Any]:
        self.activities.append(activity)
        if details:
            self.details[activity["activityId"]] = payloads.garmin_details(activity)
        if laps:
            self.laps[activity["activityId"]] = payloads.garmin_laps(activity)
        return activity

    def fail(
        self,
        path: str,
        status: int,
        body: Any = None,
        *,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
        times: int = 1,
        skip: int = 0,
    ) -> None:
        """Answer the next ``times`` requests whose path starts with ``path`` with this."""
        data = raw if raw is not None else json.dumps(body if body is not None else {"message": "fault"}).encode()
        self.faults.append(Fault(path, status, data, headers or {}, times, skip))

    def paths(self, prefix: str = "") -> list[str]:
        return [req.path for req, _ in self.server.log if req.path.startswith(prefix)]

    # -- dispatch

    def handle(self, request: Request) -> Response:
        with self._lock:
            for fault in self.faults:
                if fault.times > 0 and request.path.startswith(fault.path):
                    if fault.skip > 0:
                        fault.skip -= 1
                        continue
                    fault.times -= 1
                    return Response(
                        fault.body, status=fault.status, headers=fault.headers, content_type="application/json"
                    )
            return self._route(request)

    def _route(self, request: Request) -> Response:
        path = request.path
        if path == "/mobile/sso/en_US/sign-in":
            return self._signin_page()
        if path == "/mobile/api/login" and request.method == "POST":
            return self._login(request)
        if path.endswith("/api/mfa/verifyCode") and request.method == "POST":
            return self._verify_mfa(request)
        if path == TOKEN_PATH and request.method == "POST":
            return self._token(request)
        if not self._authorised(request):
            return _json({"message": "Token is not active", "error": "AuthenticationException"}, 401)
        if path == "/userprofile-service/socialProfile":
            return _json({"id": 81234567, "profileId": 81234567, "displayName": "a1b2c3d4-e5f6", "fullName": "Test"})
        if path == "/userprofile-service/userprofile/user-settings":
            return _json(
                {"id": 81234567, "userData": {"measurementSystem": "metric", "timeFormat": "time_twenty_four_hr"}}
            )
        if path == LIST_PATH:
            return self._list(request)
        match = re.fullmatch(r"/activity-service/activity/(\d+)/(details|splits)", path)
        if match:
            table = self.details if match.group(2) == "details" else self.laps
            found = table.get(int(match.group(1)))
            if found is None:
                return _json({"message": "Activity not found"}, 404)
            return _json(found)
        return _json({"message": f"no such endpoint {path}"}, 404)

    def _authorised(self, request: Request) -> bool:
        header = request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ").strip()
        expiry = self.access.get(token)
        return expiry is not None and expiry > time.time()

    def _signin_page(self) -> Response:
        session = secrets.token_hex(8)
        self.sessions.add(session)
        resp = Response("<html><title>GARMIN Authentication Application</title></html>", content_type="text/html")
        resp.set_cookie("SESSION", session, path="/")
        return resp

    def _login(self, request: Request) -> Response:
        body = request.get_json(silent=True) or {}
        if body.get("username") != self.email or body.get("password") != self.password:
            return _json({"responseStatus": {"type": "INVALID_USERNAME_PASSWORD", "message": ""}})
        if self.mfa_code is not None:
            return _json(
                {
                    "responseStatus": {"type": "MFA_REQUIRED", "message": ""},
                    "customerMfaInfo": {"mfaLastMethodUsed": "email", "email": "r***@example.com"},
                }
            )
        return _json({"responseStatus": {"type": "SUCCESSFUL"}, "serviceTicketId": self._ticket()})

    def _verify_mfa(self, request: Request) -> Response:
        if request.cookies.get("SESSION") not in self.sessions:
            return _json({"error": {"status-code": "401", "message": "no SSO session"}}, 401)
        body = request.get_json(silent=True) or {}
        if body.get("mfaVerificationCode") != self.mfa_code:
            return _json({"responseStatus": {"type": "INVALID_MFA_CODE", "message": ""}})
        return _json({"responseStatus": {"type": "SUCCESSFUL"}, "serviceTicketId": self._ticket()})

    def _ticket(self) -> str:
        ticket = f"ST-{secrets.token_hex(6)}-cas"
        self.tickets.add(ticket)
        return ticket

    def _token(self, request: Request) -> Response:
        form = request.form
        grant = form.get("grant_type", "")
        if grant.endswith("service_ticket"):
            if form.get("service_ticket") not in self.tickets:
                return _json({"error": "invalid_grant"}, 400)
            self.tickets.discard(form["service_ticket"])
        elif grant == "refresh_token":
            if form.get("refresh_token") not in self.refresh:
                return _json({"error": "invalid_grant", "error_description": "refresh token revoked"}, 400)
            self.refresh.discard(form["refresh_token"])  # DI rotates refresh tokens
        else:
            return _json({"error": "unsupported_grant_type"}, 400)
        pair = self.issue()
        return _json({**pair, "token_type": "Bearer", "expires_in": 3600, "scope": "CONNECT_READ"})

    def _list(self, request: Request) -> Response:
        args = request.args
        first = date.fromisoformat(args["startDate"]) if "startDate" in args else date.min
        last = date.fromisoformat(args["endDate"]) if "endDate" in args else date.max
        start, limit = int(args.get("start", 0)), int(args.get("limit", 20))

        memo = (len(self.activities), first, last)
        if self._listing[0] != memo:  # a listing is paged through: sort it once per window

            def in_window(a: dict[str, Any]) -> bool:
                try:
                    day = date.fromisoformat(str(a.get("startTimeLocal"))[:10])
                except ValueError:
                    return True  # a broken record is still listed, as a real server would send it
                return first <= day <= last

            chosen = [a for a in self.activities if in_window(a)]
            chosen.sort(key=lambda a: str(a.get("startTimeLocal")), reverse=True)  # newest first, as Garmin
            self._listing = (memo, chosen)
        chosen = self._listing[1]
        return _json(chosen[start : start + limit])


def _json(value: Any, status: int = 200) -> Response:
    return Response(json.dumps(value), status=status, content_type="application/json;charset=UTF-8")
