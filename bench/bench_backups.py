"""Benchmark of compressed backups on a 10k-activity cache (issue 13 point 2).

In one run:

* the codecs on the cache's bytes: zstd (levels 1, 3, 9; the ``zstandard``
  binding) beside gzip and lzma from the standard library: ratio, compress
  and decompress time (healthcache uses zstd level 1: backup.ZSTD_LEVEL);
* a full default retention set (10 last, 7 daily, 4 weekly, 12 monthly),
  written by real saves spread over 14 months, each adding a few activities:
  its disk use as stored (all but the newest compressed) beside the same
  backups plain;
* restoring from a compressed backup beside restoring the same content from a
  plain one: the read (``load_file``) and the whole ``restore --force``.

    python bench/bench_backups.py [--activities 10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import gzip
import lzma
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import zstandard

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_store import timed  # noqa: E402  (the median of repeated runs, as bench_store times)

from healthcache import backup, codec  # noqa: E402
from healthcache.config import Config, Paths, RetentionPolicy  # noqa: E402
from healthcache.restore import restore  # noqa: E402
from healthcache.store import Store, load_file  # noqa: E402
from tests import factories  # noqa: E402


def codecs(data: bytes, repeat: int) -> None:
    rows: list[tuple[str, Callable[[bytes], bytes], Callable[[bytes], bytes]]] = [
        *[
            (
                f"zstd {level}",
                lambda d, level=level: zstandard.ZstdCompressor(level=level, write_checksum=True).compress(d),
                zstandard.ZstdDecompressor().decompress,
            )
            for level in (1, 3, 9)
        ],
        ("gzip 6", lambda d: gzip.compress(d, 6, mtime=0), gzip.decompress),
        ("lzma 0", lambda d: lzma.compress(d, preset=0), lzma.decompress),
    ]
    print(f"codecs on the cache ({len(data) / 1e6:.1f} MB), median of {repeat}:")
    print(f"  {'codec':<8} {'ratio':>6} {'size MB':>8} {'compress':>9} {'decompress':>10}")
    for name, comp, decomp in rows:
        blob = comp(data)
        assert decomp(blob) == data
        c = timed(lambda comp=comp: comp(data), repeat)
        d = timed(lambda decomp=decomp, blob=blob: decomp(blob), repeat)
        print(
            f"  {name:<8} {len(data) / len(blob):>5.1f}x {len(blob) / 1e6:>8.2f} {c * 1000:>7.0f}ms {d * 1000:>8.0f}ms"
        )


def save_times(now: datetime) -> list[datetime]:
    """Saves a default retention set keeps: monthly for 14 months, weekly for 5 weeks, daily for 8 days, 10 today."""
    times = {now - timedelta(days=30 * m) for m in range(1, 15)}
    times |= {now - timedelta(weeks=w, hours=1) for w in range(1, 6)}
    times |= {now - timedelta(days=d, hours=2) for d in range(1, 9)}
    times |= {now - timedelta(minutes=10 * k) for k in range(10)}
    return sorted(times)


def disk(path: Path) -> int:
    return path.stat().st_blocks * 512


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--activities", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    n = args.activities
    home = Path(tempfile.mkdtemp(prefix="hc-bench-backups-"))
    try:
        now = datetime(2026, 11, 30, 12, tzinfo=UTC)
        clock = [now]
        store = Store(Paths.resolve(home), Config(), clock=lambda: clock[0])
        first = factories.cache(n)
        codecs(codec.encode(first), args.repeat)
        times = save_times(now)
        t0 = time.perf_counter()
        for k, when in enumerate(times):
            clock[0] = when
            with store.transaction() as tx:
                base = tx.cache if tx.loaded.exists else first
                more = [factories.activity(n + 3 * k + j) for j in range(3)]
                tx.save(msgspec.structs.replace(base, activities=[*base.activities, *more]))
        spent = time.perf_counter() - t0
        infos = backup.list_backups(store.paths.backups)
        stored = sum(disk(b.path) for b in infos)
        plain = sum(backup.content_size(b.path) or 0 for b in infos)
        print(
            f"\ndefault retention set: {len(times)} saves over 14 months ({spent:.0f} s), "
            f"{len(infos)} backups kept ({sum(b.compressed for b in infos)} compressed)"
        )
        print(f"  plain:      {plain / 1e6:8.1f} MB")
        print(f"  as stored:  {stored / 1e6:8.1f} MB  ({plain / stored:.1f}x smaller)")

        # The same content, compressed and plain, kept outside backups/ (out of the prunes' reach),
        # restored into the same state by a store that keeps every backup.
        target = infos[-1]
        aside = home / "aside"
        aside.mkdir()
        zst = aside / target.name
        shutil.copyfile(target.path, zst)
        twin = aside / target.plain_path.name
        twin.write_bytes(backup.read_bytes(target.path))
        store = Store(store.paths, Config(retention=RetentionPolicy(keep_last=1000)), clock=lambda: clock[0])
        read_zst = timed(lambda: load_file(zst), args.repeat)
        read_plain = timed(lambda: load_file(twin), args.repeat)
        print(
            f"\nrestore from the oldest backup ({backup.content_size(target.path) / 1e6:.1f} MB), median of {args.repeat}:"
        )
        print(f"  read   compressed {read_zst * 1000:6.0f} ms   plain {read_plain * 1000:6.0f} ms")
        full: dict[str, list[float]] = {"compressed": [], "plain": []}
        for _ in range(args.repeat):
            for kind, path in (("compressed", zst), ("plain", twin)):
                back_to = store.read().sha256
                clock[0] += timedelta(seconds=1)
                t = time.perf_counter()
                restore(store, str(path), force=True)
                full[kind].append(time.perf_counter() - t)
                clock[0] += timedelta(seconds=1)
                restore(store, backup.find(store.paths.backups, back_to or "").name, force=True)  # type: ignore[union-attr]
        print(
            f"  restore --force   compressed {statistics.median(full['compressed']) * 1000:6.0f} ms"
            f"   plain {statistics.median(full['plain']) * 1000:6.0f} ms"
        )
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
