"""Re-derive a normalised record from a stored raw payload, for any source.

``unlink`` (splitting a merged activity) and ``rebuild`` need each source's
normaliser without importing every source at startup, so the map names them
by module path and imports on use.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from healthcache.errors import HealthcacheError
from healthcache.importers import formats
from healthcache.model.records import SourceRecord

# source name -> "module:function" taking the raw payload stored under activity.raw[source]:
# the API sources here, every import format's from its registry entry (``importers.formats``).
NORMALISERS: dict[str, str] = {
    "garmin": "healthcache.sources.garmin:normalise_activity",
    "strava": "healthcache.sources.strava:normalise_activity",
    **formats.normalisers(),
}


def normaliser(source: str) -> Callable[[Any], SourceRecord]:
    target = NORMALISERS.get(source) or formats.normalisers().get(source)  # or a format registered since
    if target is None:
        raise HealthcacheError(f"no normaliser is known for source {source!r}")
    module, attr = target.split(":")
    func: Callable[[Any], SourceRecord] = getattr(importlib.import_module(module), attr)
    return func


def from_raw(source: str, raw: Any) -> SourceRecord:
    """The record ``source`` would produce from ``raw``; raises HealthcacheError if it cannot."""
    try:
        return normaliser(source)(raw)
    except HealthcacheError:
        raise
    except (ImportError, AttributeError) as exc:
        raise HealthcacheError(f"the {source} normaliser is not available: {exc}") from exc
    except (KeyError, TypeError, ValueError) as exc:
        raise HealthcacheError(f"cannot re-derive a {source} record from its stored payload: {exc}") from exc
