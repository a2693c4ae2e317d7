"""Notices: things worth a line to the person that are neither a result nor a failure (a bookkeeping
file that could not be read, and is read again from the cache).

The library calls ``notice``; whoever runs it says where notices go (``listening``): the CLI prints
them on stderr as notes, a test collects them (``collected``).  With nobody listening they go to
stderr, so a library caller is never left with a silent fallback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

Listener = Callable[[str], None]
_LISTENER: ContextVar[Listener | None] = ContextVar("healthcache_notices", default=None)


def notice(text: str) -> None:
    """Tell the person ``text``, once, in words: to the listener, else on stderr (stdout stays the report)."""
    listener = _LISTENER.get()
    if listener is not None:
        listener(text)
    else:
        print(text, file=sys.stderr, flush=True)


@contextmanager
def listening(listener: Listener) -> Iterator[None]:
    """Send the notices given inside the block to ``listener``."""
    token = _LISTENER.set(listener)
    try:
        yield
    finally:
        _LISTENER.reset(token)


@contextmanager
def collected() -> Iterator[list[str]]:
    """Collect the notices given inside the block instead of showing them."""
    heard: list[str] = []
    with listening(heard.append):
        yield heard
