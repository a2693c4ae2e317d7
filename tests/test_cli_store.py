"""The store commands end to end, through the CLI, with results read back through the library."""

from __future__ import annotations

import ast
import fcntl
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest

from healthcache.cli import COMMANDS
from healthcache.model.records import Cache
from healthcache.store import Store
from tests.conftest import Run

ROOT = Path(__file__).resolve().parents[1]


def test_status_and_paths(store: Store, seeded: Callable[[int], Cache], run: Run) -> None:
    seeded(7)
    result = run("status", "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["activities"] == 7 and data["per_source"] == {"garmin": 7}
    paths = json.loads(run("paths", "--json").stdout)
    assert paths["cache"] == str(store.paths.cache)
    assert Path(paths["credentials"]).parent == store.paths.home


def test_home_from_environment(store: Store, seeded: Callable[[int], Cache], monkeypatch: pytest.MonkeyPatch) -> None:
    seeded(2)
    monkeypatch.setenv("HEALTHCACHE_HOME", str(store.paths.home))
    from click.testing import CliRunner

    from healthcache.cli import cli

    result = CliRunner().invoke(cli, ["status", "--json"])
    assert json.loads(result.stdout)["activities"] == 2


def test_verify_baseline_then_below_baseline_exits_3(store: Store, seeded: Callable[[int], Cache], run: Run) -> None:
    seeded(4)
    result = run("verify", "--baseline", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["baseline_recorded"] is True
    # a file replaced behind healthcache's back, with fewer activities
    with store.transaction() as tx:
        smaller = msgspec.structs.replace(tx.cache, activities=tx.cache.activities[:2])
        from healthcache import atomic, codec

        atomic.save_atomic(store.paths.cache, codec.encode(smaller))
    result = run("verify")
    assert result.exit_code == 3
    assert "baseline" in result.output


def test_verify_strict_runs_jsonschema(seeded: Callable[[int], Cache], run: Run) -> None:
    seeded(3)
    result = run("verify", "--strict", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["strict"] is True


def test_delete_then_restore_refusal_merge_and_force(store: Store, seeded: Callable[[int], Cache], run: Run) -> None:
    cache = seeded(5)
    victim = cache.activities[1].id
    result = run("delete", victim, "--reason", "double upload")
    assert result.exit_code == 0, result.output
    after_delete = store.read().cache
    assert victim not in {a.id for a in after_delete.activities}
    assert after_delete.tombstones[0].reason == "double upload"
    # add an activity, then try to restore the pre-delete backup: it lacks the new one
    from tests import factories

    with store.transaction() as tx:
        tx.save(msgspec.structs.replace(tx.cache, activities=[*tx.cache.activities, factories.activity(50)]))
    from healthcache.backup import list_backups

    oldest = list_backups(store.paths.backups)[-1].name
    before = store.paths.cache.read_bytes()
    result = run("restore", oldest)
    assert result.exit_code == 3, result.output
    assert "garmin:9000000050" in result.output and "--merge" in result.output
    assert store.paths.cache.read_bytes() == before
    result = run("restore", oldest, "--dry-run", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["dropped"] == ["garmin:9000000050"]
    result = run("restore", oldest, "--merge")
    assert result.exit_code == 0, result.output
    ids = {a.id for a in store.read().cache.activities}
    assert "garmin:9000000050" in ids and victim not in ids  # the union respects the delete
    result = run("restore", oldest, "--force")
    assert result.exit_code == 0, result.output
    ids = {a.id for a in store.read().cache.activities}
    assert "garmin:9000000050" not in ids and victim in ids
    # and the forced restore is itself reversible
    assert any(b.read_bytes() for b in store.paths.backups.iterdir())


def test_lock_busy_exits_75_naming_the_holder(store: Store, seeded: Callable[[int], Cache], run: Run) -> None:
    seeded(2)
    fd = os.open(store.paths.lock, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, b"4242\n")
        result = run("delete", "garmin:9000000000", "--reason", "x", "--lock-timeout", "0")
        assert result.exit_code == 75
        assert "pid 4242" in result.output
    finally:
        os.close(fd)
    assert run("delete", "garmin:9000000000", "--reason", "x").exit_code == 0


def test_usage_errors_exit_2(run: Run) -> None:
    assert run("restore").exit_code == 2
    assert run("verify", "--no-such-flag").exit_code == 2
    assert run("no-such-command").exit_code == 2


def test_every_command_has_help(run: Run) -> None:
    for name in COMMANDS:
        result = run(name, "--help")
        assert result.exit_code == 0, name
        assert "Usage:" in result.output
    top = run("--help")
    assert all(name in top.output for name in COMMANDS)
    assert "Exit codes" in top.output


def test_only_cli_imports_click() -> None:
    offenders = []
    for path in (ROOT / "healthcache").rglob("*.py"):
        if "cli" in path.relative_to(ROOT / "healthcache").parts[:1]:
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            if any(n == "click" or n.startswith("click.") for n in names):
                offenders.append(str(path))
    assert offenders == []


def test_help_imports_no_heavy_client() -> None:
    code = (
        "import sys\n"
        "from healthcache.cli import main\n"
        "main(['--help'])\n"
        "heavy = [m for m in ('garminconnect', 'stravalib', 'psycopg', 'lxml', 'fitdecode', 'requests', 'jsonschema') if m in sys.modules]\n"
        "print('HEAVY=' + ','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip().splitlines()[-1] == "HEAVY="


def test_restore_takes_a_backup_as_diff_does_by_a_unique_prefix_of_its_stamp_or_hash(
    store: Store, seeded: Callable[[int], Cache], run: Run
) -> None:
    """`restore 20240519 --merge` in its --help: a backup named by the start of its stamp (or hash), as diff takes it."""
    from healthcache.backup import list_backups
    from tests import factories

    seeded(3)
    with store.transaction() as tx:
        tx.save(msgspec.structs.replace(tx.cache, activities=[*tx.cache.activities, factories.activity(60)]))
    backups = list_backups(store.paths.backups)
    oldest = backups[-1]
    stamp = oldest.name.removeprefix("unified-cache-")
    # the shortest stamp prefix only this backup has, then its hash's first 8 characters
    prefix = next(
        stamp[:n]
        for n in range(8, len(stamp))
        if sum(b.name.removeprefix("unified-cache-").startswith(stamp[:n]) for b in backups) == 1
    )
    for spec in (prefix, oldest.digest[:8]):
        result = run("restore", spec, "--dry-run", "--json")
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["dropped"] == ["garmin:9000000060"], spec
    ambiguous = run("restore", stamp[:4], "--dry-run")  # the year: every backup's
    assert ambiguous.exit_code == 2 and "matches" in ambiguous.output and oldest.name in ambiguous.output
    assert run("restore", "nonesuch", "--dry-run").exit_code == 2


def test_restore_latest_says_why_there_is_nothing_to_go_back_to(
    store: Store, seeded: Callable[[int], Cache], run: Run
) -> None:
    """Not "no readable backup" when the one backup is the cache itself (every save keeps its state)."""
    none = run("restore", "--latest", "--dry-run")
    assert none.exit_code == 2 and "no backup in" in none.output and "one is kept at every save" in none.output
    seeded(2)  # one save: its state is kept as the newest backup, the same content as the cache
    same = run("restore", "--latest", "--dry-run")
    assert same.exit_code == 2 and "nothing to restore: every backup in" in same.output, same.output
    assert "holds the cache as it is now" in same.output


def test_a_damaged_baseline_is_replaced_by_verify_baseline_as_its_hint_says(
    store: Store, seeded: Callable[[int], Cache], run: Run
) -> None:
    """The unreadable baseline's hint is "record a new one with verify --baseline"; that command refused
    ("fix the problems above first"), so every command stayed at exit 4 until the file was deleted by hand."""
    seeded(4)
    assert run("verify", "--baseline").exit_code == 0
    store.paths.baseline.write_bytes(store.paths.baseline.read_bytes()[:50])
    assert run("status").exit_code == 4
    result = run("verify", "--baseline", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["baseline_recorded"] is True and out["replaced_unreadable_baseline"]
    assert run("status").exit_code == 0
    # Any other problem still blocks it: a baseline never papers over a loss.
    store.paths.baseline.write_bytes(b"{")
    store.paths.cache.write_bytes(b"{")
    assert run("verify", "--baseline").exit_code == 4
    assert store.paths.baseline.read_bytes() == b"{"
