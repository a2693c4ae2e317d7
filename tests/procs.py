"""Child processes for the crash and concurrency tests (run as ``python -m tests.procs``)."""

from __future__ import annotations

import sys
from pathlib import Path

import msgspec

from healthcache.config import Config, Paths, RetentionPolicy
from healthcache.model.records import Cache
from healthcache.store import Store
from tests import factories

# The prelude of a crash test's child script: ``kill_at`` (argv[2]) is the I/O step at which it SIGKILLs
# itself, counting before and after each write, fsync, rename, unlink and link that healthcache makes.
KILL_AT_IO_STEP = """
import os, signal, sys

kill_at = int(sys.argv[2])
steps = 0

def tick():
    global steps
    steps += 1
    if steps == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)

def step(fn):
    def wrapped(*args, **kwargs):
        tick()
        result = fn(*args, **kwargs)
        tick()  # the step took effect; the next has not begun
        return result
    return wrapped

from healthcache import atomic

atomic._write = step(os.write)
atomic._fsync = step(os.fsync)
atomic._replace = step(os.replace)
os.unlink = step(os.unlink)
os.link = step(os.link)
"""


def version(k: int) -> Cache:
    """The k-th content of the crash test: k+1 activities, so each save adds one."""
    return factories.cache(k + 1, seed=7)


def saver(home: str, start: int) -> None:
    """Save versions start, start+1, ... forever, announcing each step on stdout."""
    store = Store(
        Paths.resolve(home), Config(retention=RetentionPolicy(keep_last=3, keep_daily=0, keep_weekly=0, keep_monthly=0))
    )
    k = start
    while True:
        print(f"begin {k}", flush=True)
        with store.transaction(lock_timeout=None) as tx:
            tx.save(version(k))
        print(f"done {k}", flush=True)
        k += 1


def adder(home: str, tag: str, count: int) -> None:
    """Add ``count`` activities one save at a time, competing with another adder."""
    store = Store(Paths.resolve(home))
    base = 100_000 if tag == "a" else 200_000
    for i in range(count):
        with store.transaction(lock_timeout=None) as tx:
            act = factories.activity(base + i)
            act = msgspec.structs.replace(act, id=f"garmin:{tag}{i}", source_ids={"garmin": f"{tag}{i}"})
            tx.save(msgspec.structs.replace(tx.cache, activities=[*tx.cache.activities, act]))
    Path(home, f"done-{tag}").write_text("ok")


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "saver":
        saver(sys.argv[2], int(sys.argv[3]))
    elif mode == "adder":
        adder(sys.argv[2], sys.argv[3], int(sys.argv[4]))
