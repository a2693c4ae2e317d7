"""The nothing-new daily ``healthcache run`` beside its floor (issue 11 point 1).

The workspace: a cache of ``--activities`` (10k), watched paths holding
``--fit-files`` (3,000) FIT files and an Apple Health export.xml of at least
``--apple-gb`` (1 GB), both imported once, both API sources set up and inside
their interval, and an SQLite mirror exported once; the last import that wrote
has noted the watched listing (``settle``).  Then, alternately, each in a fresh
process:

* the floor: interpreter start plus one ``stat`` of every watched file (the
  least any run must do to know that nothing changed);
* ``healthcache run --quiet``: every step of the daily job.

Both run as an installed copy does: in a venv of their own whose site-packages
holds a ``.pth`` of two plain paths (this checkout and the dependencies of the
running venv), and the run through the console script's entry point
(``healthcache.cli:run``).  Not through the development venv: its editable
install puts a finder on every start that imports ``pathlib``, ``re`` and
``glob``, which would move modules the run needs into the floor (the floor took
56 ms there against 38 ms installed) and flatter the ratio: 3.07x there against
4.79x installed, as medians of 30 pairs in one session.

It prints the medians and their ratio (aim: at most 3x), and beside them the
floor of what every command needs before any healthcache code runs (the same
interpreter importing click and msgspec); checks that the run changed nothing
(cache, backups, mirror); and shows what the rest is spent on (``-X
importtime``: the modules, ``cProfile``: the functions).

The FIT files are tiny valid activities (tests/fitgen.py: a nothing-new run
never opens them); the export is bench_import's generator, streamed.  What is
generated is kept under /tmp, keyed by the parameters, so a rerun measures at
once.  backfill-hr is left out of ``[run] steps``: it would ask the API about
the cache's activities and there is no server here; its skip on a day with
nothing new is the same rule as verify's (a state read and the index's stat).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import statistics
import subprocess
import sys
import sysconfig
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from healthcache.config import Paths  # noqa: E402
from healthcache.sources import tokens  # noqa: E402
from healthcache.sources.sync_state import Seen, update_states_locked  # noqa: E402
from healthcache.store import Store  # noqa: E402
from healthcache.timeutil import utc_iso  # noqa: E402

FLOOR = """
import os, sys
n = 0
for top in sys.argv[1:]:
    if os.path.isfile(top):
        os.stat(top); n += 1
        continue
    stack = [top]
    while stack:
        for e in os.scandir(stack.pop()):
            if e.is_dir(follow_symlinks=False):
                stack.append(e.path)
            else:
                e.stat(follow_symlinks=False); n += 1
