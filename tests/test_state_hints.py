"""State files are hints: a garbled one costs a redone check, never a blocked day (issue f1).

Real CLI (``healthcache.cli.main``), real FIT files, a real SQLite mirror, the real Garmin client against
the fake server, and a real HTTP webhook for the notification.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from pytest_httpserver import HTTPServer

from healthcache import notices
from healthcache.config import Paths
from healthcache.importers.manifest import Manifests
from tests import fitgen
from tests.fakes import payloads

if TYPE_CHECKING:
    from tests.fakes.fixtures import Workspace

pytest_plugins = ["tests.fakes.fixtures"]

GARBLED = {
    "truncated": b'{"verified":',
    "empty": b"",
    "wrong types": b'{"verified": 5, "exported": []}',
    "zeros": b"\x00" * 4096,  # the blocks a crash can leave
}


def watched_home(ws: Workspace) -> Path:
    """A watched folder of two real FIT files and an SQLite mirror; no source set up."""
    inbox = ws.paths.home / "inbox"
    inbox.mkdir()
    for day in range(2):
        (inbox / f"run{day}.fit").write_bytes(fitgen.run(datetime(2026, 5, 1 + day, 6, 30, tzinfo=UTC)))
    ws.paths.config_file.write_text('[import]\npaths = ["inbox"]\n[export]\ntargets = ["sqlite:mirror.db"]\n')
    return inbox


def run_json(ws: Workspace, *args: str) -> tuple[int, dict[str, Any], str]:
    r = ws.cli("run", "--json", *args)
    return r.code, json.loads(r.out), r.err


def steps_of(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in doc["steps"]}


# --------------------------------------------------------------------------- 1: the daily state


@pytest.mark.parametrize("garbage", list(GARBLED.values()), ids=list(GARBLED))
def test_a_garbled_daily_state_is_a_first_day_and_the_run_heals_it(ws: Workspace, garbage: bytes) -> None:
    watched_home(ws)
    code, first, _ = run_json(ws)
    assert code == 0, first
    daily = ws.paths.state_file("daily-run")
    daily.write_bytes(garbage)
    cache = ws.paths.cache.read_bytes()

    code, doc, err = run_json(ws)
    assert code == 0, doc
    assert err == ""  # nothing alarming: the hint lost is said in the step that redid the work
    steps = steps_of(doc)
    assert steps["verify"]["status"] == "ok" and steps["verify"]["seen"] == 2  # verified in full, as on a first day
    assert steps["verify"]["reason"].startswith("tracking/sync_state/daily-run.json could not be read (")
    assert steps["verify"]["errors"] == []
    assert steps[f"export {ws.paths.home / 'mirror.db'}"]["status"] == "ok"  # the mirror was asked, not skipped
    assert ws.paths.cache.read_bytes() == cache
    healed = json.loads(daily.read_bytes())  # rewritten through the atomic path: readable again
    assert set(healed) == {"verified", "exported"}

    code, doc, err = run_json(ws)  # and the next day is cheap again, without a word
    assert code == 0 and err == ""
    steps = steps_of(doc)
    assert steps["verify"]["status"] == "skipped"
    assert steps[f"export {ws.paths.home / 'mirror.db'}"]["status"] == "skipped"


def test_a_garbled_daily_state_prints_nothing_under_quiet(ws: Workspace) -> None:
    watched_home(ws)
    assert ws.cli("run", "-q").code == 0
    ws.paths.state_file("daily-run").write_bytes(b'{"verified":')
    r = ws.cli("run", "-q")
    assert (r.code, r.out, r.err) == (0, "", "")


# --------------------------------------------------------------------------- 2: the import manifests


MANIFEST_NOTICE = "tracking/sync_state/import_fit.json could not be read ("


@pytest.mark.parametrize("garbage", [b"", b'{"files": {"/x": 1'], ids=["empty", "truncated"])
def test_an_unreadable_manifest_is_read_as_absent_and_rewritten(ws: Workspace, garbage: bytes) -> None:
    inbox = watched_home(ws)
    assert ws.cli("import", str(inbox)).code == 0
    manifest = ws.paths.state_file("import_fit")
    before = json.loads(manifest.read_bytes())
    cache = ws.paths.cache.read_bytes()
    manifest.write_bytes(garbage)

    r = ws.cli("import", "--json", str(inbox))
    assert r.code == 0, r.err
    assert r.err.count(MANIFEST_NOTICE) == 1  # told once, in words, on stderr
    assert "read again" in r.err and "rewritten at the end of this import" in r.err
    assert "error" not in r.err
    report = json.loads(r.out)
    assert report["counts"]["imported"] == 2  # the files it described were read again ...
    assert report["merge"]["new"] == 0 and report["merge"]["unchanged"] == 2  # ... and found in the cache
    assert ws.paths.cache.read_bytes() == cache  # nothing doubled, nothing rewritten
    assert json.loads(manifest.read_bytes())["files"].keys() == before["files"].keys()  # rewritten

    r = ws.cli("import", "--json", str(inbox))  # healed: decided from stat alone, without a word
    assert (r.code, r.err) == (0, "")
    assert json.loads(r.out)["counts"]["unopened"] == 2


def test_a_dry_run_over_an_unreadable_manifest_previews_and_writes_nothing(ws: Workspace) -> None:
    inbox = watched_home(ws)
    assert ws.cli("import", str(inbox)).code == 0
    manifest = ws.paths.state_file("import_fit")
    manifest.write_bytes(b"{")
    cache = ws.paths.cache.read_bytes()

    r = ws.cli("import", "--dry-run", "--json", str(inbox))
    assert r.code == 0, r.err
    assert r.err.count(MANIFEST_NOTICE) == 1 and "a dry run writes nothing" in r.err
    assert json.loads(r.out)["merge"]["new"] == 0
    assert manifest.read_bytes() == b"{" and ws.paths.cache.read_bytes() == cache


def test_an_unreadable_manifest_of_a_format_not_imported_is_rewritten_too(ws: Workspace) -> None:
    inbox = watched_home(ws)
    assert ws.cli("import", str(inbox)).code == 0
    gpx = ws.paths.state_file("import_gpx")
    gpx.write_bytes(b"\x00\x00")

    r = ws.cli("import", str(inbox))
    assert r.code == 0, r.err
    assert r.err.count("tracking/sync_state/import_gpx.json could not be read (") == 1
    assert json.loads(gpx.read_bytes()).get("files", {}) == {}  # readable again, and empty
    assert ws.cli("import", str(inbox)).err == ""


def test_an_unreadable_manifest_does_not_stop_the_daily_run(ws: Workspace) -> None:
    watched_home(ws)
    assert ws.cli("run", "-q").code == 0
    cache = ws.paths.cache.read_bytes()
    ws.paths.state_file("import_fit").write_bytes(b"")

    code, doc, err = run_json(ws)
    assert code == 0, doc
    assert err.count(MANIFEST_NOTICE) == 1
    step = steps_of(doc)["import"]
    assert step["status"] == "ok" and step["seen"] == 2 and step["new"] == 0
    assert ws.paths.cache.read_bytes() == cache
    r = ws.cli("run", "-q")
    assert (r.code, r.out, r.err) == (0, "", "")


def test_the_notice_goes_to_a_listener_when_there_is_one(home: Path) -> None:
    paths = Paths(home)
    paths.sync_state.mkdir(parents=True)
    paths.state_file("import_tcx").write_bytes(b"[")

    with notices.collected() as heard:
        manifests = Manifests(paths)
    assert manifests.unreadable == {"tcx"} and manifests.pending()
    assert len(heard) == 1 and heard[0].startswith("tracking/sync_state/import_tcx.json could not be read (")


# --------------------------------------------------------------------------- 2: a source's sync state


def test_a_garbled_sync_state_syncs_as_a_first_sync_and_is_rewritten(ws: Workspace) -> None:
    now = datetime.now(UTC)
    for i, start in enumerate(payloads.spaced_starts(3, now, timedelta(hours=20))):
        ws.garmin.add(payloads.garmin_activity(14_900_000_000 + i, start))
    ws.login_garmin()
    assert ws.cli("sync", "--source", "garmin").code == 0
    cache = ws.paths.cache.read_bytes()
    garmin = ws.paths.state_file("garmin")
    garmin.write_bytes(b'{"last_success": 12, "seen": ')

    r = ws.cli("sync", "--source", "garmin", "--json")
    assert r.code == 0, r.err
    assert r.err.count("tracking/sync_state/garmin.json could not be read (") == 1
    assert "garmin is synced as on a first sync" in r.err
    assert len(ws.cache().activities) == 3  # fetched again and merged: nothing doubled
    assert json.loads(ws.paths.cache.read_bytes()) == json.loads(cache)
    healed = ws.state("garmin")
    assert healed["last_success"] and len(healed["seen"]) == 3

    r = ws.cli("sync", "--source", "garmin")  # healed: the smart skip decides from it again, silently
    assert (r.code, r.err) == (0, "")


def test_a_garbled_sync_state_does_not_stop_the_daily_run(ws: Workspace) -> None:
    ws.garmin.add(payloads.garmin_activity(14_900_000_001, datetime.now(UTC) - timedelta(hours=5)))
    ws.login_garmin()
    ws.paths.config_file.write_text('[run]\nsteps = ["sync", "verify"]\n')
    assert ws.cli("run", "-q").code == 0
    ws.paths.state_file("garmin").write_bytes(b"")

    code, doc, err = run_json(ws)
    assert code == 0, doc
    assert err.count("tracking/sync_state/garmin.json could not be read (") == 1  # once, though read twice
    assert steps_of(doc)["sync garmin"]["status"] == "ok"
    assert ws.state("garmin")["last_success"]


# --------------------------------------------------------------------------- 3: a corrupt cache under run


def test_a_corrupt_cache_under_run_gives_the_restore_command_not_false_comfort(
    ws: Workspace, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    inbox = watched_home(ws)
    hook = f"json://127.0.0.1:{httpserver.port}/hook"
    text = ws.paths.config_file.read_text()
    ws.paths.config_file.write_text(text + f'[notify]\nurls = ["{hook}"]\non = ["failure"]\n')
    assert ws.cli("run", "-q").code == 0
    (inbox / "run2.fit").write_bytes(fitgen.run(datetime(2026, 5, 3, 6, 30, tzinfo=UTC)))
    assert ws.cli("run", "-q").code == 0  # a second save: the backup of the first state is a good one
    good = ws.paths.cache.read_bytes()
    ws.paths.cache.write_bytes(good[:5000])
    corrupt = ws.paths.cache.read_bytes()
    (inbox / "run0.fit").touch()  # the import step reads the cache too

    verify = ws.cli("verify")
    assert verify.code == 4
    advice = verify.err[verify.err.index("The newest good backup is") :].strip()
    assert f"Restore it with: healthcache restore --home {ws.paths.home} " in advice

    r = ws.cli("run")
    assert r.code == 4
    assert "stands as saved" not in r.out + r.err
    assert r.err.count("Restore it with: healthcache restore") == 1
    assert advice in r.err
    code, doc, _ = run_json(ws)
    assert code == 4
    assert doc["hint"] == advice
    assert ws.paths.cache.read_bytes() == corrupt

    messages = [json.loads(req.get_data())["message"] for req, _ in httpserver.log]
    told = [m for m in messages if "export" in m.splitlines()[0] or "verify" in m.splitlines()[0]]
    assert told
    for message in told:
        assert "What was saved before stays saved" not in message
        assert "stands as saved" not in message
        assert "Restore it with: healthcache restore --home" in message


def test_a_garbled_backfill_state_is_read_as_empty_said_once_and_rewritten(ws: Workspace) -> None:
    """backfill-hr.json notes activities whose source has no heart rate: a hint that spares requests.
    Garbled, it stopped backfill-hr (exit 4) and with it the daily job's step, every day."""
    watched_home(ws)
    assert ws.cli("import", str(ws.paths.home / "inbox")).code == 0
    state_file = ws.paths.state_file("backfill-hr")
    state_file.write_bytes(b'{"no_hr": {"garmin:1": ')
    r = ws.cli("backfill-hr")
    assert r.code == 0, r.err
    assert r.err.count("tracking/sync_state/backfill-hr.json could not be read (") == 1
    assert json.loads(state_file.read_bytes()) is not None  # rewritten, readable again
    again = ws.cli("backfill-hr")
    assert again.code == 0 and "could not be read" not in again.err


