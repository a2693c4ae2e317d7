"""The README's examples of list, show, stats, diff and rebuild are what the commands print.

Each ``<!-- example:NAME -->`` block is a transcript: ``$ healthcache ...`` lines and the
output that follows.  The test runs the same commands on the bundled sample data and compares
the text, with only what differs from run to run (save times, backup names) blotted out.
"""

from __future__ import annotations

import re
import shlex
import shutil
from collections.abc import Callable
from pathlib import Path

import msgspec

from healthcache.config import Paths
from healthcache.store import Store
from tests import test_views
from tests.test_views import hc

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"<!-- example:(\w+) -->\n```text\n(.*?)\n```", re.S)
PROMPT = "Type REBUILD to save this (anything else aborts): "

sample_template = test_views.sample_template
sample_home = test_views.sample_home


def _stale_recovery_jog(home: Path) -> None:
    """As an older version that read Garmin's 5 km as 5 miles would have saved it."""
    store = Store(Paths(home))
    with store.transaction() as tx:
        acts = [
            msgspec.structs.replace(a, distance_m=5000 * 1.609344) if a.id == "garmin:15660001234" else a
            for a in tx.cache.activities
        ]
        tx.save(msgspec.structs.replace(tx.cache, activities=acts))


SETUP: dict[str, Callable[[Path], None]] = {"rebuild": _stale_recovery_jog}
INPUT: dict[str, str] = {"rebuild": "REBUILD\n"}


def normalise(text: str) -> str:
    """Blot out what changes from run to run: save times and backup names."""
    text = re.sub(r"unified-cache-\d{8}T\d{6}\.\d{6}Z-[0-9a-f]{12}\.json", "unified-cache-<stamp>-<hash>.json", text)
    text = re.sub(r"^(first seen) .+?, (updated) .+$", r"\1 <time>, \2 <time>", text, flags=re.M)
    # A save within the same second as the one before leaves updated_at as it was.
    text = re.sub(r"^ +updated_at: \S+ -> \S+\n", "", text, flags=re.M)
    return "\n".join(line.rstrip() for line in text.splitlines())


def transcript(home: Path, name: str, commands: list[str]) -> str:
    if name in SETUP:
        SETUP[name](home)
    out: list[str] = []
    run = hc(home)
    for command in commands:
        argv = shlex.split(command)
        assert argv[0] == "healthcache"
        result = run(*argv[1:], input=INPUT.get(name), env={"NO_COLOR": "1"})
        assert result.exit_code == 0, result.output
        out.append(f"$ {command}")
        out.append(result.output.replace(PROMPT + "\n", PROMPT + "REBUILD\n").rstrip("\n"))
    return "\n".join(out)


def examples() -> dict[str, str]:
    return dict(BLOCK.findall((ROOT / "README.md").read_text(encoding="utf-8")))


def test_every_view_command_has_an_example() -> None:
    assert set(examples()) >= {"list", "show", "stats", "diff", "rebuild"}


def test_readme_examples_are_what_the_commands_print(sample_home: Path, tmp_path: Path) -> None:
    for name, block in examples().items():
        commands = [line[2:] for line in block.splitlines() if line.startswith("$ ")]
        assert commands, name
        home = tmp_path / name
        home.mkdir()
        shutil.copytree(sample_home, home, dirs_exist_ok=True)
        assert normalise(transcript(home, name, commands)) == normalise(block), name
