"""Re-derive a normalised record from a stored raw payload, for any source.

``unlink`` (splitting a merged activity) and ``rebuild`` need each source's
normaliser without importing every source at startup, so the map names them
by module path and imports on use.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from healthcache.errors import HealthcacheError
from healthcache.importers import formats
from healthcache.sources import registry

if TYPE_CHECKING:  # the names alone are read at every start (config's known sources); the records on use
    from healthcache.model.records import SourceRecord

# source name -> "module:attribute" (dotted: an object's method) taking the raw payload stored under
# activity.raw[source]: every API source's from its registry (``sources.registry``), every import
# format's from its registry entry (``importers.formats``).
NORMALISERS: dict[str, str] = {
    **registry.normalisers(),
    **formats.normalisers(),
}


def normaliser(source: str) -> Callable[[Any], SourceRecord]:
    # or a source or format registered since
    target = NORMALISERS.get(source) or registry.normalisers().get(source) or formats.normalisers().get(source)
    if target is None:
        raise HealthcacheError(f"no normaliser is known for source {source!r}")
    module, attr = target.split(":")
    found: Any = importlib.import_module(module)
    for name in attr.split("."):
        found = getattr(found, name)
    func: Callable[[Any], SourceRecord] = found
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
