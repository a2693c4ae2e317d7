"""Garmin Connect through ``garminconnect``: login, token resume, listing, HR samples.

``normalise_activity`` is pure and cheap to import (``rebuild`` and ``unlink``
use it); the client is imported only inside the functions that talk to Garmin.

Endpoints.  The library derives every host from ``domain``, which it accepts
only as garmin.com or garmin.cn, so a regional endpoint, a proxy or a test
server is reached by setting the client's attributes after construction
(``configure_endpoints``): ``_connectapi`` (the API, config
``sync.garmin_api_base`` / ``HEALTHCACHE_GARMIN_API_BASE``), ``_sso`` (login,
``HEALTHCACHE_GARMIN_SSO_URL``) and ``_di_token_url`` (token exchange and
refresh, ``HEALTHCACHE_GARMIN_TOKEN_URL``).  Checked against garminconnect
0.3.20; an installed version without those attributes is refused with a
clear message rather than silently talking to the real Garmin.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from healthcache.config import Config, Paths
from healthcache.errors import AuthRequired, SourceError
from healthcache.model.records import HRSplit, SourceRecord
from healthcache.model.sports import garmin_sport
from healthcache.sources import tokens
from healthcache.sources.base import (
    GARMIN_RATE_LIMIT_BACKOFF,
    RETRIES,
    RateLimited,
    RequestCounter,
    payload_number,
    payload_text,
)
from healthcache.timeutil import now_utc, utc_iso

SOURCE = "garmin"
PAGE_SIZE = 20  # what the Connect web app and the library's own pager ask for
MAX_PAGES = 2000  # the library's own cap on server-driven paging
MAX_CHART = 4000  # detail samples per activity: ~1 s resolution for an hour
ENDPOINT_ATTRIBUTES = ("_connectapi", "_sso", "_di_token_url")
CHECKED_VERSION = "0.3.20"

ENV_SSO = "HEALTHCACHE_GARMIN_SSO_URL"
ENV_TOKEN_URL = "HEALTHCACHE_GARMIN_TOKEN_URL"
LOGIN_HINT = "Log in again with: healthcache auth garmin"


# --------------------------------------------------------------------------- normalise (pure)


def _garmin_time(text: str, key: str) -> datetime:
    """Garmin writes '2024-05-01 06:30:00' (sometimes with 'T' and '.0')."""
    try:
        return datetime.fromisoformat(text.strip().replace(" ", "T"))
    except ValueError as exc:
        raise ValueError(f"{key}: not a date-time: {text!r}") from exc


def _start(raw: dict[str, Any]) -> str:
    gmt = payload_text(raw, "startTimeGMT")
    if gmt:
        return utc_iso(_garmin_time(gmt, "startTimeGMT").replace(tzinfo=UTC))
    stamp = payload_number(raw, "beginTimestamp")  # milliseconds since the epoch
    if stamp is not None:
        return utc_iso(datetime.fromtimestamp(stamp / 1000, UTC))
    raise ValueError("startTimeGMT: missing (and no beginTimestamp)")


# An elapsed time this many times its neighbours is in milliseconds, not seconds: a
# pause 100 times the moving time does not happen (watches stop recording), while
# Connect's activity lists of 2018-2021 send ``elapsedDuration`` in ms.
MS_RATIO = 100.0


def _span_s(raw: dict[str, Any]) -> float | None:
    """endTimeGMT - startTimeGMT in seconds, when the payload has both (newer lists)."""
    end, start = payload_text(raw, "endTimeGMT"), payload_text(raw, "startTimeGMT")
    if not end or not start:
        return None
    try:
        return (_garmin_time(end, "endTimeGMT") - _garmin_time(start, "startTimeGMT")).total_seconds()
    except ValueError:
        return None


def elapsed_seconds(raw: dict[str, Any]) -> tuple[float | None, str]:
    """The elapsed time in seconds and how it was read.  Pure.

    ``elapsedDuration`` is checked against its neighbours (``duration``,
    ``movingDuration``, the span from ``startTimeGMT`` to ``endTimeGMT``, and
    ``distance / averageSpeed``): real lists of 2018 and 2021 give it in
    milliseconds beside ``duration`` in seconds, which read as seconds made a
    45-minute run last 31 days.
    """
    elapsed = payload_number(raw, "elapsedDuration")
    duration = payload_number(raw, "duration")
    distance, speed = payload_number(raw, "distance"), payload_number(raw, "averageSpeed")
    neighbours = [
        v
        for v in (
            duration,
            payload_number(raw, "movingDuration"),
            _span_s(raw),
            distance / speed if distance and speed and speed > 0 else None,
        )
        if v is not None and v > 0
    ]
    if not elapsed:
        return duration, "duration (no elapsedDuration)"
    if not neighbours:
        return elapsed, "elapsedDuration (nothing to check it against)"
    reference = max(neighbours)
    if elapsed <= reference * MS_RATIO:
        return elapsed, "elapsedDuration, seconds"
    if elapsed / 1000 >= min(neighbours) * 0.5:
        return elapsed / 1000, f"elapsedDuration in milliseconds ({elapsed:.0f} beside {reference:.0f} s)"
    return duration, f"elapsedDuration {elapsed:.0f} fits neither unit; duration used"


def validate(record: SourceRecord) -> SourceRecord:
    """Check a record against the cache schema's constraints (HR range, no negatives...).

    A record that would fail the save's schema check must be rejected here, one
    record at a time, instead of failing the whole save later.
    """
    try:
        checked = msgspec.convert(msgspec.to_builtins(msgspec.structs.replace(record, raw=None)), SourceRecord)
    except msgspec.ValidationError as exc:
        raise ValueError(str(exc)) from exc
    return msgspec.structs.replace(checked, raw=record.raw)


# What ``activity-service/activity/{id}`` calls the list's fields: the summary is nested in
# ``summaryDTO`` and the type is ``activityTypeDTO``; its ``elapsedDuration`` is in seconds
# (2018 to 2026 alike) where the lists of 2018-2021 sent milliseconds.
_SUMMARY_NAMES = {
    "averageRunCadence": "averageRunningCadenceInStepsPerMinute",
    "averageBikeCadence": "averageBikingCadenceInRevPerMinute",
    "averageSwimCadence": "averageSwimCadenceInStrokesPerMinute",
    "averagePower": "avgPower",
}


def list_shape(raw: dict[str, Any]) -> dict[str, Any]:
    """An activity payload of either endpoint with the list's field names.  Pure.

    The list payload is returned as it is; an ``activity-service/activity/{id}``
    payload (``summaryDTO``, ``activityTypeDTO``) is flattened onto the list's
    names, so both normalise alike.  The stored raw payload is never this view.
    """
    summary = raw.get("summaryDTO")
    if not isinstance(summary, dict) or "activityType" in raw:
        return raw
    flat = {k: v for k, v in summary.items() if k not in _SUMMARY_NAMES}
    flat.update({new: summary[old] for old, new in _SUMMARY_NAMES.items() if old in summary})
    for key in ("activityId", "activityName", "parentId"):
        if key in raw:
            flat[key] = raw[key]
    flat["activityType"] = raw.get("activityTypeDTO")
    return flat


def normalise_activity(raw: dict[str, Any]) -> SourceRecord:
    """One activity as Garmin sent it: an entry of the activity list (``activitylist-service``)
    or the single-activity payload (``activity-service/activity/{id}``, see ``list_shape``).

    Raises ValueError (or KeyError/TypeError) naming the field when the payload
    is unusable; the record is then skipped and reported, never half-imported.
    """
    if not isinstance(raw, dict):
        raise TypeError(f"expected an activity object, got {type(raw).__name__}")
    stored, raw = raw, list_shape(raw)
    activity_id = raw.get("activityId")
    if isinstance(activity_id, bool) or not isinstance(activity_id, int | str) or not str(activity_id).strip():
        raise ValueError(f"activityId: missing or not an id: {activity_id!r}")
    kind = raw.get("activityType")
    type_key = None
    parent = None
    if kind is not None:
        if not isinstance(kind, dict):
            raise ValueError(f"activityType: expected an object, got {kind!r}")
        type_key = payload_text(kind, "typeKey")
        parent = kind.get("parentTypeId")
    local = payload_text(raw, "startTimeLocal")
    cadence = (
        payload_number(raw, "averageRunningCadenceInStepsPerMinute")
        or payload_number(raw, "averageBikingCadenceInRevPerMinute")
        or payload_number(raw, "averageSwimCadenceInStrokesPerMinute")
    )
    record = SourceRecord(
        source=SOURCE,
        source_id=str(activity_id).strip(),
        start_time=_start(raw),
        sport=garmin_sport(type_key, parent),
        sport_raw=type_key,
        start_time_local=_garmin_time(local, "startTimeLocal").replace(microsecond=0).isoformat() if local else None,
        name=payload_text(raw, "activityName"),
        distance_m=payload_number(raw, "distance"),
        duration_s=elapsed_seconds(raw)[0],  # elapsed, as the cache defines it
        moving_time_s=payload_number(raw, "movingDuration"),
        elevation_gain_m=payload_number(raw, "elevationGain"),
        calories=payload_number(raw, "calories"),
        avg_hr=payload_number(raw, "averageHR"),
        max_hr=payload_number(raw, "maxHR"),
        avg_cadence=cadence,
        avg_power=payload_number(raw, "avgPower"),
        raw=stored,
    )
    return validate(record)


# --------------------------------------------------------------------------- endpoints and client


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


def make_garmin(endpoints: Endpoints, *, retry_seconds: float | None = None) -> Any:
    """A ``garminconnect.Garmin`` aimed at ``endpoints``, retrying 5xx a few times."""
    from garminconnect import Garmin

    from healthcache.sources import base

    wait = base.RETRY_BASE_SECONDS if retry_seconds is None else retry_seconds
    garmin = Garmin(retry_attempts=RETRIES, retry_min_wait=wait, retry_max_wait=wait * 4)
    configure_endpoints(garmin.client, endpoints)
    return garmin


def _malformed(exc: BaseException) -> bool:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, json.JSONDecodeError):
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
        until = clock() + GARMIN_RATE_LIMIT_BACKOFF
        return RateLimited(
            f"Garmin Connect is rate limiting requests (HTTP 429); trying again after {utc_iso(until)}", until
        )
    if isinstance(exc, GarminConnectConnectionError):
        if _malformed(exc):
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
            return func()
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


# The details payload Connect sent until about 2019 is wrapped in its Java class name
# and says ``measurements``/``metrics`` where today's says ``metricDescriptors``/
# ``activityDetailMetrics``; its ``sumDistance`` is in kilometres (unit "kilometer").
_LEGACY_WRAPPER = "com.garmin.activity.details.json.ActivityDetails"
_METRES_PER_UNIT = {"meter": 1.0, "centimeter": 0.01, "kilometer": 1000.0, "mile": 1609.344, "foot": 0.3048}


def _current_shape(details: dict[str, Any]) -> dict[str, Any]:
    """A details payload of either era in today's shape (descriptors + positional metrics)."""
    inner = details.get(_LEGACY_WRAPPER)
    if isinstance(inner, dict):
        details = inner
    if "metricDescriptors" in details or "activityDetailMetrics" in details:
        return details
    return {"metricDescriptors": details.get("measurements"), "activityDetailMetrics": details.get("metrics")}


