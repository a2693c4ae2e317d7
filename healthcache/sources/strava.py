"""Strava through ``stravalib``: OAuth, token refresh, listing, HR streams, rate limits.

``normalise_activity`` is pure; ``stravalib`` (0.8 s to import) is imported
only inside the functions that talk to Strava.

Raw payload.  What is stored under ``raw["strava"]`` is the SummaryActivity
JSON object exactly as Strava sent it in ``GET /athlete/activities``: the
listing goes through stravalib's ``ApiV3`` protocol (``client.protocol.get``,
the very request ``Client.get_activities`` makes, with its bearer header,
token refresh, error mapping and rate-limit hook) but stops before the pydantic
models, whose ``model_dump`` renames and converts fields and so would not
round-trip.  ``normalise_activity`` reads that JSON.

Rate limits.  stravalib's ``DefaultRateLimiter`` sleeps until the window
resets when the budget is spent (even at priority "high"), which a CLI run must
never do, so the client gets ``BudgetLimiter``: it only records the
X-RateLimit (or X-ReadRateLimit) usage of each response, and the pager stops
before a request the budget cannot pay for.

Endpoint.  stravalib builds ``https://{protocol.server}/api/v3/...`` and
``https://{protocol.server}/oauth/...``; ``protocol.server`` is set from config
``sync.strava_api_host`` / ``HEALTHCACHE_STRAVA_API_HOST``.
"""

from __future__ import annotations

import contextlib
import html
import os
import secrets
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from healthcache.config import Config, Paths
from healthcache.errors import AuthRequired, ConfigError, SourceError, UsageError
from healthcache.model.records import HRSplit, SourceRecord
from healthcache.model.sports import family, normalise_sport
from healthcache.sources import tokens
from healthcache.sources.base import (
    RateLimited,
    RequestCounter,
    next_quarter_hour,
    next_utc_midnight,
    payload_number,
    payload_text,
    retry_call,
)
from healthcache.sources.garmin import validate
from healthcache.timeutil import now_utc, utc_iso

SOURCE = "strava"
DEFAULT_HOST = "www.strava.com"
PER_PAGE = 200  # Strava's maximum page size: fewest requests against the budget
MAX_PAGES = 1000
SCOPES = ["read", "activity:read_all"]
REFRESH_MARGIN_S = 300  # renew a token that expires within five minutes
REQUEST_TIMEOUT_S = 30.0
ENV_CLIENT_ID = "HEALTHCACHE_STRAVA_CLIENT_ID"
ENV_CLIENT_SECRET = "HEALTHCACHE_STRAVA_CLIENT_SECRET"
LOGIN_HINT = "Log in again with: healthcache auth strava"
INACTIVE_HINT = (
    "Strava answers every request of an inactive API application with 403. The account that owns the "
    "application (client id {client_id}) needs an active Strava subscription; subscribe, then reactivate "
    "the application at https://www.strava.com/settings/api. Nothing was changed."
)
FOOT_FAMILIES = frozenset({"running", "walking"})


# --------------------------------------------------------------------------- normalise (pure)


def _timezone(value: str | None) -> str | None:
    """'(GMT-08:00) America/Los_Angeles' -> 'America/Los_Angeles'."""
    if not value:
        return None
    name = value.rsplit(")", 1)[-1].strip()
    return name or None


