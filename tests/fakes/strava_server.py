"""A fake Strava API v3 and OAuth service on 127.0.0.1 over TLS (trustme certificates).

stravalib builds ``https://{server}/api/v3/...``, so the server speaks HTTPS
with a certificate for 127.0.0.1 signed by a test CA that the client trusts
through ``REQUESTS_CA_BUNDLE``.  It keeps Strava's rules: bearer tokens that
expire, refresh tokens rotated on use, single-use authorisation codes, the
15-minute and daily request budgets reported in X-RateLimit headers with a 429
once spent, and the 403 "Application Inactive" answer.
"""

from __future__ import annotations

import calendar
import json
import re
import secrets
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests.fakes import payloads

CLIENT_ID = 4242
CLIENT_SECRET = "s3cr3t-client-secret-do-not-print"
INACTIVE = {
    "message": "Forbidden",
    "errors": [{"resource": "Application", "field": "Status", "code": "Inactive"}],
}


@dataclass
class Fault:
    path: str
    status: int
    body: bytes
    headers: dict[str, str]
    times: int
    skip: int = 0  # let this many matching requests through first


@dataclass
class FakeStrava:
    server: HTTPServer
    activities: list[dict[str, Any]] = field(default_factory=list)
    streams: dict[int, dict[str, Any]] = field(default_factory=dict)
    access: dict[str, float] = field(default_factory=dict)
    refresh: set[str] = field(default_factory=set)
    codes: set[str] = field(default_factory=set)
    limit_15: int = 200
    limit_day: int = 2000
    usage_15: int = 0
    usage_day: int = 0
    inactive: bool = False
    faults: list[Fault] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _listing: tuple[Any, list[dict[str, Any]]] = (None, [])

    def __post_init__(self) -> None:
        self.server.expect_request(re.compile(".*")).respond_with_handler(self.handle)

    # -- test helpers

    @property
    def host(self) -> str:
        return f"{self.server.host}:{self.server.port}"

    def env(self) -> dict[str, str]:
        return {"HEALTHCACHE_STRAVA_API_HOST": self.host}

    def issue(self, ttl: float = 6 * 3600) -> dict[str, Any]:
        access, refresh = secrets.token_hex(20), secrets.token_hex(20)
        expires = int(time.time() + ttl)
        self.access[access] = expires
        self.refresh.add(refresh)
        return {"access_token": access, "refresh_token": refresh, "expires_at": expires, "expires_in": int(ttl)}

    def token_file(self, ttl: float = 6 * 3600) -> dict[str, Any]:
        """What ``auth strava`` leaves behind for these app credentials and a fresh grant."""
        pair = self.issue(ttl)
        return {
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "access_token": pair["access_token"],
            "refresh_token": pair["refresh_token"],
            "expires_at": pair["expires_at"],
            "scope": "read,activity:read_all",
        }

    def add(self, activity: dict[str, Any], *, streams: bool = True) -> dict[str, Any]:
        self.activities.append(activity)
        if streams:
            self.streams[activity["id"]] = payloads.strava_streams(activity)
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
        data = raw if raw is not None else json.dumps(body if body is not None else {"message": "fault"}).encode()
        self.faults.append(Fault(path, status, data, headers or {}, times, skip))

    def paths(self, prefix: str = "") -> list[str]:
        return [req.path for req, _ in self.server.log if req.path.startswith(prefix)]

    # -- dispatch

    def _rate_headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": f"{self.limit_15},{self.limit_day}",
            "X-RateLimit-Usage": f"{self.usage_15},{self.usage_day}",
        }

    def handle(self, request: Request) -> Response:
        with self._lock:
            api = request.path.startswith("/api/v3/")
            if api:
                self.usage_15 += 1
                self.usage_day += 1
            for fault in self.faults:
                if fault.times > 0 and request.path.startswith(fault.path):
                    if fault.skip > 0:
                        fault.skip -= 1
                        continue
                    fault.times -= 1
                    headers = {**(self._rate_headers() if api else {}), **fault.headers}
                    return Response(fault.body, status=fault.status, headers=headers, content_type="application/json")
            resp = self._route(request)
            if api:
                resp.headers.update(self._rate_headers())
            return resp

    def _route(self, request: Request) -> Response:
        path = request.path
        if path == "/oauth/authorize":
            return self._authorize(request)
        if path == "/oauth/token" and request.method == "POST":
            return self._token(request)
        if self.inactive:
            return _json(INACTIVE, 403)
        if self.usage_15 > self.limit_15 or self.usage_day > self.limit_day:
            return _json(
                {
                    "message": "Rate Limit Exceeded",
                    "errors": [{"resource": "Application", "field": "rate limit", "code": "exceeded"}],
                },
                429,
            )
        token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        expiry = self.access.get(token)
        if expiry is None or expiry <= time.time():
            return _json(
                {
                    "message": "Authorization Error",
                    "errors": [{"resource": "Athlete", "field": "access_token", "code": "invalid"}],
                },
                401,
            )
        if path == "/api/v3/athlete/activities":
            return self._list(request)
        match = re.fullmatch(r"/api/v3/activities/(\d+)/streams", path)
        if match:
            found = self.streams.get(int(match.group(1)))
            if found is None:
                return _json(
                    {"message": "Resource Not Found", "errors": [{"resource": "Activity", "code": "not found"}]}, 404
                )
            keys = request.args.get("keys", "").split(",")
            return _json({k: v for k, v in found.items() if k in keys})
        return _json({"message": "Record Not Found", "errors": []}, 404)

    def _authorize(self, request: Request) -> Response:
        args = request.args
        if args.get("client_id") != str(CLIENT_ID):
            return _json({"message": "Bad Request", "errors": [{"field": "client_id", "code": "invalid"}]}, 400)
        code = secrets.token_hex(10)
        self.codes.add(code)
        query = urllib.parse.urlencode({"state": args.get("state", ""), "code": code, "scope": args.get("scope", "")})
        return Response(status=302, headers={"Location": f"{args['redirect_uri']}?{query}"})

    def _token(self, request: Request) -> Response:
        form = request.form
        if form.get("client_id") != str(CLIENT_ID) or form.get("client_secret") != CLIENT_SECRET:
            return _json(
                {
                    "message": "Bad Request",
                    "errors": [{"resource": "Application", "field": "client_id", "code": "invalid"}],
                },
                400,
            )
        if self.inactive:
            return _json(INACTIVE, 403)
        grant = form.get("grant_type")
        if grant == "authorization_code":
            if form.get("code") not in self.codes:
                return _json(
                    {
                        "message": "Bad Request",
                        "errors": [{"resource": "AuthorizationCode", "field": "code", "code": "invalid"}],
                    },
                    400,
                )
            self.codes.discard(form["code"])
        elif grant == "refresh_token":
            if form.get("refresh_token") not in self.refresh:
                return _json(
                    {
                        "message": "Bad Request",
                        "errors": [{"resource": "RefreshToken", "field": "refresh_token", "code": "invalid"}],
                    },
                    400,
                )
            self.refresh.discard(form["refresh_token"])
        else:
            return _json({"message": "Bad Request", "errors": [{"field": "grant_type", "code": "invalid"}]}, 400)
        pair = self.issue()
        body = {"token_type": "Bearer", **pair}
        if grant == "authorization_code":
            body["athlete"] = {"id": 134815, "username": "runner", "resource_state": 2}
        return _json(body)

    def _list(self, request: Request) -> Response:
        args = request.args
        after = int(args.get("after") or 0)
        before = int(args["before"]) if args.get("before") else None
        page, per_page = int(args.get("page", 1)), int(args.get("per_page", 30))

        memo = (len(self.activities), after, before)
        if self._listing[0] != memo:  # a listing is paged through: sort it once per window

            def epoch(a: dict[str, Any]) -> float:
                try:
                    return calendar.timegm(time.strptime(str(a.get("start_date")), "%Y-%m-%dT%H:%M:%SZ"))
                except ValueError:
                    return float(after) + 1  # a broken record is still listed

            chosen = [a for a in self.activities if epoch(a) > after and (before is None or epoch(a) < before)]
            chosen.sort(key=epoch)  # with ``after``, Strava lists oldest first
            self._listing = (memo, chosen)
        chosen = self._listing[1]
        first = (page - 1) * per_page
        return _json(chosen[first : first + per_page])


def _json(value: Any, status: int = 200) -> Response:
    return Response(json.dumps(value), status=status, content_type="application/json; charset=utf-8")