def _unit_key(descriptor: Any) -> str | None:
    unit = descriptor.get("unit") if isinstance(descriptor, dict) else None
    if isinstance(unit, dict):
        unit = unit.get("key")
    return unit.lower() if isinstance(unit, str) else None


def detail_series(
    details: Any, parse: Callable[[dict[str, Any]], list[dict[str, Any]]]
) -> tuple[list[Any], list[Any], list[Any]]:
    """(seconds, metres, bpm) from an activity details payload of any era.  Pure.

    ``parse`` is garminconnect's ``parse_activity_detail_metrics``; distances are
    scaled to metres from the ``sumDistance`` descriptor's unit (kilometres in
    the 2018 payloads, which read as metres never reached a first kilometre).
    """
    if not isinstance(details, dict):
        return [], [], []
    shaped = _current_shape(details)
    descriptors = shaped.get("metricDescriptors")
    if not isinstance(descriptors, list) or not isinstance(shaped.get("activityDetailMetrics"), list):
        return [], [], []
    times, metres, bpm = _series(parse(shaped))
    unit = next((_unit_key(d) for d in descriptors if isinstance(d, dict) and d.get("key") == "sumDistance"), None)
    scale = _METRES_PER_UNIT.get(unit or "meter")
    if scale is None:
        return [], [], []  # a distance unit we cannot convert: no splits rather than wrong ones
    if scale != 1.0:
        metres = [m * scale if isinstance(m, int | float) and not isinstance(m, bool) else m for m in metres]
    return times, metres, bpm