print(n)
"""


def _fit(i: int) -> bytes:
    from tests import fitgen

    start = datetime(2019, 1, 1, 6, 0, tzinfo=UTC) + timedelta(hours=7 * i)
    return fitgen.run(start, km=0.05, hr_per_km=(130,), serial=1000 + i)


def _write_fits(folder: Path, count: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    todo = [i for i in range(count) if not (folder / f"a{i:05d}.fit").exists()]
    with ProcessPoolExecutor(2) as pool:
        for i, data in zip(todo, pool.map(_fit, todo, chunksize=50), strict=True):
            tmp = folder / f".a{i:05d}.tmp"
            tmp.write_bytes(data)
            tmp.rename(folder / f"a{i:05d}.fit")


def build(where: Path, activities: int, fit_files: int, apple_gb: float) -> Path:
    """The workspace, generated once per parameters (resumable); returns the home."""
    home = where / "home"
    paths = Paths(home)
    if (where / "ready").exists():
        return home
    home.mkdir(parents=True, exist_ok=True)
    if not paths.cache.exists():
        from tests import factories

        t = time.perf_counter()
        with Store(paths).transaction() as tx:
            tx.save(factories.cache(activities))
        print(f"cache of {activities} activities: {time.perf_counter() - t:.1f} s", flush=True)
    t = time.perf_counter()
    _write_fits(home / "fit", fit_files)
    print(f"{fit_files} FIT files: {time.perf_counter() - t:.1f} s", flush=True)
    export = home / "apple" / "export.xml"
    if not export.exists():
        from bench_import import write_export

        export.parent.mkdir(exist_ok=True)
        t = time.perf_counter()
        tmp = export.with_suffix(".tmp")
        held = write_export(tmp, int(apple_gb * 1e9) + 1, workouts=200)
        tmp.rename(export)
        print(f"Apple Health export: {held['bytes'] / 1e9:.2f} GB in {time.perf_counter() - t:.1f} s", flush=True)
    tokens.write_secret(paths, tokens.garmin_tokens_path(paths), b"{}")  # set up: never read while skipped
    tokens.write_json_secret(paths, tokens.strava_tokens_path(paths), {})
    paths.config_file.write_text(
        '[import]\npaths = ["fit", "apple/export.xml"]\n[export]\ntargets = ["sqlite:mirror.db"]\n'
        '[run]\nsteps = ["sync", "import", "verify", "export"]\n'
    )
    inside_interval(paths)
    t = time.perf_counter()
    first = subprocess.run(_run(home), capture_output=True, text=True, check=False, env=ENV)
    print(f"first run (imports everything, verifies, exports): {time.perf_counter() - t:.1f} s", flush=True)
    if first.returncode != 0:
        sys.exit(f"the first run failed ({first.returncode}):\n{first.stdout}\n{first.stderr}")
    (where / "ready").write_text("")
    return home


def inside_interval(paths: Paths) -> None:
    """Both sources synced a minute ago, with an activity yesterday (the smart skip waits 2 h)."""
    now = datetime.now(UTC)
    seen = {"1": Seen("0" * 24, utc_iso(now - timedelta(days=1)))}
    stamp = utc_iso(now - timedelta(minutes=1), micro=True)

    def synced(cur: object) -> object:
        import msgspec

        return msgspec.structs.replace(cur, last_success=stamp, last_attempt=stamp, seen=seen)  # type: ignore[type-var]

    update_states_locked(paths, {"garmin": synced, "strava": synced})


def settle(home: Path) -> None:
    """The state a day with nothing new starts from: the last import that wrote (a day with a new
    file) noted the watched listing (``importers.settled``).  A workspace generated before those
    notes existed gets its note as such a day would give it: one watched file touched, one run."""
    from healthcache.importers.settled import STATE

    if Paths(home).state_file(STATE).exists():
        return
    touched = home / "fit" / "a00000.fit"
    st = touched.stat()
    os.utime(touched, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    done = subprocess.run(_run(home), capture_output=True, text=True, check=False, env=ENV)
    if done.returncode != 0 or not Paths(home).state_file(STATE).exists():
        sys.exit(f"the settling run failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")


def child_env(where: Path) -> dict[str, str]:
    """Children compile each module once, as an installed package does (its .pyc under /tmp, not the tree)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(where / "pycache")
    return env


ENV: dict[str, str] = dict(os.environ)
PYTHON = sys.executable  # the installed-like venv's interpreter, once ``installed_python`` made it
ENTRY = "import sys; from healthcache.cli import run; sys.argv[0] = 'healthcache'; sys.exit(run())"
DEPENDENCIES = "import click, msgspec"  # what every command imports before any healthcache code runs


def installed_python(where: Path) -> str:
    """A venv where healthcache starts as an installed copy does: no editable-install finder, only a
    ``.pth`` of plain paths (this checkout, and the running venv's site-packages for the dependencies)."""
    env = where / "venv"
    python = env / "bin" / "python"
    if not python.exists():
        base = getattr(sys, "_base_executable", sys.executable)
        subprocess.run([base, "-m", "venv", "--without-pip", str(env)], check=True)
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(purelib, "healthcache-bench.pth").write_text(f"{ROOT}\n{sysconfig.get_path('purelib')}\n")
    return str(python)


def _run(home: Path, *extra: str) -> list[str]:
    return [PYTHON, *extra, "-c", ENTRY, "run", "--quiet", "--home", str(home)]


def _stat(path: Path) -> tuple[int, int, int]:
    st = path.stat()
    return st.st_ino, st.st_mtime_ns, st.st_size


