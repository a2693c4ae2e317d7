"""The docs stay true: every command, every exit code, the set-up commands CI runs, every --help."""

from __future__ import annotations

import contextlib
import io
import re
import shutil
from pathlib import Path

from cogapp import Cog

from healthcache.cli import COMMANDS
from healthcache.errors import EXIT_CODES

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
COMMANDS_MD = ROOT / "docs" / "commands.md"


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


def _cog_check(path: Path) -> tuple[int, str]:
    """`cog --check --diff PATH` in-process: 0 when the generated text is what is written."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        status = Cog().main(["cog", "--check", "--diff", str(path)])
    return status, out.getvalue()


def test_command_reference_is_what_the_commands_print() -> None:
    status, output = _cog_check(COMMANDS_MD)
    assert status == 0, f"docs/commands.md is out of date; run `cog -r docs/commands.md`:\n{output}"


def test_command_reference_check_sees_a_stale_page(tmp_path: Path) -> None:
    stale = tmp_path / "commands.md"
    shutil.copy(COMMANDS_MD, stale)
    stale.write_text(stale.read_text(encoding="utf-8").replace("Show this message and exit.", "Help.", 1))
    status, output = _cog_check(stale)
    assert status != 0 and "Help." in output


def test_command_reference_has_every_command_and_the_readme_links_it() -> None:
    text = COMMANDS_MD.read_text(encoding="utf-8")
    missing = [name for name in COMMANDS if f"\n## healthcache {name}\n" not in text]
    assert missing == []
    assert "](docs/commands.md)" in README
