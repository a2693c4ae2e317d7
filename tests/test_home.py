"""Issue 15 point 2: a home that is found, never invented.

The rules in order (``config.choose_home``): --home, $HEALTHCACHE_HOME, the workspace the current
folder is in (walking up like git), else the per-user default (platformdirs, here under the
test's $XDG_DATA_HOME: tests/conftest.py).  A command run in a random folder never writes there;
a writing one creates and names the per-user workspace; ``paths`` says which rule chose.  The
options --home, --json, -q and --lock-timeout go before or after the command.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from healthcache.cli import main
from healthcache.config import (
    BY_DEFAULT,
    BY_ENV,
    BY_OPTION,
    BY_WORKSPACE,
    CONFIG_NAME,
    Paths,
    choose_home,
    find_workspace,
)

SAMPLES = Path(__file__).resolve().parents[1] / "healthcache" / "samples" / "data"


def hc(*args: str) -> Result:
    """The console script in-process, exactly as given: no --home is added."""
    import click

    def entry() -> None:
        raise SystemExit(main(list(args)))

    return CliRunner().invoke(click.Command("healthcache", callback=entry), [], catch_exceptions=False)


def tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


@pytest.fixture
def nowhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A random folder that is no workspace, as the current folder; no $HEALTHCACHE_HOME."""
    monkeypatch.delenv("HEALTHCACHE_HOME", raising=False)
    folder = tmp_path / "downloads" / "somewhere"
    folder.mkdir(parents=True)
    (folder / "holiday.jpg").write_bytes(b"not a workout")
    monkeypatch.chdir(folder)
    return folder


@pytest.fixture
def user_home(per_user_data: Path) -> Path:
    return per_user_data / "healthcache"


# --- the rules, as a table (pure) ------------------------------------------------------------------

CWD = Path("/work/a/b")
WS = (Path("/work"), CONFIG_NAME)
DEFAULT = Path("/users/me/.local/share/healthcache")


@pytest.mark.parametrize(
    ("option", "env", "enclosing", "home", "rule"),
    [
        ("/x", "/y", WS, Path("/x"), BY_OPTION),
        ("rel", None, None, CWD / "rel", BY_OPTION),
        (None, "/y", WS, Path("/y"), BY_ENV),
        (None, "", WS, Path("/work"), BY_WORKSPACE),  # an empty variable is no value
        (None, None, WS, Path("/work"), BY_WORKSPACE),
        (None, None, None, DEFAULT, BY_DEFAULT),
    ],
)
def test_choose_home_rules_in_order(
    option: str | None, env: str | None, enclosing: tuple[Path, str] | None, home: Path, rule: str
) -> None:
    choice = choose_home(option, env, CWD, enclosing, DEFAULT)
    assert (choice.home, choice.rule) == (home, rule)
    assert choice.why  # every choice says why


def test_choose_home_says_why() -> None:
    assert "enclosing /work/a/b" in choose_home(None, None, CWD, WS, None).why
    assert "current folder is a workspace" in choose_home(None, None, Path("/work"), WS, None).why
    assert "no workspace in /work/a/b or above" in choose_home(None, None, CWD, None, DEFAULT).why


def _found_under(start: Path, root: Path) -> tuple[Path, str] | None:
    found = find_workspace(start)
    return found if found is not None and found[0].is_relative_to(root) else None


def test_what_makes_a_workspace(tmp_path: Path) -> None:
    deep = tmp_path / "ws" / "a" / "b"
    deep.mkdir(parents=True)
    assert _found_under(deep, tmp_path) is None
    (tmp_path / "ws" / "a" / "tracking").mkdir()  # a bare tracking/ is too common a name to claim a folder
    assert _found_under(deep, tmp_path) is None
    (tmp_path / "ws" / "tracking").mkdir()
    (tmp_path / "ws" / "tracking" / "unified-cache.json").write_text("{}")
    assert _found_under(deep, tmp_path) == (tmp_path / "ws", "tracking/unified-cache.json")
    (tmp_path / "ws" / "a" / CONFIG_NAME).write_text("")
    assert _found_under(deep, tmp_path) == (tmp_path / "ws" / "a", CONFIG_NAME)  # the nearest wins


# --- the CLI in a random folder --------------------------------------------------------------------