def measure(home: Path, repeat: int) -> tuple[float, float, float, int]:
    paths = Paths(home)
    watched = [str(home / "fit"), str(home / "apple" / "export.xml")]
    before = (_stat(paths.cache), sorted(os.listdir(paths.backups)), _stat(home / "mirror.db"))
    floors, runs, deps, files = [], [], [], 0
    for _ in range(repeat):
        t = time.perf_counter()
        out = subprocess.run([PYTHON, "-c", FLOOR, *watched], capture_output=True, text=True, check=True, env=ENV)
        floors.append(time.perf_counter() - t)
        files = int(out.stdout)
        t = time.perf_counter()
        subprocess.run([PYTHON, "-c", DEPENDENCIES], check=True, env=ENV)
        deps.append(time.perf_counter() - t)
        t = time.perf_counter()
        done = subprocess.run(_run(home), capture_output=True, text=True, check=False, env=ENV)
        runs.append(time.perf_counter() - t)
        if done.returncode != 0 or done.stdout or done.stderr:
            sys.exit(f"the nothing-new run was not quiet ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    after = (_stat(paths.cache), sorted(os.listdir(paths.backups)), _stat(home / "mirror.db"))
    if after != before:
        sys.exit("the nothing-new run changed the cache, a backup or the mirror")
    return statistics.median(floors), statistics.median(runs), statistics.median(deps), files


def _importtime(command: list[str]) -> list[tuple[int, str]]:
    """(self microseconds, module) of every import ``command`` made (``-X importtime``)."""
    done = subprocess.run([*command[:1], "-X", "importtime", *command[1:]], capture_output=True, text=True, env=ENV)
    rows = []
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line and "cumulative" not in line:
            own, _, name = line[len("import time:") :].split("|")
            rows.append((int(own), name.strip()))
    return rows


def _group(name: str, start: set[str], deps: set[str]) -> str:
    if name in start:
        return "start"
    if name in deps:
        return "deps"
    return "own" if name.startswith("healthcache") else "rest"


def import_times(home: Path) -> list[tuple[float, str]]:
    """The run's imports in groups, each module by its own time: those an interpreter loads at start
    (the floor has them too), those ``import click, msgspec`` loads (every command has them),
    healthcache's own modules, and the standard modules the run loads beyond those."""
    start = {name for _, name in _importtime([PYTHON, "-c", "pass"])}
    deps = {name for _, name in _importtime([PYTHON, "-c", DEPENDENCIES])} - start
    groups = {"start": 0, "deps": 0, "own": 0, "rest": 0}
    for own, name in _importtime(_run(home)):
        groups[_group(name, start, deps)] += own
    what = {
        "start": "interpreter start (site, encodings: the floor has them too)",
        "deps": "click and msgspec with what they load (typing, inspect, enum, re ...): every command",
        "own": "healthcache's own modules",
        "rest": "standard modules the run loads beyond those (pathlib, tomllib, hashlib, locale ...)",
    }
    return [(groups[k] / 1e6, what[k]) for k in what]


def profile(home: Path, top: int) -> str:
    """The run in this process under cProfile (the same work as the command, minus interpreter start)."""
    from healthcache.cli import main

    profiler = cProfile.Profile()
    profiler.enable()
    code = main(["run", "--quiet", "--home", str(home)])
    profiler.disable()
    assert code == 0
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(top)
    return text.getvalue()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--activities", type=int, default=10_000)
    ap.add_argument("--fit-files", type=int, default=3_000)
    ap.add_argument("--apple-gb", type=float, default=1.0)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--dir", type=Path, default=Path("/tmp"))
    args = ap.parse_args()
    where = args.dir / f"hc-bench-daily-a{args.activities}-f{args.fit_files}-g{args.apple_gb:g}"
    ENV.update(child_env(where))
    ENV.pop("PYTHONDONTWRITEBYTECODE", None)
    global PYTHON
    PYTHON = installed_python(where)
    home = build(where, args.activities, args.fit_files, args.apple_gb)
    export = home / "apple" / "export.xml"
    print(
        f"workspace: {home} (cache {Paths(home).cache.stat().st_size / 1e6:.1f} MB, export {export.stat().st_size / 1e9:.2f} GB)"
    )
    inside_interval(Paths(home))
    settle(home)
    measure(home, 1)  # warm: the .pyc files written, the files in the page cache
    floor, run, deps, files = measure(home, args.repeat)
    print(f"floor (interpreter start + stat of {files} watched files): {floor * 1000:.0f} ms")
    print(f"healthcache run --quiet, nothing new:                    {run * 1000:.0f} ms")
    print(f"ratio: {run / floor:.2f}x (aim: at most 3x); nothing written but the run's history record")
    print(
        f"interpreter start + import click, msgspec (every command): {deps * 1000:.0f} ms, {deps / floor:.2f}x the floor"
    )
    print("\nimports (-X importtime, one run):")
    for seconds, what in import_times(home):
        print(f"  {seconds * 1000:7.1f} ms  {what}")
    print("\nin-process profile (cumulative):")
    print(profile(home, 25))


if __name__ == "__main__":
    main()
