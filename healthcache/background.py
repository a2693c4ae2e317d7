"""Work on a thread beside the caller's: for what releases the GIL (hashing, zstd, writing a file).

``in_background(fn)`` starts ``fn`` and returns what waits for it: its value, or what it raised,
raised again in the caller, so an error on the thread is handled where a synchronous call's would be
and never ends as a traceback printed by the thread's unhandled-exception hook.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


def in_background[T](fn: Callable[[], T], name: str = "healthcache-background") -> Callable[[], T]:
    """Run ``fn`` on a daemon thread; call the result to wait for its value (or its exception)."""
    out: list[T] = []
    failed: list[BaseException] = []

    def work() -> None:
        try:
            out.append(fn())
        except BaseException as exc:  # handed to the caller, who waits for it
            failed.append(exc)

    worker = threading.Thread(target=work, name=name, daemon=True)
    worker.start()

    def result() -> T:
        worker.join()
        if failed:
            raise failed[0]
        return out[0]

    return result
