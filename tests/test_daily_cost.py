"""A day with nothing new costs what it must and no more (issue 11 point 1, and its bench).

``bench/bench_daily.py`` times the nothing-new run against its floor; this
test pins the reason it is cheap, without timing anything: such a run never
loads the machinery of the work it does not do.  Each module named here was
loaded by that run before (a sync skipped by the smart skip still built the
sync machinery and the sources' payload readers; an import of unchanged files
loaded the decoders, the worker pool, the merge and the store).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.test_daily import run_json, setup_home

if TYPE_CHECKING:
    from tests.fakes.fixtures import Workspace

pytest_plugins = ["tests.fakes.fixtures"]

# Loaded only by a run that has something to do.
NOT_NEEDED = (
    "healthcache.sources.sync",  # every source inside its interval: decided from its state alone
    "healthcache.sources.garmin.payloads",
    "healthcache.sources.strava.payloads",
    "healthcache.importers.run",  # every watched file as the import state's note says (importers.settled)
    "healthcache.importers.report",
    "healthcache.importers.pool",
    "healthcache.importers.decide",
    "healthcache.importers.decode",  # every watched file unchanged: decided from stat alone
    "healthcache.importers.base",  # ... so the readers' base, detection and archives stay unloaded
    "healthcache.importers.detect",
    "healthcache.importers.archive",
    "zlib",
    "signal",  # the decode workers' Ctrl-C handling
    "healthcache.merge",
    "healthcache.ingest",
    "multiprocessing",
    "concurrent.futures.process",
    "healthcache.export.core",  # the SQLite mirror as its last export left it: not even opened
    "healthcache.export.tables",
    "sqlite3",
    "logging",  # the clients' logs are quieted only when a sync will talk to them
    "healthcache.zone",  # a quiet run shows no time, and decodes nothing that needs a zone
    "zoneinfo",
    "healthcache.store",  # no step reads or saves the cache: no store is made
    "healthcache.codec",  # nothing is saved: the store's writing half stays unloaded
    "healthcache.backup",
    "healthcache.guard",
    "zstandard",
    "zipfile",  # no archive is opened
    "difflib",  # only a wrong name in the configuration is matched to the nearest right one
    "healthcache.normalise",  # [merge] preference names only default sources: no registry of normalisers
    "json",  # nothing is printed as JSON (the run is --quiet)
    "dataclasses",  # the value classes every command builds are msgspec Structs (Paths, atomic.Prepared)
    "secrets",  # only a save renews the cache lineage
    "healthcache.cli.run_cmds",  # the commands log, cron and notify: run has a module of its own
)

PROBE = """
import sys
from healthcache.cli import main
code = main(["run", "--quiet", "--home", sys.argv[1]])
loaded = sorted(sys.modules)
import json
print(json.dumps({"code": code, "modules": loaded}))
"""


def test_a_run_with_nothing_new_loads_only_what_deciding_so_needs(ws: Workspace) -> None:
    setup_home(ws)
    code, first = run_json(ws)
    assert code == 0, first
    # A fresh interpreter, as cron starts one: the second run finds nothing new anywhere.
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(ws.paths.home)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["code"] == 0
    loaded = set(result["modules"])
    assert "healthcache.daily" in loaded and "healthcache.importers.settled" in loaded  # it did run
    assert sorted(m for m in NOT_NEEDED if m in loaded) == []


def test_which_sources_wait_is_the_smart_skip_itself() -> None:
    """``daily.waiting`` asks ``decide_sync`` for each source, in order, with its reason."""
    from datetime import UTC, datetime, timedelta

    from healthcache.daily import waiting
    from healthcache.sources.sync_state import SkipRule, SourceState, decide_sync

    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    stamp = (now - timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    limited = (now + timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    states = {
        "fresh": SourceState(last_success=stamp),
        "never": SourceState(),
        "limited": SourceState(last_success=stamp, rate_limited_until=limited),
    }
    rule = SkipRule()
    due, why = waiting(states, now, rule)
    assert due == ("never",)
    assert why == {s: decide_sync(states[s], now, rule).reason for s in ("fresh", "limited")}
    forced, still = waiting(states, now, rule, force=True)
    assert forced == ("fresh", "never") and list(still) == ["limited"]  # --force never beats a rate limit


def test_a_mirror_changed_by_anyone_else_is_opened_and_brought_back() -> None:
    """``export_skip`` is a hint: it holds only for the very cache last sent and the mirror's files as left."""
    from healthcache.daily import Exported, export_skip

    files: list[tuple[int, int, int] | None] = [(4096, 1_700_000_000_000_000_000, 42), None]
    last = Exported(sha256="a" * 64, files=files, at="2026-11-30T06:00:00Z")
    assert export_skip(last, "a" * 64, files) is not None
    assert export_skip(None, "a" * 64, files) is None  # never exported by a run
    assert export_skip(last, None, files) is None  # the index does not vouch for the cache on disk
    assert export_skip(last, "b" * 64, files) is None  # the cache changed since
    assert export_skip(last, "a" * 64, [(4096, 1_700_000_000_000_000_001, 42), None]) is None  # written since
    assert export_skip(last, "a" * 64, [files[0], (0, 1, 43)]) is None  # a write-ahead log appeared
    assert export_skip(last, "a" * 64, [None, None]) is None  # the mirror is gone


