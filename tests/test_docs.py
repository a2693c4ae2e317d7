"""The README stays true: every command, every exit code, the set-up commands CI runs."""

from __future__ import annotations

import re
from pathlib import Path

from healthcache.cli import COMMANDS
from healthcache.errors import EXIT_CODES

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_command_is_documented() -> None:
    missing = [name for name in COMMANDS if f"healthcache {name}" not in README]
    assert missing == []


def test_exit_codes_table_matches_errors() -> None:
    for code, meaning in EXIT_CODES.items():
        assert re.search(rf"^\|\s*{code}\s*\|\s*{re.escape(meaning)}\s*\|$", README, re.M), code


def test_two_setup_commands_and_ci_runs_the_test_one() -> None:
    blocks = re.findall(r"<!-- setup:(\w+) -->\n```(?:sh|bash)\n(.+?)\n```", README, re.S)
    commands = dict(blocks)
    assert set(commands) == {"demo", "test"}
    assert commands["test"].strip() == "bash .ci/run"
    assert (ROOT / ".ci" / "run").exists()
    assert commands["demo"].strip() == "bash .ci/demo"
    assert (ROOT / ".ci" / "demo").exists()


def test_repo_folders_hold_only_placeholders() -> None:
    for folder in ("tracking", "backups"):
        ignore = (ROOT / folder / ".gitignore").read_text()
        assert "*" in ignore.split() and "!.gitkeep" in ignore.split()
