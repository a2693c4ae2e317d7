"""Every command explains itself: help on each command and option, and a working example in each --help.

The check sqlite-utils makes in its tests/test_docs.py, over healthcache's lazily loaded commands (issue 14
point 5, issue 15: examples in every --help).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner

from healthcache.cli import cli


def _walk(cmd: click.Command, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    yield path, cmd
    if isinstance(cmd, click.Group):
        ctx = click.Context(cmd)
        for name in cmd.list_commands(ctx):
            sub = cmd.get_command(ctx, name)
            assert sub is not None, name
            yield from _walk(sub, (*path, name))


ALL = list(_walk(cli))
LEAVES = [(path, cmd) for path, cmd in ALL if not isinstance(cmd, click.Group)]


def _help(path: tuple[str, ...]) -> str:
    result = CliRunner().invoke(cli, [*path, "--help"], terminal_width=80)
    assert result.exit_code == 0, result.output
    return result.output


def test_the_walk_finds_every_command() -> None:
    names = {path[0] for path, _ in ALL if path}
    assert names == set(cli.list_commands(click.Context(cli)))
    assert ("backups", "prune") in {path for path, _ in LEAVES}


@pytest.mark.parametrize(("path", "cmd"), ALL, ids=[" ".join(path) or "healthcache" for path, _ in ALL])
def test_every_command_and_option_has_help(path: tuple[str, ...], cmd: click.Command) -> None:
    assert (cmd.help or "").strip(), f"healthcache {' '.join(path)} has no help text"
    bare = [p.name for p in cmd.params if isinstance(p, click.Option) and not (p.help or "").strip()]
    assert bare == [], f"healthcache {' '.join(path)}: options without help: {bare}"


def _examples(path: tuple[str, ...]) -> list[list[str]]:
    """The example command lines of a --help: the indented `healthcache PATH ...` lines after "Examples:"."""
    text = _help(path)
    if "Examples:" not in text:
        return []
    block = text.split("Examples:", 1)[1]
    prefix = " ".join(("healthcache", *path))
    lines = [m.group(1) for m in re.finditer(r"^\s+(healthcache .*?)\s*$", block, re.M)]
    return [shlex.split(line)[len(path) + 1 :] for line in lines if line == prefix or line.startswith(prefix + " ")]


@pytest.mark.parametrize("path", [path for path, _ in LEAVES], ids=" ".join)
def test_every_command_help_has_an_example_that_parses(path: tuple[str, ...]) -> None:
    examples = _examples(path)
    assert examples, f"healthcache {' '.join(path)} --help has no example"
    cmd = dict(LEAVES)[path]
    for args in examples:
        # The example's arguments are accepted by the command's own parser (the command is not run).
        cmd.make_context(" ".join(("healthcache", *path)), list(args))
