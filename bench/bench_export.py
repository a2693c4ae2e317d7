"""Benchmark the SQL mirror on a large cache, SQLite and PostgreSQL side by side.

    .venv/bin/python bench/bench_export.py [--activities 100000] [--changed 1000] [--batch-size 1000]

Builds a realistic cache (raw Garmin payloads, a Strava twin on every third
activity, 7 per-km HR splits) through the guarded store, then for each engine
times: the first export into an empty database; a re-export with nothing
changed (run in-process and as the real CLI); a re-export after --changed
activities changed; and, on the same data, the naive approach: UPSERT every
row on every run (the same batched COPY + ON CONFLICT path, but sending all
activities, as a mirror that does not compare content hashes must).

PostgreSQL is $HEALTHCACHE_TEST_PG_URL, else a throwaway cluster started with
.ci/start-postgres.sh (stopped at the end).
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from healthcache.config import Config  # noqa: E402
from healthcache.export.core import ExportReport, export  # noqa: E402
from healthcache.store import Store  # noqa: E402
from tests.export_fixtures import make_activity, make_home, replace, save_cache, start_cluster, stop_cluster, url_for_db  # noqa: E402


def timed(fn: Callable[[], ExportReport]) -> tuple[float, ExportReport]:
    start = time.perf_counter()
    report = fn()
    return time.perf_counter() - start, report


def cli_seconds(home: Path, args: list[str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(
        [str(REPO / ".venv" / "bin" / "healthcache"), "export", *args, "--home", str(home), "--quiet"],
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"CLI export failed: {proc.stderr}")
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--activities", type=int, default=100_000)
    ap.add_argument("--changed", type=int, default=1_000)
    ap.add_argument("--batch-size", type=int, default=1000)
    ap.add_argument("--engines", default="sqlite,postgres")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of the changed re-export (median reported)")
    opts = ap.parse_args()
    engines = opts.engines.split(",")

    folder = None
    pg_admin = os.environ.get("HEALTHCACHE_TEST_PG_URL")
    if "postgres" in engines and not pg_admin:
        pg_admin, folder = start_cluster()
    work = Path(tempfile.mkdtemp(prefix="hc-bench-export-"))
    dbname = "hc_bench_" + secrets.token_hex(4)
    try:
        import psycopg

        if "postgres" in engines:
            assert pg_admin is not None
            with psycopg.connect(pg_admin, autocommit=True) as admin:
                admin.execute(f'CREATE DATABASE "{dbname}"')
            pg_url = url_for_db(pg_admin, dbname)
        paths = make_home(work / "home")
        t0 = time.perf_counter()
        acts = [make_activity(i, splits=7) for i in range(opts.activities)]
        t1 = time.perf_counter()
        save_cache(paths, acts)
        t2 = time.perf_counter()
        size_mb = paths.cache.stat().st_size / 1e6
        print(
            f"cache: {opts.activities} activities, {size_mb:.0f} MB (generated {t1 - t0:.1f} s, saved {t2 - t1:.1f} s)"
        )
        store = Store(paths, Config())

        def mirror(engine: str):  # type: ignore[no-untyped-def]
            if engine == "sqlite":
                from healthcache.export.sqlite import SqliteMirror

                return SqliteMirror(work / "mirror.db")
            from healthcache.export.postgres import PostgresMirror

            return PostgresMirror(pg_url)

        def target_args(engine: str) -> list[str]:
            return ["sqlite", str(work / "mirror.db")] if engine == "sqlite" else ["postgres", pg_url]

        results: dict[str, dict[str, str]] = {e: {} for e in engines}

        def run(engine: str, label: str, **kw: object) -> ExportReport:
            gc.collect()
            secs, rep = timed(lambda: export(mirror(engine), store, batch_size=opts.batch_size, **kw))  # type: ignore[arg-type]
            sent = sum(rep.sent.values())
            results[engine][label] = f"{secs:7.2f} s ({rep.changed} act, {sent} rows)"
            print(f"  {engine:8} {label:28} {secs:7.2f} s  {rep.changed:6} changed  {sent:8} rows sent")
            return rep

        print("first export into an empty database:")
        for e in engines:
            run(e, "first export")
        print("re-export, nothing changed:")
        for e in engines:
            run(e, "re-export, 0 changed")
            secs = min(cli_seconds(paths.home, target_args(e)) for _ in range(3))
            results[e]["same, as CLI (wall)"] = f"{secs:7.2f} s"
            print(f"  {e:8} {'same, CLI wall clock':28} {secs:7.2f} s")
        rng = random.Random(7)
        label = f"re-export, {opts.changed} changed"
        times: dict[str, list[float]] = {e: [] for e in engines}
        print(f"{label} (x{opts.rounds}, a different {opts.changed} each round):")
        for _ in range(opts.rounds):
            changed = set(rng.sample(range(len(acts)), opts.changed))
            acts = [
                replace(a, name=f"edited {rng.random():.6f}", avg_hr=(a.avg_hr or 120) + 1) if i in changed else a
                for i, a in enumerate(acts)
            ]
            save_cache(paths, acts)
            for e in engines:
                gc.collect()
                secs, rep = timed(lambda e=e: export(mirror(e), store, batch_size=opts.batch_size))
                assert rep.updated == opts.changed, rep.updated
                times[e].append(secs)
                print(f"  {e:8} {label:28} {secs:7.2f} s  {sum(rep.sent.values()):8} rows sent")
        for e in engines:
            ts = sorted(times[e])
            results[e][label] = f"{statistics.median(ts):7.2f} s median (min {ts[0]:.2f})"
            results[e]["_changed_median"] = str(statistics.median(ts))
        print("naive: UPSERT every row (same data, nothing changed since):")
        for e in engines:
            run(e, "naive UPSERT all", resend_all=True)
        for e in engines:
            naive = float(results[e]["naive UPSERT all"].split()[0])
            ratio = naive / float(results[e].pop("_changed_median"))
            results[e]["naive / incremental"] = f"{ratio:.0f}x"

        labels = list(next(iter(results.values())).keys())
        print()
        print(f"load average at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
        print("| step | " + " | ".join(engines) + " |")
        print("|---|" + "---|" * len(engines))
        for label in labels:
            print(f"| {label} | " + " | ".join(results[e].get(label, "").strip() for e in engines) + " |")
    finally:
        if "postgres" in engines and pg_admin:
            import psycopg

            with psycopg.connect(pg_admin, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        if folder:
            stop_cluster(folder)
        subprocess.run(["rm", "-rf", str(work)], check=False)


if __name__ == "__main__":
    main()
