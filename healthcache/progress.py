"""Progress of long steps, told to whoever shows it: the library reports, only the CLI draws.

A step is ``start(total, what)``, any number of ``advance(n, current)`` and one
``done()``; steps nest (an archive's members inside the files of an import), and
``advance`` always counts in the innermost open step.  ``total`` is None when
it is not known in advance (the pages of a sync).  ``SILENT`` is the default
everywhere: a caller that shows nothing pays one method call per item.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

__all__ = ["SILENT", "Progress", "step"]


class Progress(Protocol):
    """What a long step reports: how many of how many, and which one it has just finished."""

    def start(self, total: int | None, what: str) -> None:
        """A step of ``total`` items (None: unknown) begins, described by ``what``."""

    def advance(self, n: int = 1, current: str | None = None) -> None:
        """``n`` more items of the innermost step are finished; ``current`` names the last one."""

    def done(self) -> None:
        """The innermost step is over (also when it stopped early)."""


class _Silent:
    """Reports to no one."""

    def start(self, total: int | None, what: str) -> None:
        pass

    def advance(self, n: int = 1, current: str | None = None) -> None:
        pass

    def done(self) -> None:
        pass


SILENT: Progress = _Silent()


@contextmanager
def step(progress: Progress, total: int | None, what: str) -> Iterator[Progress]:
    """``start`` now and ``done`` on the way out, however the step ends: the nesting stays balanced."""
    progress.start(total, what)
    try:
        yield progress
    finally:
        progress.done()
