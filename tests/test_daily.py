"""``healthcache run``, the daily job (issue 11 point 1): real clients on the fake servers, real FIT files,
a real SQLite mirror, through ``healthcache.cli.main``."""

from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from healthcache import codec, history
from healthcache.config import Config, from_document
from healthcache.daily import Verified, backfill_skip, plan, verify_skip
from healthcache.errors import ConfigError
from healthcache.lock import write_lock
from tests import fitgen
from tests.fakes import payloads

if TYPE_CHECKING:
    from tests.fakes.fixtures import Workspace

pytest_plugins = ["tests.fakes.fixtures"]
NOW = datetime.now(UTC)


def setup_home(ws: Workspace, *, steps: str = "", extra: str = "") -> Path:
    """Both sources with a few activities, a watched folder of FIT files, an SQLite target."""
    for i, start in enumerate(payloads.spaced_starts(3, NOW, timedelta(hours=20))):
        ws.garmin.add(payloads.garmin_activity(14_900_000_000 + i, start))
        ws.strava.add(payloads.strava_activity(11_800_000_000 + i, start + timedelta(hours=3)))
    ws.login_garmin()
    ws.login_strava()
    inbox = ws.paths.home / "inbox"
    inbox.mkdir()
    for day in range(2):
        start = datetime(2026, 5, 1 + day, 6, 30, tzinfo=UTC)
        (inbox / f"run{day}.fit").write_bytes(fitgen.run(start))
    ws.paths.config_file.write_text(
        f'[import]\npaths = ["inbox"]\n[export]\ntargets = ["sqlite:mirror.db"]\n{steps}{extra}'
    )
    return inbox


def snapshot(home: Path) -> dict[str, tuple[int, int, int]]:
    """Every file of the workspace but the history (a run is recorded there by design): inode, mtime, size."""
    out = {}
    for root, dirs, files in os.walk(home):
        dirs[:] = [d for d in dirs if d != "history"]
        for name in files:
            if name == ".healthcache.lock":
                continue  # the lock's empty file, made by the first lock taken (dry runs take it too)
            st = (Path(root) / name).stat()
            out[str(Path(root) / name)] = (st.st_ino, st.st_mtime_ns, st.st_size)
    return out


def run_json(ws: Workspace, *args: str) -> tuple[int, dict[str, Any]]:
    r = ws.cli("run", "--json", *args)
    return r.code, json.loads(r.out)


def steps_of(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in doc["steps"]}


