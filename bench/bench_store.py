"""Benchmark of the guarded store on caches of 1k, 10k and 100k realistic activities.

Times, in one run: load, verify, a no-change save (lock + load + compare, no
write), and a save that adds 100 activities (lock, load, guard, validation of
the bytes written, write, fsync, the copy of the new state as the newest backup,
index, prune, compression of the replaced state); each beside bare
``orjson.loads`` + ``orjson.dumps`` of the same file, the floor any JSON store
pays (timed first and again between the add-100 runs).  Also times
``healthcache --help``.

    python bench/bench_store.py [--sizes 1000,10000,100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import msgspec
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from healthcache.codec import gc_paused  # noqa: E402
from healthcache.config import Paths  # noqa: E402
from healthcache.store import Store  # noqa: E402
from healthcache.verify import verify  # noqa: E402
from tests import factories  # noqa: E402


def timed(fn: Callable[[], object], repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t)
    return statistics.median(runs)


def bench_size(n: int, repeat: int) -> dict[str, float]:
    home = Path(tempfile.mkdtemp(prefix=f"hc-bench-{n}-"))
    try:
        store = Store(Paths.resolve(home))
        with store.transaction() as tx:
            tx.save(factories.cache(n))
        data = store.paths.cache.read_bytes()
        extra = [factories.activity(i) for i in range(n, n + 100)]
        row: dict[str, float] = {"n": n, "mb": len(data) / 1e6}

        def bare() -> None:
            # the floor, given the same advantage we take: the collector paused
            with gc_paused():
                orjson.dumps(orjson.loads(data), option=orjson.OPT_INDENT_2)

        row["orjson"] = timed(bare, repeat)
        row["load"] = timed(store.read, repeat)
        row["verify"] = timed(lambda: verify(store), repeat)

        def no_change() -> None:
            with store.transaction() as tx:
                assert not tx.save(tx.cache).changed

        row["nochange"] = timed(no_change, repeat)
        counter = iter(range(10_000))

        def add_100() -> None:
            k = next(counter)
            batch = [
                msgspec.structs.replace(a, id=f"garmin:x{k}-{a.id}", source_ids={"garmin": f"x{k}-{a.id}"})
                for a in extra
            ]
            with store.transaction() as tx:
                assert tx.save(msgspec.structs.replace(tx.cache, activities=[*tx.cache.activities, *batch])).changed

        # Alternated with the floor, so a busy machine weighs on both alike.
        floor, adds = [], []
        for _ in range(repeat):
            floor.append(timed(bare, 1))
            adds.append(timed(add_100, 1))
        row["orjson"] = statistics.median([row["orjson"], *floor])
        row["add100"] = statistics.median(adds)
        return row
    finally:
        shutil.rmtree(home, ignore_errors=True)


def help_time(repeat: int = 10) -> float:
    exe = Path(sys.executable).with_name("healthcache")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "healthcache"]
    subprocess.run([*cmd, "--help"], capture_output=True, check=True)
    return timed(lambda: subprocess.run([*cmd, "--help"], capture_output=True, check=True), repeat)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    rows = [bench_size(int(s), args.repeat) for s in args.sizes.split(",")]
    print(
        f"{'activities':>10} {'MB':>7} {'orjson l+d':>10} {'load':>8} {'verify':>8} {'no-change':>9} {'add 100':>8}   ratios to orjson (load, verify, no-change, add 100)"
    )
    for r in rows:
        o = r["orjson"]
        print(
            f"{int(r['n']):>10} {r['mb']:>7.1f} {o * 1000:>8.0f}ms {r['load'] * 1000:>6.0f}ms {r['verify'] * 1000:>6.0f}ms "
            f"{r['nochange'] * 1000:>7.0f}ms {r['add100'] * 1000:>6.0f}ms   "
            f"{r['load'] / o:.2f}x {r['verify'] / o:.2f}x {r['nochange'] / o:.2f}x {r['add100'] / o:.2f}x"
        )
    print(f"healthcache --help: {help_time() * 1000:.0f} ms (median of 10)")


if __name__ == "__main__":
    main()