def normalise_activity(raw: dict[str, Any]) -> SourceRecord:
    """One SummaryActivity JSON object as Strava sent it.

    Strava's running (and walking) cadence counts one foot (strides per
    minute); it is doubled to steps per minute, the unit Garmin and FIT use.
    """
    if not isinstance(raw, dict):
        raise TypeError(f"expected an activity object, got {type(raw).__name__}")
    activity_id = raw.get("id")
    if isinstance(activity_id, bool) or not isinstance(activity_id, int | str) or not str(activity_id).strip():
        raise ValueError(f"id: missing or not an id: {activity_id!r}")
    start = payload_text(raw, "start_date")
    if not start:
        raise ValueError("start_date: missing")
    try:
        started = datetime.fromisoformat(start)
    except ValueError as exc:
        raise ValueError(f"start_date: not a date-time: {start!r}") from exc
    if started.tzinfo is None:
        started = started.replace(tzinfo=UTC)
    local = payload_text(raw, "start_date_local")
    if local:
        try:
            local = datetime.fromisoformat(local.rstrip("Z")).replace(tzinfo=None).isoformat()
        except ValueError as exc:
            raise ValueError(f"start_date_local: not a date-time: {local!r}") from exc
    sport_raw = payload_text(raw, "sport_type") or payload_text(raw, "type")
    sport = normalise_sport(SOURCE, sport_raw)
    cadence = payload_number(raw, "average_cadence")
    if cadence is not None and family(sport) in FOOT_FAMILIES:
        cadence *= 2
    external = raw.get("external_id")
    record = SourceRecord(
        source=SOURCE,
        source_id=str(activity_id).strip(),
        start_time=utc_iso(started),
        sport=sport,
        sport_raw=sport_raw,
        start_time_local=local,
        timezone=_timezone(payload_text(raw, "timezone")),
        name=payload_text(raw, "name"),
        distance_m=payload_number(raw, "distance"),
        duration_s=payload_number(raw, "elapsed_time"),
        moving_time_s=payload_number(raw, "moving_time"),
        elevation_gain_m=payload_number(raw, "total_elevation_gain"),
        calories=payload_number(raw, "calories"),
        avg_hr=payload_number(raw, "average_heartrate"),
        max_hr=payload_number(raw, "max_heartrate"),
        avg_cadence=cadence,
        avg_power=payload_number(raw, "average_watts"),
        device=payload_text(raw, "device_name"),
        external_id=str(external) if isinstance(external, str | int) and not isinstance(external, bool) else None,
        raw=raw,
    )
    return validate(record)


def stream_series(streams: Any) -> tuple[list[Any], list[Any], list[Any]]:
    """(seconds, metres, bpm) from a streams answer of either shape.  Pure.

    With ``key_by_type=true`` Strava answers ``{"time": {"data": [...]}, ...}``;
    without it (as recorded in 2014) a list of ``{"type": "time", "data": [...]}``.
    A stream that is missing gives an empty series (and so no splits).
    """
    if isinstance(streams, list):
        streams = {s.get("type"): s for s in streams if isinstance(s, dict) and isinstance(s.get("type"), str)}
    if not isinstance(streams, dict):
        return [], [], []

    def data(kind: str) -> list[Any]:
        stream = streams.get(kind)
        values = stream.get("data") if isinstance(stream, dict) else None
        return values if isinstance(values, list) else []

    return data("time"), data("distance"), data("heartrate")


# --------------------------------------------------------------------------- rate limits (pure parts)


@dataclass(frozen=True)
class Budget:
    """Usage and limits from Strava's rate-limit headers: (15-minute, daily)."""

    short_usage: int
    long_usage: int
    short_limit: int
    long_limit: int

    def spent(self) -> str | None:
        """Which budget is spent, if any: 'daily' or '15-minute'."""
        if self.long_limit > 0 and self.long_usage >= self.long_limit:
            return "daily"
        if self.short_limit > 0 and self.short_usage >= self.short_limit:
            return "15-minute"
        return None


def budgets_from_headers(headers: Any) -> list[Budget]:
    """Every budget in a response: X-ReadRateLimit-* (reads) and X-RateLimit-* (all requests)."""
    low = {str(k).lower(): str(v) for k, v in dict(headers or {}).items()}
    out: list[Budget] = []
    for prefix in ("x-readratelimit", "x-ratelimit"):
        usage, limit = low.get(f"{prefix}-usage"), low.get(f"{prefix}-limit")
        if not usage or not limit:
            continue
        try:
            u = [int(x) for x in usage.split(",")]
            lim = [int(x) for x in limit.split(",")]
        except ValueError:
            continue
        if len(u) >= 2 and len(lim) >= 2:
            out.append(Budget(short_usage=u[0], long_usage=u[1], short_limit=lim[0], long_limit=lim[1]))
    return out