# --------------------------------------------------------------------------- what a failed step says it did


def test_a_step_that_failed_after_its_save_is_reported_as_saved(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    """The backup copy of the state just saved could not be written (a full or read-only backups/):
    the cache WAS saved, and the run said "the cache was not rewritten" and "saved": false."""
    import errno
    import os

    from healthcache import atomic

    inbox = watched_home(ws)
    assert ws.cli("run", "-q").code == 0
    (inbox / "run9.fit").write_bytes(fitgen.run(datetime(2026, 5, 9, 6, 30, tzinfo=UTC)))
    real_write = atomic._write

    def write(fd: int, data: bytes | memoryview) -> int:
        if os.path.basename(os.readlink(f"/proc/self/fd/{fd}")).startswith(f"{atomic.TEMP_PREFIX}unified-cache-"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    before = ws.paths.cache.read_bytes()
    monkeypatch.setattr(atomic, "_write", write)
    code, doc, _ = run_json(ws)
    monkeypatch.undo()
    assert code == 1
    assert ws.paths.cache.read_bytes() != before  # saved
    imported = steps_of(doc)["import"]
    assert imported["status"] == "failed" and imported["saved"] is True and doc["saved"] is True
    assert "The cache WAS saved" in doc["hint"]
    r = ws.cli("run")
    assert "the cache was not rewritten" in r.out.splitlines()[-1]  # the next run: nothing new


def test_an_import_failure_says_what_became_of_the_other_files(ws: Workspace) -> None:
    inbox = watched_home(ws)
    assert ws.cli("run", "-q").code == 0
    (inbox / "empty.fit").write_bytes(b"")
    code, doc, _ = run_json(ws)
    assert code == 1
    assert "Nothing else was new; the cache was not rewritten" in doc["hint"]
    assert "imported and saved" not in doc["hint"]
