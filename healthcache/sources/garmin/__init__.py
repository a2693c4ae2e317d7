"""Garmin Connect as a ``Source``: payloads (pure readers), client (the resumed session), login (the steps).

Importing this package imports no client library: ``client`` and ``login``
import ``garminconnect`` inside the functions that talk to Garmin.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from healthcache.sources import tokens

if TYPE_CHECKING:
    from healthcache.config import Config, Paths
    from healthcache.model.records import SourceRecord
    from healthcache.sources.garmin.client import GarminSession
    from healthcache.sources.garmin.login import GarminLogin
    from healthcache.sources.login import LoginResult, Prompter


class Garmin:
    """Garmin Connect through ``garminconnect``."""

    name = "garmin"  # payloads.SOURCE (a test checks they agree; the payload readers load on use)
    id_key = "activityId"

    def is_configured(self, paths: Paths) -> bool:
        return tokens.garmin_tokens_path(paths).exists()

    def resume(self, paths: Paths, config: Config, *, clock: Callable[[], datetime]) -> GarminSession:
        from healthcache.sources.garmin.client import resume

        return resume(paths, config, clock=clock)

    def normalise(self, raw: Any) -> SourceRecord:
        from healthcache.sources.garmin.payloads import normalise_activity

        return normalise_activity(raw)

    def has_hr(self, raw: Any) -> bool:
        return isinstance(raw, dict) and (raw.get("averageHR") is not None or raw.get("hasHeartRate") is True)

    def login(self, paths: Paths, config: Config, request: GarminLogin, prompter: Prompter) -> LoginResult:
        from healthcache.sources.garmin.login import login

        return login(paths, config, request, prompter)


GARMIN = Garmin()