def test_a_mirror_written_or_removed_since_is_opened_by_the_next_run(ws: Workspace) -> None:
    import contextlib
    import sqlite3

    setup_home(ws)
    assert run_json(ws)[0] == 0
    db = ws.paths.home / "mirror.db"

    def export_step() -> dict[str, Any]:
        code, doc = run_json(ws)
        assert code == 0, doc
        return next(s for s in doc["steps"] if s["name"] == f"export {db}")

    assert export_step()["status"] == "skipped"
    with contextlib.closing(sqlite3.connect(db)) as conn, conn:
        total = conn.execute("select count(*) from activities").fetchone()[0]
        conn.execute("create table notes (text)")  # someone else wrote to the mirror
    assert export_step()["status"] == "ok"  # opened and asked, not taken on trust
    db.unlink()
    step = export_step()
    assert step["status"] == "ok" and step["new"] == total  # a removed mirror is written anew
    assert export_step()["status"] == "skipped"  # as that export left it: known up to date again


def test_a_run_reads_its_configuration_once_and_again_only_when_it_changed(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    from healthcache.cli import Ctx
    from healthcache.config import Config

    setup_home(ws)
    loads: list[Path] = []
    real = Config.load.__func__  # type: ignore[attr-defined]

    def counted(cls: type[Config], paths: Any, environ: Any = None) -> Config:
        loads.append(paths.config_file)
        return real(cls, paths, environ)  # type: ignore[no-any-return]

    monkeypatch.setattr(Config, "load", classmethod(counted))
    assert run_json(ws)[0] == 0
    assert len(loads) == 1  # validated before the run, used by the store and the history record
    ctx = Ctx(home=str(ws.paths.home), as_json=False, quiet=True, lock_timeout=0)
    assert ctx.config().export.targets == ("sqlite:mirror.db",) and len(loads) == 2
    ws.paths.config_file.write_text('[export]\ntargets = ["sqlite:other.db"]\n')
    assert ctx.config().export.targets == ("sqlite:other.db",) and len(loads) == 3  # changed: read again
    assert ctx.config() is ctx.config() and len(loads) == 3


def test_a_run_reads_the_daily_state_once(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    """backfill-hr, verify and the export each ask it; one read serves them (what a step remembers
    is kept as it wrote it), and what they decide is what they decided on a read each."""
    from healthcache import daily, state

    setup_home(ws)
    assert run_json(ws)[0] == 0  # everything done once: each skip is now remembered
    reads: list[str] = []
    real = state.load

    def counted(paths: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        reads.append(name)
        return real(paths, name, *args, **kwargs)

    monkeypatch.setattr(state, "load", counted)
    code, doc = run_json(ws)
    assert code == 0
    skipped = {s["name"]: s["reason"] for s in doc["steps"] if s["status"] == "skipped"}
    assert {"backfill-hr", "verify", f"export {ws.paths.home / 'mirror.db'}"} <= set(skipped)
    assert reads.count(daily.STATE) == 1


def test_a_record_without_secrets_is_written_without_compiling_the_secret_patterns() -> None:
    """``history.redact`` compiles its patterns at the first text one of them could match; what it
    returns is what the patterns give, for plain texts, secrets, and letters that fold to ASCII."""
    import re

    from healthcache import history

    def patterns_applied(text: str) -> str:
        text = re.sub(history._URL_USERINFO, r"\g<scheme>***@", text)
        text = re.sub(history._SECRET_QUERY, r"\g<key>=***", text, flags=re.IGNORECASE)
        return re.sub(history._BEARER, r"\g<word>***", text, flags=re.IGNORECASE)

    plain = [
        "synced 42 min ago (every 2 h: an activity in the last 7 days); next after 2026-05-02 07:33 UTC",
        "cache unchanged since the last verify, which passed at 2026-11-30T06:54:02Z",
        "not in [run] steps",
        "",
    ]
    secret = [
        "GET https://me:pw@example.com/x?access_token=abc&x=1 failed",
        "Authorization: Bearer abcdefghijklmnop",
        "sent a TOKEN   12345678901",
        "baſic abcdefgh12345678",  # a long s folds to s: the patterns match it, so it is not judged plain
        "Kelvin: \u212aey=1",
    ]
    history._patterns.cache_clear()
    for text in plain:
        assert history.redact(text) == patterns_applied(text) == text
    assert history._patterns.cache_info().misses == 0
    for text in secret:
        assert history.redact(text) == patterns_applied(text)
    assert [history.redact(t) != t for t in secret] == [True, True, True, True, False]


def test_the_import_step_says_the_same_from_the_note_as_file_by_file(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    from healthcache.importers import run as import_run
    from healthcache.importers import settled

    inbox = setup_home(ws)
    (inbox / "notes.json").write_bytes(b'{"hello": "world"}')  # skipped, then unchanged since it was skipped
    assert run_json(ws)[0] == 0

    def import_step() -> dict[str, Any]:
        code, doc = run_json(ws)
        assert code == 0, doc
        step = next(s for s in doc["steps"] if s["name"] == "import")
        step.pop("seconds")
        return step

    with monkeypatch.context() as m:
        m.setattr(settled, "unchanged_files", lambda *a: None)
        file_by_file = import_step()

    def refuse(*a: Any, **k: Any) -> Any:
        raise AssertionError("the note vouches for every file: no file is judged one by one")

    monkeypatch.setattr(import_run, "run_import", refuse)
    assert (
        import_step()
        == file_by_file
        == {
            "name": "import",
            "status": "ok",
            "reason": None,
            "seen": 3,
            "new": 0,
            "updated": 0,
            "merged": 0,
            "skipped": 3,
            "failed": 0,
            "saved": False,
            "errors": [],
        }
    )


def test_the_default_preference_names_known_sources_only() -> None:
    """What lets the configuration skip the normalisers' registry for a default preference."""
    from healthcache.config import DEFAULT_PREFERENCE, known_sources

    assert set(DEFAULT_PREFERENCE) <= set(known_sources())
