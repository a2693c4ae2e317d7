"""Progress you can see (issue 12 point 5): the library reports every long step through
``healthcache.progress.Progress``; the CLI draws it at a terminal only (a real pty), never
under -q, --json or without a terminal, and a quick run never even imports rich.progress."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from healthcache import rebuild
from healthcache.config import Config
from healthcache.export.core import export
from healthcache.export.sqlite import SqliteMirror
from healthcache.importers.run import run_import
from healthcache.sources.garmin import client as garmin_client
from healthcache.sources.sync import SyncOptions, sync
from healthcache.store import Store
from tests import fitgen
from tests.fakes import payloads

if TYPE_CHECKING:
    from tests.fakes.fixtures import Workspace

pytest_plugins = ["tests.fakes.fixtures"]

START = datetime(2024, 5, 1, 6, 30, tzinfo=UTC)
CLI = [sys.executable, "-m", "healthcache"]


class Recorder:
    """A ``Progress`` that keeps every call, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    def start(self, total: int | None, what: str) -> None:
        self.events.append(("start", total, what))

    def advance(self, n: int = 1, current: str | None = None) -> None:
        self.events.append(("advance", n, current))

    def done(self) -> None:
        self.events.append(("done",))


def _fit_folder(folder: Path, n: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for i in range(n):
        p = folder / f"run{i}.fit"
        p.write_bytes(fitgen.run(START + timedelta(days=i), km=1.0 + i / 10, serial=1000 + i))
        files.append(p)
    return files


@pytest.fixture(scope="module")
def five(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return _fit_folder(tmp_path_factory.mktemp("fit") / "five", 5)


# ------------------------------------------------------------------ the library


def test_import_reports_each_file_of_a_folder(store: Store, five: list[Path]) -> None:
    rec = Recorder()
    report = run_import(store, [five[0].parent], tracker=rec, jobs=1)
    assert report.counts()["imported"] == 5
    assert rec.events[0] == ("start", 5, "importing files")
    advances = [e for e in rec.events if e[0] == "advance"]
    assert [e[1] for e in advances] == [1] * 5
    assert sorted(Path(e[2]).name for e in advances) == [p.name for p in five]
    assert rec.events[-1] == ("done",) and len(rec.events) == 7


def test_import_reports_archive_members_inside_their_file(store: Store, five: list[Path], tmp_path: Path) -> None:
    z = tmp_path / "in" / "batch.zip"
    z.parent.mkdir()
    with zipfile.ZipFile(z, "w") as zf:
        for p in five[:3]:
            zf.write(p, f"acts/{p.name}")
    (tmp_path / "in" / "lone.fit").write_bytes(five[4].read_bytes())
    rec = Recorder()
    run_import(store, [z.parent], tracker=rec, jobs=1)
    kinds = [e[0] if e[0] != "start" else e[1:] for e in rec.events]
    assert kinds == [
        (2, "importing files"),
        (3, "members of batch.zip"),
        "advance",
        "advance",
        "advance",
        "done",
        "advance",  # the zip itself, once its members are recorded
        "advance",  # lone.fit
        "done",
    ]
    names = [e[2] for e in rec.events if e[0] == "advance"]
    assert [n.rsplit("/", 1)[-1] for n in names] == ["run0.fit", "run1.fit", "run2.fit", "batch.zip", "lone.fit"]


def test_sync_reports_each_page_of_each_source(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    """Real garminconnect against the fake Connect: 5 activities in pages of 2 are three pages."""
    now = datetime.now(UTC)
    for i, s in enumerate(payloads.spaced_starts(5, now, timedelta(hours=6))):
        ws.garmin.add(payloads.garmin_activity(700 + i, s))
    ws.login_garmin()
    monkeypatch.setattr(garmin_client, "PAGE_SIZE", 2)
    rec = Recorder()
    result = sync(ws.store(), SyncOptions(sources=("garmin",)), tracker=rec)
    assert result.steps[0].status == "ok", result.as_dict()
    assert rec.events == [
        ("start", None, "garmin: fetching pages"),
        ("advance", 1, "page 1, 2 activities so far"),
        ("advance", 1, "page 2, 4 activities so far"),
        ("advance", 1, "page 3, 5 activities so far"),
        ("done",),
    ]


def test_export_reports_each_batch(store: Store, five: list[Path], tmp_path: Path) -> None:
    run_import(store, [five[0].parent], jobs=1)
    rec = Recorder()
    export(SqliteMirror(tmp_path / "m.db"), Store(store.paths, Config()), batch_size=2, tracker=rec)
    assert rec.events == [
        ("start", 5, "exporting activities"),
        ("advance", 2, "activities 1-2"),
        ("advance", 2, "activities 3-4"),
        ("advance", 1, "activities 5-5"),
        ("done",),
    ]


def test_rebuild_reports_each_activity(store: Store, five: list[Path]) -> None:
    run_import(store, [five[0].parent], jobs=1)
    rec = Recorder()
    result = rebuild.rebuild(store, confirm=None, dry_run=True, tracker=rec)
    ids = [a.id[:12] for a in store.read().cache.activities]
    assert result.plan.rebuilt == 5
    assert rec.events == [("start", 5, "re-deriving activities"), *(("advance", 1, i) for i in ids), ("done",)]


# ------------------------------------------------------------------ the CLI at a terminal, and not


def _pty_run(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run the real CLI with stdin, stdout and stderr on a pty; everything it wrote, and its exit code."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    out = bytearray()
    while True:
        ready, _, _ = select.select([master], [], [], 60)
        if not ready:
            proc.kill()
            break
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed its side
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    return proc.wait(timeout=60), out.decode("utf-8", "replace")


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEALTHCACHE_")}
    env.update(HEALTHCACHE_HOME=str(home), COLUMNS="120", LINES="40", TERM="xterm-256color", **extra)
    env.pop("NO_COLOR", None)
    return env


def test_import_at_a_terminal_shows_live_progress(home: Path, five: list[Path]) -> None:
    code, out = _pty_run(
        [*CLI, "import", "--jobs", "1", str(five[0].parent)], _env(home, HEALTHCACHE_PROGRESS_AFTER="0")
    )
    assert code == 0, out
    assert "importing files" in out
    assert "5/5" in out  # how many of how many
    assert "0:00:0" in out  # elapsed and remaining
    assert any(p.name in out for p in five)  # what is being read
    assert "\x1b[" in out  # drawn live (cursor control), not printed as lines
    assert "5 imported" in out  # the report is still there


@pytest.mark.parametrize(
    ("args", "what"),
    [(["export", "sqlite", "m.db"], "exporting activities"), (["rebuild", "--dry-run"], "re-deriving activities")],
)
def test_export_and_rebuild_at_a_terminal_show_progress(
    home: Path, store: Store, five: list[Path], tmp_path: Path, args: list[str], what: str
) -> None:
    run_import(store, [five[0].parent], jobs=1)
    args = [str(tmp_path / a) if a.endswith(".db") else a for a in args]
    code, out = _pty_run([*CLI, *args], _env(home, HEALTHCACHE_PROGRESS_AFTER="0"))
    assert code == 0, out
    assert what in out and "5/5" in out
    code, out = _pty_run([*CLI, *args, "--json"], _env(home, HEALTHCACHE_PROGRESS_AFTER="0"))
    assert code == 0, out
    assert what not in out and "\x1b[" not in out


@pytest.mark.parametrize("flag", ["-q", "--json"])
def test_no_progress_under_quiet_or_json(home: Path, five: list[Path], flag: str) -> None:
    code, out = _pty_run(
        [*CLI, "import", flag, "--jobs", "1", str(five[0].parent)], _env(home, HEALTHCACHE_PROGRESS_AFTER="0")
    )
    assert code == 0, out
    assert "importing files" not in out and "5/5" not in out
    assert "\x1b[" not in out


def test_no_progress_without_a_terminal(home: Path, five: list[Path]) -> None:
    r = subprocess.run(
        [*CLI, "import", "--jobs", "1", str(five[0].parent)],
        env=_env(home, HEALTHCACHE_PROGRESS_AFTER="0"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert "5 imported" in r.stdout
    assert "importing files" not in r.stdout + r.stderr and "\x1b[" not in r.stdout + r.stderr


def test_quick_runs_never_import_rich_progress(home: Path, five: list[Path]) -> None:
    """--help and an import with nothing new finish before anything is long: no bar object, no rich.progress.
    The same nothing-new import told to draw at once does import it (the check can fail)."""
    folder = str(five[0].parent)
    code, out = _pty_run([*CLI, "import", "--jobs", "1", folder], _env(home))
    assert code == 0, out
    for args, extra in ((["--help"], {}), (["import", "--jobs", "1", folder], {})):
        code, out = _pty_run([sys.executable, "-X", "importtime", "-m", "healthcache", *args], _env(home, **extra))
        assert code == 0, out
        assert "healthcache.cli" in out  # the import log is there
        assert "rich.progress" not in out, args
    code, out = _pty_run(
        [sys.executable, "-X", "importtime", "-m", "healthcache", "import", "--jobs", "1", folder],
        _env(home, HEALTHCACHE_PROGRESS_AFTER="0"),
    )
    assert "nothing new" in out and "rich.progress" in out