def _series(samples: list[dict[str, Any]]) -> tuple[list[Any], list[Any], list[Any]]:
    """(seconds, metres, bpm) from parsed detail samples; the time key varies by device."""
    times: list[Any] = []
    for key, scale, relative in (
        ("sumElapsedDuration", 1.0, False),
        ("sumDuration", 1.0, False),
        ("directTimestamp", 0.001, True),
    ):
        if any(isinstance(s.get(key), int | float) for s in samples):
            values = [s.get(key) for s in samples]
            numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
            origin = min(numbers) if relative and numbers else 0.0
            times = [
                (v - origin) * scale if isinstance(v, int | float) and not isinstance(v, bool) else None for v in values
            ]
            break
    if not times:
        return [], [], []
    return times, [s.get("sumDistance") for s in samples], [s.get("directHeartRate") for s in samples]


def is_configured(paths: Paths) -> bool:
    return tokens.garmin_tokens_path(paths).exists()


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


# --------------------------------------------------------------------------- login (auth garmin)


@dataclass
class LoginStep:
    """Where a login stands: done, or waiting for an MFA code (``pending`` holds the state)."""

    done: bool
    garmin: Any = None
    pending: dict[str, Any] | None = None


def _login_error(exc: BaseException) -> BaseException:
    from garminconnect import GarminConnectAuthenticationError, GarminConnectTooManyRequestsError

    if isinstance(exc, GarminConnectAuthenticationError):
        text = str(exc)
        if "MFA" in text:
            return SourceError("Garmin did not accept the MFA code", hint="Run healthcache auth garmin again.")
        return SourceError("Garmin did not accept the email and password", hint="Check them and try again.")
    if isinstance(exc, GarminConnectTooManyRequestsError):
        return SourceError(
            "Garmin is refusing logins from here for now (HTTP 429)", hint="Wait a few minutes and try again."
        )
    return SourceError(f"Garmin login failed: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")


