"""Every API source healthcache syncs: one line each.

A source is a folder under ``sources/`` whose package defines one object that
satisfies ``protocol.Source``, plus one line in ``SOURCES``: ``sync``,
``backfill-hr``, ``auth``, ``rebuild`` and the normaliser table reach it only
through here.  Entries are "module:attribute" text, so this table imports
nothing (``normalise`` and the CLI read it at no cost), and resolving one
(``protocol.get_source``) imports its package but never its client library
(the clients cost 0.2 s and 0.8 s; a skipped sync must not pay for them).
"""

from __future__ import annotations

# name -> "module:attribute" of its ``Source``; the order is the order ``sync`` visits them.
SOURCES: dict[str, str] = {
    "garmin": "healthcache.sources.garmin:GARMIN",
    "strava": "healthcache.sources.strava:STRAVA",
}


def names() -> tuple[str, ...]:
    return tuple(SOURCES)


def normalisers() -> dict[str, str]:
    """name -> "module:attribute.normalise" for ``normalise.NORMALISERS`` (rebuild, show, unlink)."""
    return {name: f"{target}.normalise" for name, target in SOURCES.items()}
