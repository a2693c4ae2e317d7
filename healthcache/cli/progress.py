"""Live progress at a terminal: the library's ``Progress`` steps drawn by rich.progress on stderr.

Shown only where a person watches (``at_terminal``, the rule the views' colour
follows too, and stderr a terminal) and never under ``--quiet`` or ``--json``.
Nothing is drawn, and rich.progress is not even imported, until a step has run
for ``SHOW_AFTER_S`` (``$HEALTHCACHE_PROGRESS_AFTER`` overrides it): a run that
finishes sooner, such as an import with nothing new, pays for no bar at all.
The bar is transient: when the command ends only its report remains.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from healthcache.progress import SILENT, Progress

if TYPE_CHECKING:
    from healthcache.cli import Ctx

SHOW_AFTER_S = 0.3
_ENV = "HEALTHCACHE_PROGRESS_AFTER"
_MIB = 1 << 20


def at_terminal() -> bool:
    """A person is watching: stdout is a terminal (what the views' colour and progress both ask)."""
    return sys.stdout.isatty()


def shown(ctx: Ctx) -> bool:
    """Whether this run shows progress: at a terminal, drawing on stderr (a terminal too), not -q, not --json."""
    return at_terminal() and sys.stderr.isatty() and not ctx.quiet and not ctx.as_json


@dataclass
class _Step:
    what: str
    total: int | None
    done: int = 0
    current: str = ""
    unit: str = ""  # "" counts items; "bytes" counts bytes (a streamed export's progress)
    task: Any = None  # its rich task id, once drawn

    def count(self) -> str:
        if self.unit == "bytes":
            total = f"{self.total / _MIB:.0f}" if self.total is not None else "?"
            return f"{self.done / _MIB:.0f}/{total} MiB"
        return f"{self.done}/{self.total if self.total is not None else '?'}"


class TerminalProgress:
    """``Progress`` drawn on stderr once a step has taken ``after`` seconds; steps nest as rich tasks."""

    def __init__(self, after: float = SHOW_AFTER_S) -> None:
        self.after = after
        self.steps: list[_Step] = []
        self.reading: dict[str, _Step] = {}  # byte progress, by label
        self.bar: Any = None  # rich.progress.Progress, created when first shown
        self.since: float | None = None

    # ------------------------------------------------------------------ Progress

    def start(self, total: int | None, what: str) -> None:
        if self.since is None:
            self.since = time.monotonic()
        self.steps.append(_Step(what, total))
        self._draw()

    def advance(self, n: int = 1, current: str | None = None) -> None:
        if not self.steps:
            return
        s = self.steps[-1]
        s.done += n
        if current is not None:
            s.current = current
        self._draw(s)

    def done(self) -> None:
        if not self.steps:
            return
        self._drop(self.steps.pop())
        if not self.steps:
            self.close()

    # ------------------------------------------------------------------ bytes (importers.base.Progress)

    def read_bytes(self, label: str, done: int, total: int) -> None:
        """The importers' byte progress of a big streamed file (an Apple Health export), as a step of its own."""
        if self.since is None:
            self.since = time.monotonic()
        s = self.reading.get(label)
        if s is None:
            s = self.reading[label] = _Step(f"reading {label}", total, unit="bytes")
        s.done = done
        self._draw(s)
        if done >= total:
            self._drop(self.reading.pop(label))

    # ------------------------------------------------------------------ drawing

    def _draw(self, s: _Step | None = None) -> None:
        if self.bar is None:
            if self.since is None or time.monotonic() - self.since < self.after:
                return
            self._open()
            return
        if s is not None and s.task is not None:
            self.bar.update(s.task, completed=s.done, total=s.total, count=s.count(), current=s.current)
        for each in self._all():
            if each.task is None:
                self._add(each)

    def _open(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
        from rich.progress import Progress as Bar
        from rich.table import Column

        self.bar = Bar(
            TextColumn("{task.description}"),
            BarColumn(bar_width=24),
            TextColumn("{task.fields[count]}"),
            TimeElapsedColumn(),
            TextColumn("left"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[current]}", table_column=Column(no_wrap=True, overflow="ellipsis")),
            console=Console(file=sys.stderr, highlight=False, emoji=False, markup=False),
            transient=True,
            expand=False,
        )
        self.bar.start()
        for each in self._all():
            self._add(each)

    def _all(self) -> list[_Step]:
        return [*self.steps, *self.reading.values()]

    def _add(self, s: _Step) -> None:
        s.task = self.bar.add_task(s.what, total=s.total, completed=s.done, count=s.count(), current=s.current)

    def _drop(self, s: _Step) -> None:
        if self.bar is not None and s.task is not None:
            self.bar.update(s.task, completed=s.done, count=s.count())
            self.bar.refresh()  # its last count is seen before it goes
            self.bar.remove_task(s.task)

    def close(self) -> None:
        """Stop drawing (the bar is transient: it leaves the screen); a later step may draw again."""
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
        self.steps.clear()
        self.reading.clear()
        self.since = None


@contextmanager
def progress_for(ctx: Ctx) -> Iterator[Progress]:
    """The ``Progress`` a command hands the library: drawn at a terminal, ``SILENT`` elsewhere; always closed."""
    if not shown(ctx):
        yield SILENT
        return
    try:
        after = float(os.environ.get(_ENV) or SHOW_AFTER_S)
    except ValueError:
        after = SHOW_AFTER_S
    live = TerminalProgress(after)
    try:
        yield live
    finally:
        live.close()
