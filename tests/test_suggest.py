"""Issue 15 point 3 (in part): a mistyped command gets "Did you mean", exit 2, and under --json the one
failure object."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner, Result

from healthcache.cli import COMMANDS, main, no_such_command


def hc(*args: str) -> Result:
    import click

    def entry() -> None:
        raise SystemExit(main(list(args)))

    return CliRunner().invoke(click.Command("healthcache", callback=entry), [], catch_exceptions=False)


@pytest.mark.parametrize(
    ("typed", "first"),
    [("stauts", "status"), ("improt", "import"), ("verfy", "verify"), ("backup", "backups"), ("lsit", "list")],
)
def test_the_nearest_command_comes_first(typed: str, first: str) -> None:
    message = no_such_command(typed, COMMANDS)
    assert message.startswith(f"No such command {typed!r}. Did you mean {first!r}")


def test_nothing_near_points_to_help() -> None:
    assert no_such_command("xyzzy", COMMANDS) == "No such command 'xyzzy'. See 'healthcache --help' for the commands."


def test_a_mistyped_command_exits_2_with_the_suggestion() -> None:
    result = hc("stauts")
    assert result.exit_code == 2
    assert "No such command 'stauts'. Did you mean 'status' or 'stats'?" in result.stderr
    assert result.stdout == ""


def test_under_json_the_one_failure_object() -> None:
    for args in (["--json", "improt"], ["improt", "--json"]):
        result = hc(*args)
        assert result.exit_code == 2
        data = json.loads(result.stdout)
        assert data["exit_code"] == 2 and "Did you mean 'import'?" in data["error"]


def test_subcommands_suggest_too() -> None:
    result = hc("backups", "prnue")
    assert result.exit_code == 2 and "Did you mean 'prune'?" in result.stderr


def test_a_real_command_is_not_a_typo(home: object) -> None:
    result = hc("--home", str(home), "paths")
    assert result.exit_code == 0 and "No such command" not in result.output
