"""Strava through ``stravalib``: app credentials, the client, the resumed session, listing, HR streams.

``stravalib`` (0.8 s to import) is imported only inside the functions that
talk to Strava.

Raw payload.  The listing goes through stravalib's ``ApiV3`` protocol
(``client.protocol.get``, the very request ``Client.get_activities`` makes,
with its bearer header, token refresh, error mapping and rate-limit hook) but
stops before the pydantic models, whose ``model_dump`` renames and converts
fields and so would not round-trip: the JSON is kept as Strava sent it.

Endpoint.  stravalib builds ``https://{protocol.server}/api/v3/...`` and
``https://{protocol.server}/oauth/...``; ``protocol.server`` is set from config
``sync.strava_api_host`` / ``HEALTHCACHE_STRAVA_API_HOST``.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from healthcache.config import Config, Paths
from healthcache.errors import AuthRequired, ConfigError, SourceError
from healthcache.model.records import HRSplit
from healthcache.sources import retry, tokens
from healthcache.sources.http import RateLimited, RequestCounter
from healthcache.sources.strava.budget import BudgetLimiter, reset_time, usage
from healthcache.sources.strava.payloads import SOURCE, stream_series
from healthcache.timeutil import now_utc, utc_iso

DEFAULT_HOST = "www.strava.com"
PER_PAGE = 200  # Strava's maximum page size: fewest requests against the budget
MAX_PAGES = 1000
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
        def request(self, *args: Any, **kwargs: Any) -> Any:
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


def retryable(exc: BaseException) -> bool:
    """A 5xx or a dropped connection; never 401, 403, 404 or 429."""
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

    def _translate(self, exc: BaseException, attempts: int = 1) -> BaseException:
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
                asked = retry.retry_after(exc)
                wait = f"; it asked to wait {asked:.0f} s" if asked is not None else ""
                return SourceError(
                    f"Strava failed with HTTP {status} (after {attempts} attempt{'s' * (attempts != 1)}{wait})"
                )
            return SourceError(f"Strava refused the request (HTTP {status})")
        if isinstance(exc, requests.JSONDecodeError | ValueError):
            return SourceError("Strava sent a reply that is not valid JSON")
        if isinstance(exc, requests.RequestException):
            return SourceError(f"could not reach Strava: {type(exc).__name__}")
        return exc

    def _call(self, func: Callable[[], Any]) -> Any:
        attempts = 0

        def attempt() -> Any:
            nonlocal attempts
            attempts += 1
            return func()

        try:
            return retry.call(attempt, retryable)
        except Exception as exc:
            mapped = self._translate(exc, attempts)
            if mapped is exc:
                raise
            raise mapped from exc

    def _check_budget(self) -> None:
        """Stop before a request the budget cannot pay for (no sleeping, no 429 provoked)."""
        which = self.limiter.spent()
        if which:
            until = reset_time(self.clock(), which)
            raise RateLimited(
                f"Strava's {which} request budget is spent ({usage(self.limiter.budgets)}); "
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


def _int_or_none(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


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