def test_a_random_folder_is_never_the_home(nowhere: Path, user_home: Path) -> None:
    result = hc("paths", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["home"] == str(user_home)
    assert data["home_rule"] == BY_DEFAULT
    assert str(nowhere) in data["home_why"]
    assert tree(nowhere) == ["holiday.jpg"]


def test_paths_shows_which_rule_chose(nowhere: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = hc("paths").stdout
    assert "home_rule   per-user default" in text
    monkeypatch.setenv("HEALTHCACHE_HOME", str(tmp_path / "env-home"))
    assert json.loads(hc("paths", "--json").stdout)["home_rule"] == BY_ENV
    assert json.loads(hc("paths", "--json", "--home", str(tmp_path / "x")).stdout)["home_rule"] == BY_OPTION


def test_writing_commands_create_only_the_per_user_workspace_and_say_so(nowhere: Path, user_home: Path) -> None:
    first = hc("import", str(SAMPLES))
    assert first.exit_code == 0, first.output
    assert f"using the per-user workspace {user_home} (created)" in first.stderr
    assert (user_home / "tracking" / "unified-cache.json").is_file()
    assert (user_home / CONFIG_NAME).is_file()  # a real workspace: init's files
    assert (user_home.stat().st_mode & 0o777) == 0o700  # personal data, made without being asked for
    for args in (["verify", "--baseline"], ["import", str(SAMPLES)], ["backups", "prune"], ["delete", "571c7731"]):
        result = hc(*args, *(["--reason", "test"] if args[0] == "delete" else []))
        assert result.exit_code == 0, (args, result.output)
        assert f"using the per-user workspace {user_home}:" in result.stderr, args  # said every time, not created
    assert tree(nowhere) == ["holiday.jpg"]  # nothing created in the random folder, ever
    quiet = hc("-q", "import", str(SAMPLES))
    assert quiet.exit_code == 0 and quiet.stdout == "" and quiet.stderr == ""


def test_read_only_commands_create_nothing_anywhere(nowhere: Path, user_home: Path) -> None:
    for args in (["status"], ["paths"], ["list"], ["stats"], ["dupes"], ["log"], ["backups", "list"]):
        result = hc(*args)
        assert result.exit_code in (0, 1), (args, result.output)
        assert "using the per-user workspace" not in result.stderr
    assert tree(nowhere) == ["holiday.jpg"]
    assert not user_home.exists()


def test_the_enclosing_workspace_is_found_like_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HEALTHCACHE_HOME", raising=False)
    ws = tmp_path / "training"
    assert hc("init", str(ws)).exit_code == 0
    deep = ws / "notes" / "2024"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    result = hc("import", str(SAMPLES))
    assert result.exit_code == 0, result.output
    assert "per-user" not in result.stderr
    assert (ws / "tracking" / "unified-cache.json").is_file()
    assert tree(deep) == []
    data = json.loads(hc("paths", "--json").stdout)
    assert (data["home"], data["home_rule"]) == (str(ws), BY_WORKSPACE)


def test_env_beats_the_enclosing_workspace_and_home_beats_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws, env_home, opt = tmp_path / "ws", tmp_path / "env-home", tmp_path / "opt"
    assert hc("init", str(ws)).exit_code == 0
    monkeypatch.chdir(ws)
    monkeypatch.setenv("HEALTHCACHE_HOME", str(env_home))
    assert json.loads(hc("paths", "--json").stdout)["home"] == str(env_home)
    assert json.loads(hc("paths", "--json", "--home", str(opt)).stdout)["home"] == str(opt)


def test_library_paths_keep_the_caller_folder(tmp_path: Path) -> None:
    # Paths(home) built by a library caller is that folder: the rules are the CLI's resolution.
    assert Paths.resolve(tmp_path).home == tmp_path
    assert Paths(tmp_path) == Paths.resolve(tmp_path)


# --- options before or after the command -----------------------------------------------------------


def test_options_before_the_command(home: Path) -> None:
    imported = hc("--home", str(home), "-q", "import", str(SAMPLES))
    assert imported.exit_code == 0, imported.output
    assert imported.stdout == ""  # -q before the command is honoured
    status = hc("--home", str(home), "--json", "status")
    assert status.exit_code == 0, status.output
    assert json.loads(status.stdout)["activities"] == 8
    nested = hc("--json", "--home", str(home), "backups", "list")
    assert nested.exit_code == 0 and isinstance(json.loads(nested.stdout), (list, dict))
    timed = hc("--lock-timeout", "0", "--home", str(home), "verify")
    assert timed.exit_code == 0, timed.output


def test_the_command_own_option_wins(home: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    data = json.loads(hc("--home", str(other), "paths", "--home", str(home), "--json").stdout)
    assert data["home"] == str(home)
    failed = hc("--json", "--home", str(home), "show", "nope")  # --json before: the one failure object
    assert failed.exit_code == 2
    assert json.loads(failed.stdout)["exit_code"] == 2


def test_home_before_the_command_reaches_the_history(home: Path) -> None:
    assert hc("--home", str(home), "import", str(SAMPLES)).exit_code == 0
    log = json.loads(hc("--home", str(home), "log", "--json").stdout)
    runs = log if isinstance(log, list) else log.get("runs", [])
    assert runs and runs[0]["command"] == "import"
    assert os.path.isdir(home / "tracking")


@pytest.mark.parametrize(
    "argv",
    [
        ("cron", "--home", "{home}", "show", "--json"),
        ("backups", "--home", "{home}", "list", "--json"),
        ("backups", "--json", "--home", "{home}", "list"),
        ("export", "--home", "{home}", "--json", "sqlite", "{home}/mirror.db", "--dry-run"),
    ],
)
def test_options_before_a_subcommand_of_a_group_apply_to_it(tmp_path: Path, argv: tuple[str, ...]) -> None:
    """ "Options go before or after the command name": for a group (cron, backups, export) too, where
    `healthcache cron --home X show` said "No such option: --home"."""
    from healthcache.samples import path as samples

    home = tmp_path / "w"
    assert hc("import", "--home", str(home), "-q", str(samples() / "gpx")).exit_code == 0
    result = hc(*(a.format(home=home) for a in argv))
    assert result.exit_code == 0, result.output
    json.loads(result.stdout)  # --json reached the subcommand, wherever it was given
