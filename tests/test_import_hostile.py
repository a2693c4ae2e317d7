"""Hostile and odd input (issue 10, point 6): bombs cost bounded memory, pipes and odd names are told plainly."""

from __future__ import annotations

import gzip
import json
import os
import socket
import subprocess
import sys
import zipfile
from datetime import UTC, datetime
from pathlib import Path

from healthcache.importers.base import MIB
from tests import fitgen
from tests.conftest import Run

ROOT = Path(__file__).resolve().parents[1]
START = datetime(2024, 5, 1, 6, 30, tzinfo=UTC)

# Peak RSS of a child running one import, in KiB (Linux ru_maxrss).
_MEASURE = """
import resource, sys
from healthcache.cli import main
rc = main(sys.argv[1:])
print("MAXRSS", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, rc)
"""


def _block(random_bytes: int) -> bytes:
    """1 MiB that deflates about 90 times: under the ratio limit, so only the size bound can stop it."""
    return os.urandom(random_bytes) + b"\0" * (MIB - random_bytes)


def test_bombs_peak_under_256_mib(tmp_path: Path) -> None:
    d = tmp_path / "in"
    d.mkdir()
    # 1 GiB of zeros in 1 MB (concatenated gzip members: cheap to build, each far beyond the ratio).
    (d / "zeros.gpx.gz").write_bytes(gzip.compress(b"\0" * (16 * MIB), 9) * 64)
    # 500 MiB at a ratio of ~90: passes any ratio check; only the bound on inflated bytes stops it.
    (d / "ratio.gpx.gz").write_bytes(gzip.compress(_block(6000), 1) * 500)
    # Just under the bound: inflated and read (it is no GPX), within the memory budget.
    (d / "large.gpx.gz").write_bytes(gzip.compress(_block(6000), 1) * 60)
    with zipfile.ZipFile(d / "export.zip", "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        for name, mib in (("activities/huge.gpx", 100), ("activities/large.gpx", 60)):
            with z.open(name, "w", force_zip64=True) as f:
                for _ in range(mib):
                    f.write(_block(6000))
    home = tmp_path / "home"
    proc = subprocess.run(
        [sys.executable, "-c", _MEASURE, "import", "--home", str(home), "--json", str(d)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    last = proc.stdout.strip().splitlines()[-1].split()
    assert last[0] == "MAXRSS", proc.stdout[-2000:] + proc.stderr[-2000:]
    peak_mib, rc = int(last[1]) / 1024, int(last[2])
    assert peak_mib < 256, f"peak RSS {peak_mib:.0f} MiB"
    report = json.loads(proc.stdout[: proc.stdout.rindex("MAXRSS")])
    reasons = {f["path"][len(str(d)) + 1 :]: f.get("reason", "") for f in report["files"]}
    assert rc == 1 and report["counts"]["failed"] == 4, reasons
    assert "gzip bomb" in reasons["zeros.gpx.gz"] and "gzip bomb" in reasons["ratio.gpx.gz"]
    assert "more than one activity file may be" in reasons["export.zip!activities/huge.gpx"]


def test_a_pipe_named_on_the_command_line_fails_and_a_socket_in_a_folder_is_listed(tmp_path: Path, run: Run) -> None:
    fifo = tmp_path / "run.gpx"
    os.mkfifo(fifo)  # what `healthcache import <(zcat run.gpx.gz)` hands over
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "ride.fit").write_bytes(fitgen.run(START))
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(folder / "s.sock"))
    try:
        result = run("import", "-v", str(fifo), str(folder))  # -v lists the skipped socket
    finally:
        sock.close()
    assert result.exit_code == 1, result.output
    assert f"{fifo}: a pipe (FIFO), not a regular file" in result.output
    assert "zcat run.gpx.gz > run.gpx" in result.output
    assert "s.sock: a socket, not a regular file" in result.output
    assert "1 new" in result.output and "nothing new" not in result.output
    alone = run("import", str(fifo))
    assert alone.exit_code == 1 and "nothing new" not in alone.output and "a pipe (FIFO)" in alone.output


def test_a_file_name_that_is_not_utf8_is_imported_and_remembered(tmp_path: Path, run: Run, home: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    raw = os.fsencode(folder) + b"/caf\xe9 run.fit"  # Latin-1 bytes, as an old FAT card or zip tool leaves them
    with open(raw, "wb") as f:
        f.write(fitgen.run(START))
    first = run("import", str(folder))
    assert first.exit_code == 0, first.output
    assert "1 new" in first.output
    second = run("import", "--json", str(folder))
    assert second.exit_code == 0, second.output
    report = json.loads(second.output)
    assert report["counts"]["unopened"] == 1 and report["saved"] is False
    assert report["files"][0]["path"].endswith("caf\\xe9 run.fit")
    manifest = json.loads((home / "tracking" / "sync_state" / "import_fit.json").read_text())
    assert any(p.endswith("caf\\xe9 run.fit") for p in manifest["files"])


def test_a_failed_file_is_tried_again_and_listed_by_status(tmp_path: Path, run: Run) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    good = fitgen.run(START)
    (folder / "good.fit").write_bytes(good)
    bad = folder / "bad.fit"
    bad.write_bytes(good[:14] + b"\x00" * 300)
    first = run("import", str(folder))
    assert first.exit_code == 1 and "bad.fit" in first.output
    status = run("status", "--json")
    assert [f["path"] for f in json.loads(status.output)["import_failures"]] == [str(bad)]
    assert f"{bad}: " in run("status").output
    # Not remembered as done: the unchanged failed file is read again, and fails the run again.
    again = run("import", "--json", str(folder))
    assert again.exit_code == 1
    lines = {Path(f["path"]).name: f for f in json.loads(again.output)["files"]}
    assert lines["bad.fit"]["status"] == "failed" and lines["bad.fit"].get("opened", True)
    assert lines["good.fit"]["status"] == "unchanged"
    # Once the file is good it is imported, and status no longer lists it.
    bad.write_bytes(fitgen.run(datetime(2024, 5, 2, 6, 0, tzinfo=UTC)))
    fixed = run("import", str(folder))
    assert fixed.exit_code == 0, fixed.output
    assert json.loads(run("status", "--json").output)["import_failures"] == []