def test_the_whole_job_then_a_day_with_nothing_new(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    setup_home(ws)
    code, first = run_json(ws)
    assert code == 0, first
    steps = steps_of(first)
    mirror = f"export {ws.paths.home / 'mirror.db'}"
    assert list(steps) == ["sync garmin", "sync strava", "import", "backfill-hr", "verify", mirror]
    assert steps["sync garmin"]["status"] == "ok" and steps["sync garmin"]["new"] == 3
    assert steps["sync strava"]["seen"] == 3
    assert steps["import"]["seen"] == 2 and steps["import"]["new"] == 2
    assert steps["verify"]["status"] == "ok" and steps["verify"]["seen"] == len(ws.cache().activities)
    assert steps[mirror]["new"] == len(ws.cache().activities) > 0
    assert first["saved"] is True
    with contextlib.closing(sqlite3.connect(ws.paths.home / "mirror.db")) as db:
        assert db.execute("select count(*) from activities").fetchone()[0] == len(ws.cache().activities)
    for s in first["steps"]:
        assert set(s) >= {"status", "reason", "seconds", "seen", "new", "updated", "merged", "skipped", "failed"}

    # The next run, minutes later: nothing is new anywhere.
    before, requests = snapshot(ws.paths.home), ws.requests()
    records = len(history.read(ws.paths, limit=100)[0])

    def no_parse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a run with nothing new parsed the cache")

    monkeypatch.setattr(codec, "decode", no_parse)
    code, second = run_json(ws)
    assert code == 0, second
    steps = steps_of(second)
    assert ws.requests() == requests  # both sources inside their interval: not one request
    assert snapshot(ws.paths.home) == before  # no cache write, no backup, no state, no mirror write
    assert second["saved"] is False
    assert "every 2 h: an activity in the last 7 days" in steps["sync garmin"]["reason"]
    assert steps["import"]["skipped"] == 2 and steps["import"]["new"] == 0
    assert steps["backfill-hr"]["status"] == "skipped"
    assert steps["verify"] == steps["verify"] | {"status": "skipped"}
    assert steps["verify"]["reason"].startswith("cache unchanged since the last verify, which passed at ")
    # the mirror is not even opened: the cache is the one it was last sent, and its file is as that export left it
    assert steps[mirror]["status"] == "skipped"
    assert steps[mirror]["reason"].startswith("cache unchanged since the last export, at ")
    # ... and only the run is recorded, with its steps and their figures.
    runs, _ = history.read(ws.paths, limit=100)
    assert len(runs) == records + 1
    assert runs[0].command == "run" and runs[0].exit_code == 0
    recorded = {s.name: s for s in runs[0].steps}
    assert recorded["import"].figures == {"seen": 2, "new": 0, "updated": 0, "merged": 0, "skipped": 2, "failed": 0}
    assert recorded["verify"].status == "skipped"


def test_human_report_and_quiet(ws: Workspace) -> None:
    setup_home(ws)
    r = ws.cli("run")
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert lines[0].startswith("sync garmin") and " ok " in lines[0] and "new 3" in lines[0]
    assert any(line.startswith("import") and "seen 2  new 2" in line for line in lines)
    assert lines[-1].startswith("run: 6 steps (6 ok) in ") and "the cache was saved" in lines[-1]
    again = ws.cli("run")
    assert "verify" in again.out and "cache unchanged since the last verify" in again.out
    assert "the cache was not rewritten" in again.out.splitlines()[-1]
    quiet = ws.cli("run", "--quiet")
    assert quiet.code == 0 and quiet.out == "" and quiet.err == ""


def test_a_failing_step_stops_nothing_and_undoes_no_save(ws: Workspace) -> None:
    inbox = setup_home(ws)
    good = fitgen.run(datetime(2026, 5, 3, 6, 30, tzinfo=UTC))
    (inbox / "broken.fit").write_bytes(good[:30] + bytes(200) + good[230:])  # a FIT file damaged inside
    ws.garmin.fail("/activitylist-service", 500, {"message": "Internal Server Error"}, times=99)
    code, doc = run_json(ws)
    steps = steps_of(doc)
    assert code == 1, doc
    assert steps["sync garmin"]["status"] == "failed"
    assert steps["sync strava"]["status"] == "ok" and steps["sync strava"]["saved"] is True
    assert steps["import"]["status"] == "failed" and steps["import"]["failed"] == 1
    assert "broken.fit" in steps["import"]["reason"]
    assert steps["import"]["new"] == 2 and steps["import"]["saved"] is True  # the good files were saved
    assert steps["verify"]["status"] == "ok"
    mirror = f"export {ws.paths.home / 'mirror.db'}"
    assert steps[mirror]["status"] == "ok" and steps[mirror]["new"] == len(ws.cache().activities) == 5
    assert "sync failed for garmin" in doc["error"] and "broken.fit" in doc["error"]
    record = history.read(ws.paths, limit=1)[0][0]
    assert record.exit_code == 1
    assert {s.name: s.status for s in record.steps} | {"import": "failed", "sync garmin": "failed"} == {
        s.name: s.status for s in record.steps
    }


def test_the_exit_status_is_the_worst_outcome(ws: Workspace) -> None:
    """A refused save (integrity, 3) outranks a failing source (error, 1); the steps after still run."""
    setup_home(ws)
    ws.garmin.fail("/activitylist-service", 500, {"message": "Internal Server Error"}, times=99)
    ws.paths.baseline.parent.mkdir(parents=True, exist_ok=True)
    ws.paths.baseline.write_text(
        json.dumps(
            {
                "recorded_at": "2026-01-01T00:00:00Z",
                "cache_sha256": None,
                "activities": 400,
                "records": 500,
                "per_source": {"garmin": 400, "fit": 100},
            }
        )
    )
    code, doc = run_json(ws)
    steps = steps_of(doc)
    assert code == 3, doc
    assert steps["sync garmin"]["status"] == "failed"
    assert steps["import"]["status"] == "refused"  # below the baseline: the guard refused the save
    assert steps["sync strava"]["status"] == "failed" and "baseline" in steps["sync strava"]["reason"]
    assert not ws.paths.cache.exists()
    export = steps[f"export {ws.paths.home / 'mirror.db'}"]
    assert export["status"] == "failed" and "no cache" in export["reason"], export  # it ran, after the others
    assert doc["exit_code"] == 3 and history.read(ws.paths, limit=1)[0][0].exit_code == 3


def test_a_busy_lock_fails_the_writing_steps_only(ws: Workspace) -> None:
    setup_home(ws, steps='[run]\nsteps = ["import", "verify", "export"]\n')
    with write_lock(ws.paths.lock, timeout=0):
        code, doc = run_json(ws)
    steps = steps_of(doc)
    assert code == 75, doc
    assert steps["import"]["status"] == "failed" and "lock" in steps["import"]["reason"]
    assert steps["sync garmin"] == steps["sync garmin"] | {"status": "skipped", "reason": "not in [run] steps"}
    assert steps["verify"]["status"] == "ok"  # a read: no lock needed
    assert not ws.paths.cache.exists()


def test_dry_run_writes_nothing(ws: Workspace) -> None:
    setup_home(ws)
    before = snapshot(ws.paths.home)
    code, doc = run_json(ws, "--dry-run")
    assert code == 0, doc
    steps = steps_of(doc)
    assert steps["sync garmin"]["status"] == "dry_run" and steps["import"]["status"] == "dry_run"
    assert steps["backfill-hr"]["reason"].startswith("dry run")
    assert steps["export"]["reason"].startswith("dry run")
    assert snapshot(ws.paths.home) == before


def test_an_edited_cache_is_verified_again(ws: Workspace) -> None:
    """The memory of a passed verify holds only for the very file the index vouches for."""
    setup_home(ws, steps='[run]\nsteps = ["import", "verify"]\n')
    assert ws.cli("run").code == 0
    assert steps_of(run_json(ws)[1])["verify"]["status"] == "skipped"
    os.utime(ws.paths.cache, ns=(1, 1))  # touched outside healthcache: the index no longer describes it
    assert steps_of(run_json(ws)[1])["verify"]["status"] == "ok"


def test_watched_paths_expand_home_and_tilde(ws: Workspace, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    user = tmp_path / "user"
    (user / "fit").mkdir(parents=True)
    (user / "fit" / "a.fit").write_bytes(fitgen.run(datetime(2026, 5, 1, 6, 30, tzinfo=UTC)))
    monkeypatch.setenv("HOME", str(user))
    ws.paths.config_file.write_text('[import]\npaths = ["~/fit", "missing"]\n[run]\nsteps = ["import"]\n')
    code, doc = run_json(ws)
    step = steps_of(doc)["import"]
    assert step["new"] == 1  # ~/fit found
    assert code == 1 and "missing" in step["reason"]  # relative to the home, and named when absent


# --------------------------------------------------------------------------- the pure parts


def test_plan_table() -> None:
    both = {"garmin": True, "strava": True}
    full = from_document({"import": {"paths": ["x"]}, "export": {"targets": ["sqlite:m.db"]}}, "f", {})
    assert [(p.name, p.skip) for p in plan(full, both)] == [
        ("sync garmin", None),
        ("sync strava", None),
        ("import", None),
        ("backfill-hr", None),
        ("verify", None),
        ("export", None),
    ]
    bare = {p.name: p.skip for p in plan(Config(), {"garmin": False, "strava": True})}
    assert bare == {
        "sync garmin": "not set up; run healthcache auth garmin",
        "sync strava": None,
        "import": "no [import] paths",
        "backfill-hr": None,
        "verify": None,
        "export": "no [export] targets",
    }
    narrowed = from_document({"run": {"steps": ["verify"]}, "import": {"paths": ["x"]}}, "f", {})
    skips = {p.name: p.skip for p in plan(narrowed, both)}
    assert skips["verify"] is None and skips["import"] == "not in [run] steps"
    assert skips["sync garmin"] == "not in [run] steps"
    dry = {p.name: p.skip for p in plan(full, {"garmin": False, "strava": False}, dry_run=True)}
    assert dry["backfill-hr"] == "no source is set up" and dry["export"].startswith("dry run")


def test_skip_rules_need_the_very_same_file() -> None:
    passed = Verified(sha256="a" * 64, baseline=None, at="2026-05-01T06:15:00Z")
    assert verify_skip(passed, "a" * 64, None) is not None
    assert verify_skip(passed, None, None) is None  # the index does not vouch for the file
    assert verify_skip(passed, "b" * 64, None) is None  # another file
    assert verify_skip(passed, "a" * 64, "c" * 64) is None  # a new baseline
    assert verify_skip(None, "a" * 64, None) is None
    assert backfill_skip("a" * 64, "a" * 64) is not None
    assert backfill_skip("a" * 64, "b" * 64) is None and backfill_skip(None, "a" * 64) is None


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"run": {"steps": ["synk"]}}, '[run] steps names an unknown step "synk" (did you mean "sync"?)'),
        ({"run": {"steps": ["sync", "sync"]}}, '[run] steps names "sync" more than once'),
        ({"run": {"backfill_limit": 0}}, "[run] backfill_limit must be an integer of at least 1, got 0"),
        ({"import": {"paths": "~/fit"}}, '[import] paths must be a list of files or folders, e.g. ["~/fit-files"]'),
        ({"import": {"path": ["x"]}}, '[import] unknown key "path" (did you mean "paths"?)'),
    ],
)
def test_run_settings_are_checked_by_name(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        from_document(doc, "healthcache.toml", {})
    assert message in str(exc.value)


def test_readme_shows_the_report_run_prints() -> None:
    """The README's example is what ``render_run`` prints for those steps (the format is kept true)."""
    from healthcache.cli.daily_cmds import render_run
    from healthcache.daily import DailyResult
    from healthcache.daily import StepOutcome as S

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- report:run -->\n```text\n\$ healthcache run\n(.*?)```", readme, re.S)
    assert block is not None
    example = DailyResult(
        steps=[
            S(
                "sync garmin",
                "skipped",
                "synced 42 min ago (every 2 h: an activity in the last 7 days); "
                "next after 2026-05-02T07:33:10Z; no request sent; --force to sync now",
            ),
            S("sync strava", seconds=1.84, seen=2, new=1, merged=1, skipped=1, saved=True),
            S("import", seconds=0.21, seen=3012, skipped=3012),
            S("backfill-hr", seconds=0.95, seen=1, updated=1, saved=True),
            S("verify", seconds=2.37, seen=10412),
            S("export /home/me/training/mirror.db", seconds=0.31, seen=10412, updated=1, skipped=10411),
        ],
        seconds=5.71,
    )
    from healthcache.zone import localise

    assert block.group(1) == localise(render_run(example), UTC) + "\n"  # as `run` shows it, in UTC


def test_a_source_synced_before_whose_login_is_gone_fails_with_the_auth_command(ws: Workspace) -> None:
    """A job under cron that does not see the credentials folder (or a login deleted) skipped the source
    as "not set up" and exited 0, every day: a source with a sync behind it is part of the job, and a
    login gone is an auth failure (exit 1, the `auth` command, the history's auth status)."""
    import msgspec

    from healthcache.sources.sync_state import update_states_locked
    from healthcache.timeutil import utc_iso

    setup_home(ws)
    assert ws.cli("run", "-q").code == 0  # both synced once
    from healthcache.sources import tokens

    tokens.strava_tokens_path(ws.paths).unlink()  # the login gone (or a folder the job does not see)
    stamp = utc_iso(datetime.now(UTC) - timedelta(days=3))
    update_states_locked(
        ws.paths, {"strava": lambda cur: msgspec.structs.replace(cur, last_success=stamp, last_attempt=stamp)}
    )
    r = ws.cli("run", "--json")
    assert r.code == 1, r.out
    steps = {s["name"]: s for s in json.loads(r.out)["steps"]}
    assert steps["sync strava"]["status"] == "failed"
    assert "synced before" in steps["sync strava"]["reason"]
    assert "healthcache auth strava" in json.loads(r.out)["hint"]
    assert steps["sync garmin"]["status"] in ("ok", "skipped")  # still logged in: as usual
    records, _ = history.read(ws.paths, limit=1)
    assert [s.status for s in records[0].steps if s.name == "sync strava"] == ["auth"]
