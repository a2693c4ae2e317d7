"""Garmin Connect through ``garminconnect``: endpoints, the resumed session, listing, HR samples.

The client is imported only inside the functions that talk to Garmin.

Endpoints.  The library derives every host from ``domain``, which it accepts
only as garmin.com or garmin.cn, so a regional endpoint, a proxy or a test
server is reached by setting the client's attributes after construction
(``configure_endpoints``): ``_connectapi`` (the API, config
``sync.garmin_api_base`` / ``HEALTHCACHE_GARMIN_API_BASE``), ``_sso`` (login,
``HEALTHCACHE_GARMIN_SSO_URL``) and ``_di_token_url`` (token exchange and
refresh, ``HEALTHCACHE_GARMIN_TOKEN_URL``).  Checked against garminconnect
0.3.20; an installed version without those attributes is refused with a
clear message rather than silently talking to the real Garmin.

Retries.  The library's own retry loop is turned off (``retry_attempts=0``):
every request goes through ``sources.retry``, the one rule of all sources,
which also honours a Retry-After header.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from healthcache.config import Config, Paths
from healthcache.errors import AuthRequired, SourceError
from healthcache.model.records import HRSplit
from healthcache.sources import retry, tokens
from healthcache.sources.garmin.payloads import SOURCE, detail_series
from healthcache.sources.http import RateLimited, RequestCounter
from healthcache.timeutil import now_utc, utc_iso

PAGE_SIZE = 20  # what the Connect web app and the library's own pager ask for
MAX_PAGES = 2000  # the library's own cap on server-driven paging
MAX_CHART = 4000  # detail samples per activity: ~1 s resolution for an hour
ENDPOINT_ATTRIBUTES = ("_connectapi", "_sso", "_di_token_url")
CHECKED_VERSION = "0.3.20"

# Garmin publishes no reset time for its 429s; back off this long.
RATE_LIMIT_BACKOFF = timedelta(minutes=30)

ENV_SSO = "HEALTHCACHE_GARMIN_SSO_URL"
ENV_TOKEN_URL = "HEALTHCACHE_GARMIN_TOKEN_URL"
LOGIN_HINT = "Log in again with: healthcache auth garmin"


@dataclass(frozen=True)
class Endpoints:
    """Where the client talks to; None keeps the library's own (real Garmin) host."""

    api_base: str | None = None
    sso: str | None = None
    token_url: str | None = None

    @classmethod
    def resolve(cls, config: Config, environ: dict[str, str] | None = None) -> Endpoints:
        env = os.environ if environ is None else environ
        # The environment wins, as for every endpoint; the config fields are read when
        # the config knows them (``sync.garmin_sso_url`` / ``sync.garmin_token_url``).
        return cls(
            api_base=_strip(config.sync.garmin_api_base),
            sso=_strip(env.get(ENV_SSO) or getattr(config.sync, "garmin_sso_url", None)),
            token_url=_strip(env.get(ENV_TOKEN_URL) or getattr(config.sync, "garmin_token_url", None)),
        )


def _strip(value: str | None) -> str | None:
    value = (value or "").strip().rstrip("/")
    return value or None


def configure_endpoints(client: Any, endpoints: Endpoints) -> None:
    """Point a ``garminconnect.client.Client`` at other hosts (see the module doc)."""
    missing = [a for a in ENDPOINT_ATTRIBUTES if not hasattr(client, a)]
    if missing:
        from importlib.metadata import version

        raise SourceError(
            f"garminconnect {version('garminconnect')} has no {', '.join(missing)}; "
            f"healthcache was checked against {CHECKED_VERSION} and cannot point it at a configured endpoint"
        )
    if endpoints.api_base:
        client._connectapi = endpoints.api_base
    if endpoints.sso:
        client._sso = endpoints.sso
    if endpoints.token_url:
        client._di_token_url = endpoints.token_url


def make_garmin(endpoints: Endpoints) -> Any:
    """A ``garminconnect.Garmin`` aimed at ``endpoints``, its own retries off (``retry.call`` retries)."""
    from garminconnect import Garmin

    garmin = Garmin(retry_attempts=0)
    configure_endpoints(garmin.client, endpoints)
    return garmin


def _status(exc: BaseException) -> int | None:
    """The HTTP status behind a garminconnect failure: its response, else its "API Error NNN" text."""
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if isinstance(status, int):
        return status
    found = re.search(r"API Error (\d{3})", str(exc))
    return int(found.group(1)) if found else None


def _network_cause(exc: BaseException) -> bool:
    import requests

    return _in_causes(exc, requests.ConnectionError, requests.Timeout)


def retryable(exc: BaseException) -> bool:
    """A 5xx or a dropped connection; never 401, 404, 429 or a reply that is not JSON."""
    import requests
    from garminconnect import GarminConnectConnectionError, GarminConnectNotFoundError

    if isinstance(exc, GarminConnectNotFoundError):
        return False
    if isinstance(exc, GarminConnectConnectionError):
        status = _status(exc)
        return status >= 500 if status is not None else _network_cause(exc)
    return isinstance(exc, requests.ConnectionError | requests.Timeout)


def _in_causes(exc: BaseException, *kinds: type[BaseException]) -> bool:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, kinds):
            return True
        cur = cur.__cause__ or cur.__context__
    return False


