"""File importers: FIT, GPX, TCX, Garmin and Strava account exports, Polar Flow and Apple Health.

``run_import`` is the entry point (files, folders and zips; type detected from
content; stat-first manifests; one guarded save).  Each format's module reads
bytes (or a stream) into normalised ``SourceRecord``s and provides
``normalise_raw`` to rebuild a record from the compact raw payload it stored.
Heavy parsers (fitdecode, lxml) are imported by the modules that need them, so
importing this package costs nothing at CLI start-up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from healthcache.importers.run import ImportReport, run_import

__all__ = ["ImportReport", "run_import"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from healthcache.importers import run

        return getattr(run, name)
    raise AttributeError(name)