def start_login(paths: Paths, config: Config, email: str, password: str) -> LoginStep:
    """Log in with email and password; stop at MFA with the state needed to finish.

    Uses the library's scripted path (``return_on_mfa``), so the code can come
    from a prompt in this process or from a later run (``finish_login``).
    """
    garmin = make_garmin(Endpoints.resolve(config))
    try:
        status, pending = garmin.client.login(email, password, return_on_mfa=True)
    except Exception as exc:
        raise _login_error(exc) from exc
    if status == "needs_mfa":
        return LoginStep(done=False, garmin=garmin, pending=pending)
    save_login(paths, garmin)
    return LoginStep(done=True, garmin=garmin)


def finish_login(paths: Paths, config: Config, code: str, *, step: LoginStep | None = None) -> None:
    """Complete an MFA login, in this process (``step``) or from the saved pending state."""
    pending = step.pending if step is not None else load_pending(paths)
    if pending is None:
        raise SourceError(
            "no Garmin login is waiting for an MFA code", hint="Start one with: healthcache auth garmin --email ..."
        )
    garmin = step.garmin if step is not None and step.garmin is not None else make_garmin(Endpoints.resolve(config))
    try:
        garmin.client.resume_login(pending, code.strip())
    except Exception as exc:
        raise _login_error(exc) from exc
    save_login(paths, garmin)
    tokens.remove(tokens.garmin_mfa_path(paths))


def save_login(paths: Paths, garmin: Any) -> None:
    tokens.write_secret(paths, tokens.garmin_tokens_path(paths), garmin.client.dumps().encode())


def save_pending(paths: Paths, pending: dict[str, Any]) -> None:
    """The half-done login (SSO cookies, no password) for a later --mfa-code run; 0600."""
    tokens.write_json_secret(paths, tokens.garmin_mfa_path(paths), pending)


def load_pending(paths: Paths) -> dict[str, Any] | None:
    return tokens.read_json(tokens.garmin_mfa_path(paths))
