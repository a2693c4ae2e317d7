"""``sync`` with nothing new, on a 10,000-activity cache, against the fake Garmin and Strava servers.

Run from the repository root:

    .venv/bin/python bench/bench_sync.py              # 10,000 activities, 5 runs per figure (about a minute)
    .venv/bin/python bench/bench_sync.py --activities 2000 --runs 3

Setup (not timed): the fake servers of tests/fakes run in a child process (as
real servers are elsewhere, they do not compete with the client for the
interpreter) and serve N Garmin activities, one every 7 h back from now, and
their Strava copies (uploaded by Garmin, so ``external_id`` names them); one
real ``sync --days 3000`` fills the cache with N activities holding both
payloads.  Then, with the servers serving exactly the same activities:

- skip: ``sync`` within the interval (no request, no write);
- nothing new: ``sync --force`` (what a run after the hour does): both sources
  list their window (--days 7: ~24 activities each), find every payload known
  and unchanged, and write only their state files; the cache is not parsed;
- nothing new, all N listed: the same with --days 3000 (every activity listed
  again: N/20 Garmin pages, N/200 Strava pages), to show where the time goes.

The "of which" rows time a bare interpreter and each client's import in a
fresh process: they are what a cron run pays before any healthcache code.

"in-process" times ``healthcache.cli.main`` in one Python process after a first
run has imported the clients (a long-lived scheduler); "CLI process" times a
fresh ``python -m healthcache`` (interpreter start and imports included: cron).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def serve(count: int, folder: Path) -> None:
    """Child process: start the fake servers, print how to reach them, serve until stdin closes."""
    import trustme

    from tests.fakes import payloads
    from tests.fakes.fixtures import start_plain, start_tls
    from tests.fakes.garmin_server import FakeGarmin
    from tests.fakes.strava_server import FakeStrava

    ca = trustme.CA()
    bundle = folder / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    gserver, sserver = start_plain(), start_tls(ca)
    garmin, strava = FakeGarmin(gserver), FakeStrava(sserver, limit_15=10**9, limit_day=10**9)
    now = datetime.now(UTC)
    for i, start in enumerate(payloads.spaced_starts(count, now, timedelta(hours=7))):
        gid = 15_000_000_000 + i
        garmin.add(payloads.garmin_activity(gid, start), details=False, laps=False)
        strava.add(
            payloads.strava_activity(
                12_000_000_000 + i, start + timedelta(seconds=2), external_id=f"garmin_ping_{gid}"
            ),
            streams=False,
        )
    info = {
        "env": {**garmin.env(), **strava.env(), "REQUESTS_CA_BUNDLE": str(bundle)},
        "garmin_tokens": garmin.token_file(ttl=7 * 86400),
        "strava_tokens": strava.token_file(ttl=7 * 86400),
    }
    print(json.dumps(info), flush=True)
    sys.stdin.read()
    gserver.stop()
    sserver.stop()


def sync_json(args: list[str]) -> dict:
    from healthcache.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = main([*args, "--json"])
    if code != 0:
        raise SystemExit(f"healthcache {' '.join(args)} exited {code}")
    return json.loads(out.getvalue())


def timed(func: Callable[[], object], runs: int) -> tuple[list[float], object]:
    times, last = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        last = func()
        times.append(time.perf_counter() - t0)
    return times, last


def run_python(args: list[str], env: dict[str, str]) -> None:
    subprocess.run([sys.executable, *args], env=env, capture_output=True, check=True)


def run_cli(args: list[str], env: dict[str, str]) -> None:
    done = subprocess.run([sys.executable, "-m", "healthcache", *args], env=env, capture_output=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"healthcache {' '.join(args)} failed: {done.stderr.decode()}")


def bench(count: int, runs: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-sync-"))
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(count), "--folder", str(work)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert child.stdout is not None
        info = json.loads(child.stdout.readline())
        os.environ.update(info["env"])
        from healthcache.config import Paths
        from healthcache.sources import tokens

        paths = Paths(work / "home")
        paths.home.mkdir()
        tokens.write_secret(paths, tokens.garmin_tokens_path(paths), info["garmin_tokens"].encode())
        tokens.write_json_secret(paths, tokens.strava_tokens_path(paths), info["strava_tokens"])
        home = ["--home", str(paths.home)]

        t0 = time.perf_counter()
        sync_json(["sync", "--days", "3000", *home])
        setup = time.perf_counter() - t0
        size_mb = paths.cache.stat().st_size / 1e6
        before = paths.cache.stat()

        def requests(report: object) -> int:
            return sum(s["requests"] for s in report["steps"])  # type: ignore[index]

        rows: list[tuple[str, list[float], str]] = []
        sync_json(["sync", "--force", *home])  # warm-up: imports the clients; trims the state to its steady size
        times, rep = timed(lambda: sync_json(["sync", "--force", *home]), runs)
        assert all(s["status"] == "ok" and not s["saved"] for s in rep["steps"]), rep  # type: ignore[index]
        rows.append(("nothing new, --days 7, in-process", times, str(requests(rep))))
        times, rep = timed(lambda: sync_json(["sync", *home]), runs)
        rows.append(("skip (within the hour), in-process", times, str(requests(rep))))
        env = dict(os.environ)
        times, _ = timed(lambda: run_cli(["sync", "--force", *home], env), runs)
        rows.append(("nothing new, --days 7, CLI process", times, "4"))
        times, _ = timed(lambda: run_cli(["sync", *home], env), runs)
        rows.append(("skip (within the hour), CLI process", times, "0"))
        for module in ("garminconnect", "stravalib"):
            times, _ = timed(lambda m=module: run_python(["-c", f"import {m}"], env), runs)
            rows.append((f"  of which: import {module} (process)", times, ""))
        times, _ = timed(lambda: run_python(["-c", "pass"], env), runs)
        rows.append(("  of which: python start (process)", times, ""))
        times, rep = timed(lambda: sync_json(["sync", "--force", "--days", "3000", *home]), max(1, runs // 2))
        rows.append((f"nothing new, all {count} listed, in-process", times, str(requests(rep))))
        after = paths.cache.stat()
        untouched = (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)
    finally:
        if child.stdin:
            child.stdin.close()
        child.wait(timeout=30)

    print(f"cache: {count} activities (Garmin + Strava payloads each), {size_mb:.1f} MB; setup sync {setup:.1f} s")
    print(f"cache file untouched by every timed run (same inode and mtime): {untouched}")
    print(f"load average while measuring: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print()
    print(f"| {'sync run':<42} | {'median':>9} | {'min':>9} | {'requests':>8} |")
    print(f"|{'-' * 44}|{'-' * 11}|{'-' * 11}|{'-' * 10}|")
    for name, times_, reqs in rows:
        print(
            f"| {name:<42} | {statistics.median(times_) * 1000:>6.0f} ms | {min(times_) * 1000:>6.0f} ms | {reqs:>8} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--activities", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.serve is not None:
        serve(opts.serve, opts.folder)
    else:
        bench(opts.activities, opts.runs)


if __name__ == "__main__":
    main()
