"""What an API source offers (``Source``) and what a resumed login offers (``Session``).

Sync, backfill-hr and auth know sources only through these two protocols and
``get_source``; nothing outside a source's own folder asks which source it is.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from healthcache.errors import SourceError
from healthcache.sources.registry import SOURCES

if TYPE_CHECKING:
    from healthcache.config import Config, Paths
    from healthcache.model.records import HRSplit, SourceRecord
    from healthcache.sources.login import LoginResult, Prompter


class Session(Protocol):
    """A resumed login: what a run asks of a source, then ``close`` to keep renewed tokens."""

    name: str

    @property
    def requests(self) -> int: ...

    def pages(self, start: datetime, end: datetime) -> Iterable[list[Any]]: ...

    def hr_splits(self, source_id: str, raw: Any = None) -> list[HRSplit]: ...

    def close(self) -> None: ...


class Source(Protocol):
    """One API source: is it set up, resume its login, read its payloads, log in."""

    name: str
    id_key: str  # the payload field holding the activity's id (named when a payload is unusable)

    def is_configured(self, paths: Paths) -> bool:
        """A login is saved (a cheap file check: no client, no request)."""
        ...

    def resume(self, paths: Paths, config: Config, *, clock: Callable[[], datetime]) -> Session:
        """A session from the saved login; this is where the client library is imported."""
        ...

    def normalise(self, raw: Any) -> SourceRecord:
        """One stored payload as a record; pure; ValueError/KeyError/TypeError when unusable."""
        ...

    def has_hr(self, raw: Any) -> bool:
        """Whether the payload's own summary says there is heart rate to fetch."""
        ...

    def login(self, paths: Paths, config: Config, request: Any, prompter: Prompter) -> LoginResult:
        """Run the login steps for ``request`` (the source's own request type), asking through ``prompter``."""
        ...


def get_source(name: str) -> Source:
    """The registered source ``name`` (imports its package, not its client)."""
    target = SOURCES.get(name)
    if target is None:
        raise SourceError(f"unknown source {name!r}", hint=f"Known sources: {', '.join(SOURCES)}.")
    module, attr = target.split(":")
    source: Source = getattr(importlib.import_module(module), attr)
    return source