def spent(budgets: list[Budget]) -> str | None:
    """The budget that stops us, the daily one first (it resets last)."""
    kinds = {b.spent() for b in budgets}
    if "daily" in kinds:
        return "daily"
    return "15-minute" if "15-minute" in kinds else None


def reset_time(now: datetime, which: str | None) -> datetime:
    """When the named budget is paid back, as Strava documents it."""
    return next_utc_midnight(now) if which == "daily" else next_quarter_hour(now)


class BudgetLimiter:
    """A stravalib rate limiter that never sleeps: it remembers the last budget seen."""

    def __init__(self) -> None:
        self.budgets: list[Budget] = []
        self.rules: list[Any] = []

    def __call__(self, headers: Any, method: str) -> None:
        budgets = budgets_from_headers(headers)
        if budgets:
            self.budgets = budgets

    def spent(self) -> str | None:
        return spent(self.budgets)


# --------------------------------------------------------------------------- credentials


@dataclass
class AppCredentials:
    client_id: int
    client_secret: str


def _client_id(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(str(value).strip())
    except ValueError as exc:
        raise ConfigError(f"the Strava client id must be a number, got {value!r}") from exc


def app_credentials(
    config: Config, saved: dict[str, Any] | None, environ: dict[str, str] | None = None
) -> AppCredentials | None:
    """Client id and secret: environment first, then what auth saved, then config (id only)."""
    env = os.environ if environ is None else environ
    saved = saved or {}
    cid = (
        _client_id(env.get(ENV_CLIENT_ID))
        or _client_id(saved.get("client_id"))
        or _client_id(config.sync.strava_client_id)
    )
    secret = env.get(ENV_CLIENT_SECRET) or saved.get("client_secret")
    if cid is None or not secret:
        return None
    return AppCredentials(cid, str(secret))


def strava_host(config: Config) -> str:
    host = (config.sync.strava_api_host or DEFAULT_HOST).strip()
    for scheme in ("https://", "http://"):
        if host.startswith(scheme):
            host = host[len(scheme) :]
    return host.rstrip("/") or DEFAULT_HOST


def _session() -> Any:
    """A requests.Session whose calls time out (stravalib sets no timeout)."""
    import requests

    class Session(requests.Session):
        def request(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
            kwargs.setdefault("timeout", REQUEST_TIMEOUT_S)
            return super().request(*args, **kwargs)

    return Session()


@contextlib.contextmanager
def _quiet_credential_check() -> Iterator[None]:
    """stravalib's constructor looks for STRAVA_CLIENT_ID/SECRET and logs through the root
    logger when they are absent; ours come from elsewhere, so that check is silenced."""
    old = os.environ.get("SILENCE_TOKEN_WARNINGS")
    os.environ["SILENCE_TOKEN_WARNINGS"] = "true"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("SILENCE_TOKEN_WARNINGS", None)
        else:
            os.environ["SILENCE_TOKEN_WARNINGS"] = old


def make_client(
    host: str,
    *,
    app: AppCredentials | None = None,
    access_token: str | None = None,
    refresh_token: str | None = None,
    expires_at: int | None = None,
    limiter: BudgetLimiter | None = None,
    counter: RequestCounter | None = None,
) -> Any:
    """A stravalib Client aimed at ``host``, with a never-sleeping limiter and a request counter."""
    from stravalib import Client

    session = _session()
    if counter is not None:
        counter.attach(session)
    with _quiet_credential_check():
        client = Client(
            access_token=access_token,
            refresh_token=refresh_token,
            token_expires=expires_at,
            rate_limiter=limiter or BudgetLimiter(),  # type: ignore[arg-type]
            requests_session=session,
        )
    client.protocol.server = host
    if app is not None:
        # Lets stravalib renew an access token that expires during the run.
        client.protocol.client_id = app.client_id
        client.protocol.client_secret = app.client_secret
    return client


def _retryable(exc: BaseException) -> bool:
    import requests
    from stravalib import exc as sexc

    if isinstance(exc, sexc.Fault):
        status = getattr(getattr(exc, "response", None), "status_code", None)
        return isinstance(status, int) and status >= 500
    return isinstance(exc, requests.ConnectionError | requests.Timeout)


class StravaSession:
    """Saved tokens in use: listing and streams, refreshed tokens written back by ``close``."""

    name = SOURCE

    def __init__(
        self,
        paths: Paths,
        config: Config,
        saved: dict[str, Any],
        app: AppCredentials,
        clock: Callable[[], datetime] = now_utc,
    ) -> None:
        self.paths = paths
        self.saved = dict(saved)
        self.app = app
        self.clock = clock
        self.limiter = BudgetLimiter()
        self.counter = RequestCounter()
        self.client = make_client(
            strava_host(config),
            app=app,
            access_token=saved.get("access_token"),
            refresh_token=saved.get("refresh_token"),
            expires_at=_int_or_none(saved.get("expires_at")),
            limiter=self.limiter,
            counter=self.counter,
        )
        self._refreshed = False

    @property
    def requests(self) -> int:
        return self.counter.count

    # -- errors

    def _translate(self, exc: BaseException) -> BaseException:
        import requests
        from stravalib import exc as sexc

        if isinstance(exc, sexc.ApplicationInactive):
            return SourceError(
                "the Strava API application is inactive (HTTP 403)",
                hint=INACTIVE_HINT.format(client_id=self.app.client_id),
            )
        if isinstance(exc, sexc.AccessUnauthorized):
            return AuthRequired("Strava no longer accepts the saved login (HTTP 401)", hint=LOGIN_HINT)
        if isinstance(exc, sexc.Fault):
            status = getattr(getattr(exc, "response", None), "status_code", None)
            if status == 429:
                which = self.limiter.spent()
                until = reset_time(self.clock(), which)
                return RateLimited(
                    f"Strava's {which or '15-minute'} request budget is spent (HTTP 429); "
                    f"skipping Strava until {utc_iso(until)}",
                    until,
                )
            if status == 403:
                return SourceError(
                    "Strava refused the request (HTTP 403)",
                    hint="The login may lack the activity:read_all scope; " + LOGIN_HINT,
                )
            if isinstance(status, int) and status >= 500:
                return SourceError(f"Strava failed with HTTP {status} (after {1 + _retries()} attempts)")
            return SourceError(f"Strava refused the request (HTTP {status})")
        if isinstance(exc, requests.JSONDecodeError | ValueError):
            return SourceError("Strava sent a reply that is not valid JSON")
        if isinstance(exc, requests.RequestException):
            return SourceError(f"could not reach Strava: {type(exc).__name__}")
        return exc

    def _call(self, func: Callable[[], Any]) -> Any:
        try:
            return retry_call(func, _retryable)
        except Exception as exc:
            mapped = self._translate(exc)
            if mapped is exc:
                raise
            raise mapped from exc

    def _check_budget(self) -> None:
        """Stop before a request the budget cannot pay for (no sleeping, no 429 provoked)."""
        which = self.limiter.spent()
        if which:
            until = reset_time(self.clock(), which)
            raise RateLimited(
                f"Strava's {which} request budget is spent ({_usage(self.limiter.budgets)}); "
                f"skipping Strava until {utc_iso(until)}",
                until,
            )

    def _ensure_fresh(self) -> None:
        """Renew an access token that has expired or is about to (Strava tokens last six hours)."""
        if self._refreshed:
            return
        expires = _int_or_none(self.client.token_expires)
        if expires is not None and expires - time.time() > REFRESH_MARGIN_S:
            return
        if not self.client.refresh_token:
            raise AuthRequired("the saved Strava login has no refresh token", hint=LOGIN_HINT)
        try:
            self._call(
                lambda: self.client.refresh_access_token(
                    client_id=self.app.client_id,
                    client_secret=self.app.client_secret,
                    refresh_token=self.client.refresh_token,
                )
            )
        except SourceError as exc:
            status = getattr(getattr(exc.__cause__, "response", None), "status_code", None)
            if status in (400, 401):
                # The refresh token was revoked, or replaced by a renewal we did not keep.
                raise AuthRequired("Strava did not renew the saved login", hint=LOGIN_HINT) from exc
            raise
        self._refreshed = True

    def _get(self, url: str, **params: Any) -> Any:
        self._ensure_fresh()
        self._check_budget()
        return self._call(lambda: self.client.protocol.get(url, **params))

    # -- API

    def pages(self, start: datetime, end: datetime) -> Iterator[list[dict[str, Any]]]:
        """Activity pages started after ``start``, oldest first, until a short page."""
        after = int(start.timestamp())
        for page_no in range(1, MAX_PAGES + 1):
            page = self._get("/athlete/activities", after=after, page=page_no, per_page=PER_PAGE)
            if not isinstance(page, list):
                raise SourceError(f"Strava sent an activity list that is not a list ({type(page).__name__})")
            if page:
                yield page
            if len(page) < PER_PAGE:
                return
        raise SourceError(f"Strava kept sending pages after {MAX_PAGES}; stopped")

    def hr_splits(self, source_id: str, raw: Any = None) -> list[HRSplit]:
        """Per-km HR from the time, distance and heartrate streams."""
        from stravalib import exc as sexc

        from healthcache.splits import per_km_splits

        try:
            streams = self._get(
                f"/activities/{int(source_id)}/streams", keys="time,distance,heartrate", key_by_type=True
            )
        except SourceError as exc:
            if isinstance(exc.__cause__, sexc.ObjectNotFound):
                return []
            raise
        return per_km_splits(*stream_series(streams))

    def close(self) -> None:
        """Save renewed tokens: Strava may rotate the refresh token on every renewal."""
        current = {
            "access_token": self.client.access_token,
            "refresh_token": self.client.refresh_token,
            "expires_at": _int_or_none(self.client.token_expires),
        }
        if all(self.saved.get(k) == v for k, v in current.items()):
            return
        self.saved.update(current)
        tokens.write_json_secret(self.paths, tokens.strava_tokens_path(self.paths), self.saved)


def _retries() -> int:
    from healthcache.sources import base

    return base.RETRIES


def _usage(budgets: list[Budget]) -> str:
    return "; ".join(
        f"used {b.short_usage}/{b.short_limit} in 15 min, {b.long_usage}/{b.long_limit} today" for b in budgets
    )


def _int_or_none(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def is_configured(paths: Paths) -> bool:
    return tokens.strava_tokens_path(paths).exists()


def resume(paths: Paths, config: Config, *, clock: Callable[[], datetime] = now_utc) -> StravaSession:
    saved = tokens.read_json(tokens.strava_tokens_path(paths))
    if saved is None:
        raise AuthRequired("no Strava login is saved", hint="Log in with: healthcache auth strava")
    app = app_credentials(config, saved)
    if app is None:
        raise AuthRequired(
            "the Strava client id and secret are unknown",
            hint=f"Set {ENV_CLIENT_ID} and {ENV_CLIENT_SECRET}, or log in again with: healthcache auth strava",
        )
    if not saved.get("access_token") and not saved.get("refresh_token"):
        raise AuthRequired("the saved Strava login holds no token", hint=LOGIN_HINT)
    return StravaSession(paths, config, saved, app, clock)


# --------------------------------------------------------------------------- OAuth (auth strava)


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
