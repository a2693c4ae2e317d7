"""One exit-code decision from typed outcomes, and failures told plainly (issue 10 point 4)."""

from __future__ import annotations

import errno
import functools
import json
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest

from healthcache import guard
from healthcache.backup import list_backups
from healthcache.errors import EXIT_CODES
from healthcache.export import core as export_core
from healthcache.lock import write_lock
from healthcache.model.records import Cache
from healthcache.outcome import Failure, Outcome, exit_status, failure_of
from healthcache.store import Store
from tests import factories, fitgen
from tests.conftest import Run

ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- the one decision


@pytest.mark.parametrize(
    ("outcomes", "code"),
    [
        ([], 0),
        ([Outcome.OK], 0),
        ([Outcome.ERROR], 1),
        ([Outcome.ERROR, Outcome.LOCK_BUSY], 75),
        ([Outcome.LOCK_BUSY, Outcome.INTEGRITY, Outcome.ERROR], 3),
        ([Outcome.INTEGRITY, Outcome.CORRUPT], 4),
        ([Failure(Outcome.CORRUPT, "x"), Outcome.INTERRUPTED], 130),
        ([Outcome.USAGE, Outcome.ERROR], 2),
    ],
)
def test_exit_status_takes_the_most_telling_outcome(outcomes: list[Outcome | Failure], code: int) -> None:
    assert exit_status(outcomes) == code


def test_every_outcome_is_a_documented_code() -> None:
    assert {int(o) for o in Outcome} == set(EXIT_CODES)


def test_no_command_decides_its_own_exit_status() -> None:
    """Only ``main`` turns outcomes into a status: no command raises or returns a code."""
    for path in (ROOT / "healthcache" / "cli").glob("*.py"):
        text = path.read_text()
        assert "raise Exit(" not in text and "sys.exit(" not in text.replace("sys.exit(main())", ""), path.name


# --------------------------------------------------------------------------- --json failures


def _grown(store: Store, seeded: Callable[[int], Cache]) -> str:
    """Five activities saved, then thirty: the name of the five-activity backup."""
    seeded(5)
    with store.transaction() as tx:
        tx.save(factories.cache(30))
    return list_backups(store.paths.backups)[-1].name


def test_json_failure_is_one_object_with_every_violation(
    store: Store, seeded: Callable[[int], Cache], run: Run
) -> None:
    old = _grown(store, seeded)
    before = store.paths.cache.read_bytes()
    human = run("restore", old)
    assert human.exit_code == 3
    assert "use --json for the full list" in human.stderr and human.stdout == ""
    result = run("restore", old, "--json")
    assert result.exit_code == 3
    data = json.loads(result.stdout)  # exactly one JSON document, nothing else
    assert data["exit_code"] == 3 and data["error"].startswith("refused: the save would lose data")
    current = store.read().cache
    with store.transaction() as tx:
        expected = guard.check(tx.cache, factories.cache(5), None)
    assert len(data["violations"]) >= len(expected) > 20
    assert {v.subject for v in expected} <= {v["subject"] for v in data["violations"]}
    assert {"kind", "subject", "detail"} <= set(data["violations"][0])
    assert store.paths.cache.read_bytes() == before and len(current.activities) == 30


def test_json_usage_error_is_one_object(run: Run) -> None:
    result = run("verify", "--json", "--no-such-flag")
    assert result.exit_code == 2
    data = json.loads(result.stdout)
    assert data["exit_code"] == 2 and "no-such-flag" in data["error"]


def test_json_command_failure_keeps_its_report(store: Store, seeded: Callable[[int], Cache], run: Run) -> None:
    seeded(3)
    store.paths.cache.write_bytes(store.paths.cache.read_bytes()[:-40])  # truncated
    result = run("verify", "--json")
    assert result.exit_code == 4
    data = json.loads(result.stdout)
    assert data["exit_code"] == 4 and data["ok"] is False
    assert data["problems"][0]["kind"] == "corrupt" and "healthcache restore" in data["hint"]


# --------------------------------------------------------------------------- export lock keeps its 75


