"""Crash safety and concurrency, with real processes.

A saver process is SIGKILLed at random points during saves, 200 times; after
each kill the cache must load and equal the old or the new content, and every
backup (compressed by the saves' prunes) must hash to its name.  Two
processes adding 30 activities each at once must end with all 60.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from healthcache import backup
from healthcache.config import Paths
from healthcache.store import Store
from tests.procs import version

ROOT = Path(__file__).resolve().parents[1]
KILLS = 200


def _spawn(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.procs", *args], stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT
    )


def test_sigkill_during_saves_never_corrupts(tmp_path: Path) -> None:
    home = tmp_path / "home"
    store = Store(Paths.resolve(home))
    rng = random.Random(20261122)
    k = 0  # the version the next saver starts with; the cache holds version k-1 (or nothing)
    outcomes = {"committed": 0, "rolled_back": 0, "between_saves": 0}
    for _ in range(KILLS):
        proc = _spawn("saver", str(home), str(k))
        assert proc.stdout is not None
        seen = [proc.stdout.readline().strip() for _ in range(rng.randint(1, 3))]
        # Jitter, not a timing assumption: it spreads the kill over every step of a save.
        time.sleep(rng.uniform(0, 0.015))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        lines = (proc.stdout.read() or "").splitlines()
        # Everything the child printed, including what we had already read.
        printed = [*seen, *lines]
        begun = [int(x.split()[1]) for x in printed if x.startswith("begin")]
        done = [int(x.split()[1]) for x in printed if x.startswith("done")]
        last = max(begun)
        content = store.read().cache  # a torn file would raise CorruptInput here
        # Every backup (all but the newest compressed by the save's prune) is whole and hashes to its name.
        assert backup.verify_backups(store.paths.backups) == []
        allowed = {last} if done and done[-1] == last else {last, last - 1}
        got = len(content.activities) - 1
        assert got in allowed, (got, allowed)
        assert content.activities == version(got).activities
        if done and done[-1] == last:
            outcomes["between_saves"] += 1
        else:
            outcomes["committed" if got == last else "rolled_back"] += 1
        k = got + 1
        if k >= 60:  # keep the files small so each save stays quick
            k = 0
            for f in [store.paths.cache, store.paths.index, *store.paths.backups.glob("*")]:
                f.unlink(missing_ok=True)
    # the kills landed inside saves, on both sides of the commit point
    assert outcomes["committed"] > 0 and outcomes["rolled_back"] > 0, outcomes


def test_two_processes_adding_at_once_keep_everything(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    a = _spawn("adder", str(home), "a", "30")
    b = _spawn("adder", str(home), "b", "30")
    assert a.wait(timeout=120) == 0
    assert b.wait(timeout=120) == 0
    cache = Store(Paths.resolve(home)).read().cache
    ids = {act.id for act in cache.activities}
    assert len(ids) == 60
    assert {f"garmin:a{i}" for i in range(30)} | {f"garmin:b{i}" for i in range(30)} == ids
