"""Decoding in worker processes, recorded in input order: a parallel import is identical to a serial one.

The parent walks, decides, reads and hashes (the decisions need the digest,
and reading is cheap beside decoding); a worker only runs ``decode.read_data``:
bytes in, a report line and normalised records out.  Every outcome of the run
goes through one queue (``Decoder.later``): a continuation runs at once when
nothing is pending, else it waits its turn behind the decodes queued before
it, so report lines, records and manifest entries come out in exactly the
serial order.  At most ``jobs * 4`` decodes (and ``MAX_IN_FLIGHT_BYTES`` of
their inputs) are outstanding: the parent waits for the oldest before reading
more, so memory stays bounded whatever the number of files.

Small imports pay no pool: files are decoded in the parent until that has
taken ``START_AFTER_S``; only then does the pool start (forkserver: a fresh
process that imports the decoders once and forks the workers from itself,
so no lock, thread or open file of the parent is inherited).  ``jobs=1`` is
the serial path, without any pool.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:  # an import that decodes nothing loads neither multiprocessing nor the decoders
    from concurrent.futures import Future, ProcessPoolExecutor

    from healthcache.importers.decode import Decoded, Task

# Decoding in the parent for this long first: about three times the pool's start-up
# (forkserver start, the decoders imported once, two workers forked), so an import that
# ends sooner never pays it and a long one loses at most this much parallel time.
START_AFTER_S = 0.5
MAX_IN_FLIGHT_BYTES = 256 << 20  # 256 MiB
PER_WORKER = 4  # decodes queued per worker: enough to keep it busy while the parent reads


def usable_cores() -> int:
    """The cores this process may run on (its affinity, as a container or taskset limits it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _quiet_worker() -> None:
    """Workers ignore Ctrl-C: the parent alone decides, stops them and exits 130."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


class _Pending(msgspec.Struct):
    task: Task | None
    then: Callable[[], None] | Callable[[Decoded], None]
    future: Future[Decoded] | None = None


class Decoder:
    """Ordered decoding: inline while cheap or ``jobs == 1``, else in ``jobs`` worker processes."""

    def __init__(
        self, jobs: int, *, start_after_s: float | None = None, on_start: Callable[[int], None] | None = None
    ) -> None:
        self.jobs = max(1, jobs)
        self.start_after_s = START_AFTER_S if start_after_s is None else start_after_s
        self.on_start = on_start
        self.inline_s = 0.0
        self.pooled = 0  # decodes that went to a worker
        self._queue: deque[_Pending] = deque()
        self._pool: ProcessPoolExecutor | None = None
        self._in_flight = 0
        self._bytes = 0

    # ------------------------------------------------------------ the two ways in

    @property
    def busy(self) -> bool:
        """Something is queued: a continuation given now would wait its turn (``later``)."""
        return bool(self._queue)

    def later(self, then: Callable[[], None]) -> None:
        """Run ``then`` in input order: now if nothing is pending, else after what was queued before it."""
        if self._queue:
            self._queue.append(_Pending(task=None, then=then))
        else:
            then()

    def decode(self, task: Task, then: Callable[[Decoded], None], *, poolable: bool = True) -> None:
        """Decode ``task`` and hand the result to ``then``, in input order."""
        from healthcache.importers.decode import read_data

        if not poolable or self.jobs == 1 or (self._pool is None and self.inline_s < self.start_after_s):
            t = time.perf_counter()
            result = read_data(task)
            self.inline_s += time.perf_counter() - t
            self.later(lambda: then(result))
            return
        pool = self._pool or self._start()
        self._queue.append(_Pending(task=task, then=then, future=pool.submit(read_data, task)))
        self.pooled += 1
        if self.pooled == self.jobs and self.on_start is not None:
            self.on_start(self.jobs)  # every worker has been started by now (one per submit while all are busy)
        self._in_flight += 1
        self._bytes += len(task.data)
        self._settle(block=False)
        while self._in_flight >= self.jobs * PER_WORKER or self._bytes > MAX_IN_FLIGHT_BYTES:
            self._settle(block=True, one=True)

    def drain(self) -> None:
        """Wait for every pending decode and run every queued continuation (before a decision needs them)."""
        self._settle(block=True)

    # ------------------------------------------------------------ internals

    def _start(self) -> ProcessPoolExecutor:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["healthcache.importers.decode", "healthcache.importers.fit", "fitdecode"])
        self._pool = ProcessPoolExecutor(self.jobs, mp_context=ctx, initializer=_quiet_worker)
        return self._pool

    def _settle(self, *, block: bool, one: bool = False) -> None:
        """Run queued continuations from the head while their decodes are done (waiting for them if ``block``)."""
        while self._queue:
            head = self._queue[0]
            if head.future is not None:
                if not head.future.done():
                    if not block:
                        return
                    from concurrent.futures import wait

                    wait([head.future])
                result = self._result(head)
                self._in_flight -= 1
                self._bytes -= len(head.task.data) if head.task else 0
                self._queue.popleft()
                head.then(result)  # type: ignore[call-arg]
                if one:
                    block = False  # the bound is met again; settle what is ready and go on
            else:
                self._queue.popleft()
                head.then()  # type: ignore[call-arg]

    def _result(self, head: _Pending) -> Decoded:
        """A worker's result; a worker that died (killed, out of memory) costs its pool, never the file:
        the parent decodes it, and every later one, itself."""
        from concurrent.futures.process import BrokenProcessPool

        from healthcache.importers.decode import read_data

        assert head.future is not None and head.task is not None
        try:
            return head.future.result()
        except BrokenProcessPool:
            self._stop(cancel=True)
            self.jobs = 1
            return read_data(head.task)

    def close(self, *, interrupted: bool = False) -> None:
        """Stop the workers: after a normal end they are idle; on Ctrl-C or an error they are killed."""
        if self._pool is not None:
            self._stop(cancel=interrupted)

    def _stop(self, *, cancel: bool) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        if not cancel:
            pool.shutdown(wait=True)
            return
        procs = list(getattr(pool, "_processes", {}).values())  # 3.14 has terminate_workers(); 3.12-3.13 do not
        pool.shutdown(wait=False, cancel_futures=True)
        for p in procs:
            p.terminate()
        for p in procs:
            p.join()
