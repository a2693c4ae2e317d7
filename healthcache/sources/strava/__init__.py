"""Strava as a ``Source``: payloads (pure readers), budget (rate limits), client (the session), oauth (login).

Importing this package imports no client library: ``client`` and ``oauth``
import ``stravalib`` inside the functions that talk to Strava.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from healthcache.sources import tokens

if TYPE_CHECKING:
    from healthcache.config import Config, Paths
    from healthcache.model.records import SourceRecord
    from healthcache.sources.login import LoginResult, Prompter
    from healthcache.sources.strava.client import StravaSession
    from healthcache.sources.strava.oauth import StravaLogin


class Strava:
    """Strava through ``stravalib``."""

    name = "strava"  # payloads.SOURCE (a test checks they agree; the payload readers load on use)
    id_key = "id"

    def is_configured(self, paths: Paths) -> bool:
        return tokens.strava_tokens_path(paths).exists()

    def resume(self, paths: Paths, config: Config, *, clock: Callable[[], datetime]) -> StravaSession:
        from healthcache.sources.strava.client import resume

        return resume(paths, config, clock=clock)

    def normalise(self, raw: Any) -> SourceRecord:
        from healthcache.sources.strava.payloads import normalise_activity

        return normalise_activity(raw)

    def has_hr(self, raw: Any) -> bool:
        return isinstance(raw, dict) and (raw.get("has_heartrate") is True or raw.get("average_heartrate") is not None)

    def login(self, paths: Paths, config: Config, request: StravaLogin, prompter: Prompter) -> LoginResult:
        from healthcache.sources.strava.oauth import login

        return login(paths, config, request, prompter)


STRAVA = Strava()