def translate(exc: BaseException, *, clock: Callable[[], datetime] = now_utc) -> BaseException:
    """A garminconnect failure as one of ours, with a message a person can act on."""
    from garminconnect import (
        GarminConnectAuthenticationError,
        GarminConnectConnectionError,
        GarminConnectTooManyRequestsError,
    )

    if isinstance(exc, GarminConnectAuthenticationError):
        return AuthRequired("Garmin Connect no longer accepts the saved login", hint=LOGIN_HINT)
    if isinstance(exc, GarminConnectTooManyRequestsError):
        until = clock() + RATE_LIMIT_BACKOFF
        return RateLimited(
            f"Garmin Connect is rate limiting requests (HTTP 429); trying again after {utc_iso(until)}", until
        )
    if isinstance(exc, GarminConnectConnectionError):
        if _in_causes(exc, json.JSONDecodeError):
            return SourceError("Garmin Connect sent a reply that is not valid JSON")
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        status = re.search(r"API Error (\d{3})(?: - (.+))?", text)
        if status:
            detail = f" ({status.group(2).strip()})" if status.group(2) else ""
            return SourceError(f"Garmin Connect answered HTTP {status.group(1)}{detail}")
        return SourceError(f"could not reach Garmin Connect: {text}")
    return exc


class GarminSession:
    """A resumed login: listing and samples, counting requests, saving refreshed tokens."""

    name = SOURCE

    def __init__(self, paths: Paths, garmin: Any, token_text: str, clock: Callable[[], datetime] = now_utc):
        self.paths = paths
        self.garmin = garmin
        self.clock = clock
        self._tokens = _token_fields(token_text)
        self.counter = RequestCounter()
        self.counter.attach(garmin.client._api_session)

    @property
    def requests(self) -> int:
        return self.counter.count

    def _call(self, func: Callable[[], Any]) -> Any:
        try:
            return retry.call(func, retryable)
        except Exception as exc:
            mapped = translate(exc, clock=self.clock)
            if mapped is exc:
                raise
            raise mapped from exc

    def pages(self, start: datetime, end: datetime) -> Iterator[list[dict[str, Any]]]:
        """Activity pages for the local dates covering [start, end], newest first, to the end."""
        g = self.garmin
        # Garmin filters by the activity's local date: widen by a day each side for time zones.
        first = start.astimezone(UTC).date() - timedelta(days=1)
        last = end.astimezone(UTC).date() + timedelta(days=1)
        params = {"startDate": first.isoformat(), "endDate": last.isoformat(), "start": "0", "limit": str(PAGE_SIZE)}
        offset = 0
        for _ in range(MAX_PAGES):
            params["start"] = str(offset)
            page = self._call(lambda: g.connectapi(g.garmin_connect_activities, params=dict(params)))
            if page is None or page == [] or page == {}:
                return
            if not isinstance(page, list):
                raise SourceError(f"Garmin Connect sent an activity list that is not a list ({type(page).__name__})")
            yield page
            offset += len(page)
        raise SourceError(f"Garmin Connect kept sending pages after {MAX_PAGES}; stopped")

    def hr_splits(self, source_id: str, raw: Any = None) -> list[HRSplit]:
        """Per-km HR from the activity's detail samples, else from kilometre laps."""
        from garminconnect import GarminConnectNotFoundError, parse_activity_detail_metrics

        from healthcache.splits import km_laps_to_splits, per_km_splits

        g = self.garmin
        try:
            details = self._call(lambda: g.get_activity_details(source_id, maxchart=MAX_CHART))
        except SourceError as exc:
            if not isinstance(exc.__cause__, GarminConnectNotFoundError):
                raise
            details = None  # no detail samples kept for it: the laps may still do
        splits = per_km_splits(*detail_series(details, parse_activity_detail_metrics))
        if splits:
            return splits
        try:
            laps = self._call(lambda: g.get_activity_splits(source_id))
        except SourceError as exc:
            if isinstance(exc.__cause__, GarminConnectNotFoundError):
                return []
            raise
        lap_list = laps.get("lapDTOs") if isinstance(laps, dict) else None
        return km_laps_to_splits(lap_list) if isinstance(lap_list, list) else []

    def close(self) -> None:
        """Keep tokens the library refreshed during the run (Garmin rotates them)."""
        current = _token_fields(self.garmin.client.dumps())
        if current != self._tokens and current.get("di_token"):
            tokens.write_secret(self.paths, tokens.garmin_tokens_path(self.paths), json.dumps(current).encode())
            self._tokens = current


def _token_fields(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def resume(paths: Paths, config: Config, *, clock: Callable[[], datetime] = now_utc) -> GarminSession:
    """A session from the saved tokens, without a login request; AuthRequired if none."""
    text = tokens.read_text(tokens.garmin_tokens_path(paths))
    if text is None:
        raise AuthRequired("no Garmin Connect login is saved", hint="Log in with: healthcache auth garmin")
    garmin = make_garmin(Endpoints.resolve(config))
    try:
        garmin.client.loads(text)
    except Exception as exc:
        raise AuthRequired("the saved Garmin Connect login cannot be read", hint=LOGIN_HINT) from exc
    return GarminSession(paths, garmin, text, clock)