def test_configured_export_lock_timeout_exits_75(store: Store, run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    store.paths.config_file.write_text('[export]\ntargets = ["sqlite:mirror.db"]\n')
    inbox = store.paths.home.parent / "inbox"
    inbox.mkdir()
    (inbox / "a.fit").write_bytes(fitgen.run(datetime(2026, 5, 1, 6, 30, tzinfo=UTC)))
    assert run("import", str(inbox)).exit_code == 0
    (inbox / "b.fit").write_bytes(fitgen.run(datetime(2026, 5, 2, 6, 30, tzinfo=UTC)))
    # A real SQLite write lock held elsewhere, and a short wait instead of ten minutes.
    monkeypatch.setattr(
        export_core,
        "run_configured_exports",
        functools.partial(export_core.run_configured_exports, lock_wait=0.2),
    )
    holder = sqlite3.connect(store.paths.home / "mirror.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        result = run("import", str(inbox))
    finally:
        holder.rollback()
        holder.close()
    assert result.exit_code == 75, result.output
    assert "export" in result.stderr and "The save stands" in result.stderr
    assert len(store.read().cache.activities) == 2  # the save stands


# --------------------------------------------------------------------------- Ctrl-C

DELETE = [sys.executable, "-m", "healthcache", "delete", "garmin:9000000000", "--reason", "x"]


def test_ctrl_c_while_waiting_for_the_lock_exits_130(store: Store, seeded: Callable[[int], Cache]) -> None:
    seeded(3)
    before = store.paths.cache.read_bytes()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with write_lock(store.paths.lock):
        proc = subprocess.Popen(
            [*DELETE, "--home", str(store.paths.home), "--lock-timeout", "120"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )
        try:
            assert proc.stderr is not None
            line = proc.stderr.readline()  # the readiness line: it is waiting on our lock
            assert "waiting for the write lock" in line and str(os.getpid()) in line
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert store.paths.cache.read_bytes() == before


# --------------------------------------------------------------------------- sync never succeeds silently


def test_sync_with_no_source_set_up_exits_1_with_the_next_step(run: Run, store: Store) -> None:
    result = run("sync")
    assert result.exit_code == 1, result.output
    assert "no source is set up" in result.stderr
    assert "healthcache auth garmin" in result.stderr and "healthcache auth strava" in result.stderr
    quiet = run("sync", "--quiet")
    assert quiet.exit_code == 1 and "no source is set up" in quiet.stderr
    data = json.loads(run("sync", "--json").stdout)
    assert data["exit_code"] == 1 and data["ok"] is False and "auth garmin" in data["hint"]


# --------------------------------------------------------------------------- verify and a corrupt cache


def test_verify_on_a_corrupt_cache_names_the_exact_restore_command(
    store: Store, seeded: Callable[[int], Cache], run: Run
) -> None:
    seeded(4)
    with store.transaction() as tx:
        tx.save(factories.cache(6))
    store.paths.cache.write_bytes(b'{"schema_version": 1, "activities": [')
    result = run("verify")
    assert result.exit_code == 4
    command = next(line for line in result.stderr.splitlines() if line.startswith("Restore it with: "))
    argv = command.removeprefix("Restore it with: healthcache ").split()
    assert argv[:3] == ["restore", "--home", str(store.paths.home)]
    restored = run(*argv)  # the command as printed works
    assert restored.exit_code == 0, restored.output
    assert run("verify").exit_code == 0
    assert len(store.read().cache.activities) == 6


COMMANDS_READING_THE_CACHE = [
    ("verify",),
    ("status",),
    ("dupes",),
    ("delete", "garmin:1", "--reason", "x"),
    ("link", "garmin:1", "strava:2"),
    ("backfill-hr",),
]


@pytest.mark.parametrize("argv", COMMANDS_READING_THE_CACHE, ids=lambda a: a[0])
def test_a_cache_path_that_is_a_folder_is_corrupt_input(store: Store, run: Run, argv: tuple[str, ...]) -> None:
    store.paths.cache.mkdir(parents=True)
    result = run(*argv)
    assert result.exit_code == 4, result.output
    assert "is a folder" in result.stderr and "Traceback" not in result.output
    assert store.paths.cache.is_dir() and list(store.paths.cache.iterdir()) == []


# --------------------------------------------------------------------------- restore needs --force to drop


def test_restore_that_undoes_an_unlink_needs_force(store: Store, run: Run) -> None:
    two = factories.cache(1)
    act = two.activities[0]
    strava_payload = {"id": 42, "name": "copy"}
    merged = msgspec.structs.replace(
        act,
        source_ids={**act.source_ids, "strava": "42"},
        raw={**act.raw, "strava": strava_payload},
        aliases=["strava:42"],
    )
    split_off = msgspec.structs.replace(
        act, id="strava:42", source="strava", source_ids={"strava": "42"}, raw={"strava": strava_payload}, aliases=[]
    )
    with store.transaction() as tx:
        tx.save(msgspec.structs.replace(two, activities=[merged]))
    with store.transaction() as tx:  # what an unlink leaves: the strava record as its own activity
        tx.save(msgspec.structs.replace(two, activities=[act, split_off]))
    after_unlink = store.paths.cache.read_bytes()
    refused = run("restore", "--latest")
    assert refused.exit_code == 3, refused.output
    assert "strava:42" in refused.stderr and "--force" in refused.stderr
    assert store.paths.cache.read_bytes() == after_unlink
    dry = json.loads(run("restore", "--latest", "--dry-run", "--json").stdout)
    assert dry["dropped"] == ["strava:42"] and any(v.startswith("dropped_activity") for v in dry["violations"])
    forced = run("restore", "--latest", "--force")
    assert forced.exit_code == 0, forced.output
    assert [a.id for a in store.read().cache.activities] == [act.id]


@pytest.mark.parametrize(
    ("exc", "said", "not_said"),
    [
        (
            PermissionError(errno.EACCES, "Permission denied", "/w/tracking/unified-cache.json"),
            "permissions",
            "Free space",
        ),
        (
            IsADirectoryError(errno.EISDIR, "Is a directory", "/w/tracking/sync_state/a.json"),
            "folder stands",
            "Free space",
        ),
        (NotADirectoryError(errno.ENOTDIR, "Not a directory", "/w/backups/x"), "file stands", "Free space"),
        (OSError(errno.ENOSPC, "No space left on device", "/w/x"), "Free space", "permissions"),
    ],
)
def test_an_os_error_gets_the_next_step_for_its_kind(exc: OSError, said: str, not_said: str) -> None:
    """A read that failed was told to "free space" like a write; each kind now gets its own next step."""
    failure = failure_of(exc)
    assert failure.message.startswith(str(exc.filename)) and exc.strerror in failure.message
    assert failure.hint is not None and said in failure.hint and not_said not in failure.hint
    assert "atomically" in failure.hint


def test_a_source_without_a_login_gives_its_next_step_as_the_json_hint(run: Run, store: Store) -> None:
    """`sync --source strava --json` put "Log in with: ..." inside ``error`` and gave no ``hint``."""
    result = run("sync", "--source", "strava", "--json")
    assert result.exit_code == 1
    out = json.loads(result.stdout)
    assert out["error"] == "sync failed for strava: no strava login is saved"
    assert out["hint"] == "Log in with: healthcache auth strava"
