"""Parallel decoding (issue 13 point 1): worker processes give exactly what a serial run gives.

Each comparison imports the same inputs into two fresh workspaces with a fixed
clock, once with ``jobs=1`` (no pool at all) and once with two workers that
start at once (``pool.START_AFTER_S = 0``), and compares the bytes of the
caches, the manifests (but for the lineage, new with every save) and the
report lines.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest

from healthcache.config import Paths
from healthcache.importers import manifest, pool
from healthcache.importers.run import ImportReport, run_import
from healthcache.store import Store
from tests import fitgen

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def fixed_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(manifest, "now_utc", lambda: NOW)


def _import(home: Path, inputs: list[Path], jobs: int) -> tuple[Store, ImportReport]:
    store = Store(Paths(home), clock=lambda: NOW)
    return store, run_import(store, inputs, jobs=jobs)


def _state(store: Store, report: ImportReport) -> dict[str, Any]:
    """Everything an import leaves: the cache's bytes, each manifest (lineage aside), the report's lines."""
    manifests = {}
    for f in sorted(store.paths.tracking.rglob("import_*.json")):
        doc = msgspec.json.decode(f.read_bytes())
        doc.pop("lineage", None)
        manifests[f.name] = doc
    return {
        "cache": store.paths.cache.read_bytes(),
        "manifests": manifests,
        "files": msgspec.to_builtins(report.files),
    }


def _same_both_ways(tmp_path: Path, inputs: list[Path], monkeypatch: pytest.MonkeyPatch) -> ImportReport:
    serial_store, serial = _import(tmp_path / "serial", inputs, jobs=1)
    monkeypatch.setattr(pool, "START_AFTER_S", 0.0)
    parallel_store, parallel = _import(tmp_path / "parallel", inputs, jobs=2)
    assert serial.jobs == 1 and parallel.jobs == 2  # the pool really decoded
    a, b = _state(serial_store, serial), _state(parallel_store, parallel)
    assert a["files"] == b["files"]
    assert a["manifests"] == b["manifests"]
    assert a["cache"] == b["cache"]
    return parallel


@pytest.mark.skipif(not CORPUS.is_dir(), reason="the shared device corpus is not present")
def test_parallel_and_serial_imports_of_the_corpus_are_byte_identical(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    report = _same_both_ways(tmp_path, [CORPUS], monkeypatch)
    counts = report.counts()
    assert counts["imported"] > 50 and counts["failed"] == 2  # errors isolated per file, as serially


def _runs(n: int, day0: datetime) -> list[bytes]:
    return [fitgen.run(day0 + timedelta(days=i, minutes=7 * i), km=3.0 + i % 3) for i in range(n)]


def test_parallel_import_keeps_serial_decisions_on_copies_exports_and_damage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Twins (the second copy is 'already imported' only once the first is recorded), a Garmin
    export with a zip of FIT files inside, a member that is also a loose file, broken files."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    fits = _runs(8, datetime(2024, 3, 1, 6, 0, tzinfo=UTC))
    for i, data in enumerate(fits[:5]):
        (inbox / f"run{i}.fit").write_bytes(data)
    (inbox / "run0-copy.fit").write_bytes(fits[0])  # decided after run0.fit is recorded: a twin
    (inbox / "run4-copy.fit").write_bytes(fits[4])
    (inbox / "broken.fit").write_bytes(fits[1][:300])  # cut off: what was read, or a failure
    (inbox / "garbage.fit").write_bytes(b"\x0e\x10" + os.urandom(200))
    (inbox / "workout.fit").write_bytes(fitgen.workout_file())  # not an activity: skipped
    inner = tmp_path / "UploadedFiles_0-_Part1.zip"
    with zipfile.ZipFile(inner, "w", zipfile.ZIP_DEFLATED) as z:
        for i, data in enumerate(fits[3:]):
            z.writestr(f"runner@example.com_{900 + i}.fit", data)
        z.writestr("runner@example.com_999.fit", b"not a fit file at all")
    with zipfile.ZipFile(inbox / "export.zip", "w") as z:
        z.write(inner, "DI_CONNECT/DI-Connect-Uploaded-Files/UploadedFiles_0-_Part1.zip")
        z.writestr("DI_CONNECT/DI-Connect-Fitness/notes.txt", "hello")
    report = _same_both_ways(tmp_path, [inbox], monkeypatch)
    lines = {Path(f.path).name: f for f in report.files if not f.member}
    twin = lines["run0.fit"]  # sorted after run0-copy.fit: decided once the copy is recorded
    assert twin.status == "unchanged" and "same content as" in (twin.reason or "")
    assert lines["garbage.fit"].status == "failed"
    assert lines["workout.fit"].status == "skipped"
    assert report.counts()["members_imported"] == 5


def test_jobs_1_starts_no_pool_and_an_unchanged_reimport_decodes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for i, data in enumerate(_runs(4, datetime(2024, 5, 1, 7, 0, tzinfo=UTC))):
        (inbox / f"r{i}.fit").write_bytes(data)
    monkeypatch.setattr(pool, "START_AFTER_S", 0.0)
    started: list[int] = []
    store = Store(Paths(tmp_path / "home"), clock=lambda: NOW)
    first = run_import(store, [inbox], jobs=1, on_pool=started.append)
    assert first.jobs == 1 and started == [] and first.counts()["imported"] == 4
    again = run_import(store, [inbox], jobs=2, on_pool=started.append)
    assert again.counts()["unopened"] == 4 and again.jobs == 1 and started == []


def test_a_small_import_decodes_in_the_parent(tmp_path: Path) -> None:
    """Below the start-up threshold no worker is started, whatever --jobs says."""
    (tmp_path / "a.fit").write_bytes(fitgen.run(datetime(2024, 5, 1, 7, 0, tzinfo=UTC)))
    started: list[int] = []
    store = Store(Paths(tmp_path / "home"), clock=lambda: NOW)
    report = run_import(store, [tmp_path / "a.fit"], jobs=4, on_pool=started.append)
    assert report.counts()["imported"] == 1 and report.jobs == 1 and started == []


# --------------------------------------------------------------------------- Ctrl-C


def _descendants(pid: int) -> set[int]:
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {p for p, pp in parents.items() if pp in frontier} - found
        found |= frontier
    return found


def _wait_gone(pids: set[int], timeout_s: float) -> set[int]:
    """The pids still running after waiting up to ``timeout_s`` for each (pidfd: no polling loop)."""
    alive = set()
    for p in pids:
        try:
            fd = os.pidfd_open(p)
        except ProcessLookupError:
            continue
        try:
            if not select.select([fd], [], [], timeout_s)[0]:
                alive.add(p)
        finally:
            os.close(fd)
    return alive


@pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="needs Linux pidfd_open")
def test_ctrl_c_during_a_parallel_import_stops_the_workers_saves_nothing_and_exits_130(
    tmp_path: Path, fits_for_interrupt: Callable[[Path], None]
) -> None:
    inbox = tmp_path / "inbox"
    fits_for_interrupt(inbox)
    home = tmp_path / "home"
    proc = subprocess.Popen(
        [sys.executable, "-m", "healthcache", "import", str(inbox), "--home", str(home), "--jobs", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        cwd=ROOT,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()  # the readiness line: the workers are decoding
        assert "decoding new files in 2 worker processes" in line, line
        workers = _descendants(proc.pid)
        assert workers  # the forkserver and the workers it forked
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert not (home / "tracking" / "unified-cache.json").exists()  # nothing partial is saved
    assert not list((home / "tracking").rglob("import_*.json"))
    assert _wait_gone(workers, 30.0) == set()


@pytest.fixture
def fits_for_interrupt(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Path], None]:
    """Enough distinct FIT files that decoding them takes seconds: one 2-hour 1 Hz-ish recording,
    each copy chained with a small distinct FIT file (a planned workout), so no two are twins."""
    cache = tmp_path_factory.getbasetemp() / "interrupt-fits"
    if not cache.exists():
        tmp = tmp_path_factory.mktemp("interrupt-build")
        start = datetime(2024, 2, 1, 6, 0, tzinfo=UTC)
        samples = fitgen.constant_pace_run(start, 24.0, 300.0, list(range(120, 144)), step_s=2.0)
        leg = fitgen.Leg(sport=fitgen.Sport.RUNNING, start=start, samples=samples)
        base = fitgen.activity([leg])
        for i in range(60):
            (tmp / f"long{i:02d}.fit").write_bytes(base + fitgen.workout_file(name=f"w{i}"))
        tmp.rename(cache)

    def put(inbox: Path) -> None:
        shutil.copytree(cache, inbox)

    return put
