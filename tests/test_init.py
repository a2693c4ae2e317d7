"""Issue 15 point 2: ``healthcache init [DIR]`` makes a workspace and says what to do next.

It creates tracking/, backups/, a commented healthcache.toml that loads (and still loads with
every line uncommented, at the defaults healthcache uses), and a .gitignore for the personal
data; it never replaces a file: an existing healthcache.toml is a refusal (exit 2, nothing
changed), an existing cache is kept byte for byte, an existing .gitignore only gains lines.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from healthcache.cli import main
from healthcache.config import CONFIG_NAME, Config, Paths, RetentionPolicy, SyncConfig, from_document
from healthcache.workspace import CONFIG_TEMPLATE, IGNORED, Found, look, plan


def hc(*args: str) -> Result:
    import click

    def entry() -> None:
        raise SystemExit(main(list(args)))

    return CliRunner().invoke(click.Command("healthcache", callback=entry), [], catch_exceptions=False)


def snapshot(folder: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None) for p in folder.rglob("*")}


@pytest.fixture(autouse=True)
def _no_env_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HEALTHCACHE_HOME", raising=False)


def test_init_creates_a_workspace_and_says_what_next(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    ws = tmp_path / "training"
    result = hc("init", str(ws))
    assert result.exit_code == 0, result.output
    assert (ws / "tracking").is_dir() and (ws / "backups").is_dir()
    assert (ws / CONFIG_NAME).read_text() == CONFIG_TEMPLATE
    assert ((ws / CONFIG_NAME).stat().st_mode & 0o777) == 0o600  # it may come to hold a database URL
    ignored = (ws / ".gitignore").read_text().splitlines()
    assert set(IGNORED) <= set(ignored)
    out = result.stdout
    assert f"initialised the workspace {ws}" in out
    for step in ("healthcache auth garmin", "healthcache import PATH", "healthcache sync", "healthcache cron install"):
        assert f"{step} --home {ws}" in out  # run from elsewhere: the steps name the workspace
    assert Paths.resolve(ws).config_file.is_file()


def test_the_next_steps_need_no_home_inside_the_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = hc("init", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["home"] == str(tmp_path)
    assert data["created"] == ["tracking/", "backups/", CONFIG_NAME, ".gitignore"]
    assert [n["command"].split()[1] for n in data["next"]] == ["auth", "import", "sync", "cron"]
    assert all("--home" not in n["command"] for n in data["next"])


def test_home_before_or_after_init_names_the_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert hc("--home", "a", "init").exit_code == 0
    assert hc("init", "--home", "b", "-q").stdout == ""
    assert (tmp_path / "a" / CONFIG_NAME).is_file() and (tmp_path / "b" / CONFIG_NAME).is_file()


def test_the_template_loads_as_written_and_uncommented() -> None:
    assert Config.load(Paths(Path("/nonexistent")))  # sanity: no file is the defaults
    assert from_document(_toml(CONFIG_TEMPLATE), "template", {}) == Config()
    # Every commented line is a real key: uncommented, the file still passes the strict check,
    # and the defaults it shows are the ones healthcache uses.
    uncommented = re.sub(r"^# (\[\w+\]|\w+ = .*)$", r"\1", CONFIG_TEMPLATE, flags=re.M)
    assert uncommented.count("\n# ") < CONFIG_TEMPLATE.count("\n# ")
    config = from_document(_toml(uncommented), "template", {})
    defaults = Config()
    assert config.preference == defaults.preference
    assert config.retention == RetentionPolicy()
    assert config.sync.min_interval_minutes == SyncConfig().min_interval_minutes
    assert config.notify.on == defaults.notify.on


def _toml(text: str) -> dict[str, object]:
    import tomllib

    return tomllib.loads(text)


def test_init_refuses_an_existing_workspace_and_changes_nothing(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / CONFIG_NAME).write_text("[backups]\nkeep_last = 3\n")
    before = snapshot(ws)
    result = hc("init", str(ws))
    assert result.exit_code == 2
    assert "already a workspace" in result.stderr and str(ws / CONFIG_NAME) in result.stderr
    assert snapshot(ws) == before
    as_json = hc("init", str(ws), "--json")
    assert as_json.exit_code == 2
    assert json.loads(as_json.stdout)["exit_code"] == 2 and snapshot(ws) == before


def test_init_keeps_an_older_workspace_cache_and_gitignore(tmp_path: Path) -> None:
    ws = tmp_path / "older"
    assert hc("import", "--home", str(ws), str(Path(__file__).parents[1] / "healthcache/samples/data")).exit_code == 0
    cache = (ws / "tracking" / "unified-cache.json").read_bytes()
    (ws / ".gitignore").write_text("*.pyc\nbackups\n")  # no final newline issue, backups already ignored
    result = hc("init", str(ws), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert "tracking/unified-cache.json" in data["kept"]
    assert ".gitignore (appended)" in data["created"]
    assert (ws / "tracking" / "unified-cache.json").read_bytes() == cache
    assert (ws / ".gitignore").read_text() == "*.pyc\nbackups\ntracking/\n.credentials/\n"


@pytest.mark.parametrize(
    ("found", "refused"),
    [
        (Found(Path("/w"), "other", False, frozenset(), frozenset(), None, False), "is not a folder"),
        (Found(Path("/w"), "folder", True, frozenset(), frozenset(), None, False), "already a workspace"),
        (Found(Path("/w"), "folder", False, frozenset(), frozenset({"tracking"}), None, False), "tracking exists"),
        (Found(Path("/w"), "missing", False, frozenset(), frozenset(), None, False), None),
    ],
)
def test_plan_decides_with_its_reason(found: Found, refused: str | None) -> None:
    decided = plan(found)
    if refused is None:
        assert decided.refused is None
        assert [s.name for s in decided.steps] == [".", "tracking", "backups", CONFIG_NAME, ".gitignore"]
    else:
        assert decided.refused is not None and refused in decided.refused and decided.steps == ()


def test_look_reads_what_is_there(tmp_path: Path) -> None:
    (tmp_path / "tracking").write_text("a file where the folder goes")
    found = look(tmp_path)
    assert found.home_kind == "folder" and found.not_folders == {"tracking"} and found.gitignore is None
    result = hc("init", str(tmp_path))
    assert result.exit_code == 2 and "tracking exists and is not a folder" in result.stderr
    assert not (tmp_path / CONFIG_NAME).exists()


def test_a_folder_init_made_is_where_commands_run_there_go(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = tmp_path / "ws"
    assert hc("init", str(ws)).exit_code == 0
    monkeypatch.chdir(ws)
    data = json.loads(hc("paths", "--json").stdout)
    assert (data["home"], data["home_rule"]) == (str(ws), "workspace")


# --- README "First steps": the commands it shows are what works ------------------------------------

README = Path(__file__).resolve().parents[1] / "README.md"


def _block(name: str) -> list[str]:
    text = README.read_text(encoding="utf-8")
    m = re.search(rf"<!-- {re.escape(name)} -->\n```sh\n(.*?)```", text, re.S)
    assert m, f"README has no <!-- {name} --> sh block"
    return [line.split("  #", 1)[0].strip() for line in m.group(1).splitlines() if line.strip()]


def _args(line: str, samples: str) -> list[str]:
    import os
    import shlex

    words = shlex.split(line.replace('"$(python -m healthcache.samples)"', shlex.quote(samples)))
    return [os.path.expanduser(w) for w in words]


def test_readme_first_steps_run_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import subprocess
    import sys

    user = tmp_path / "user"
    user.mkdir()
    monkeypatch.setenv("HOME", str(user))
    somewhere = tmp_path / "somewhere"
    somewhere.mkdir()
    monkeypatch.chdir(somewhere)
    samples = subprocess.run(
        [sys.executable, "-m", "healthcache.samples"], capture_output=True, text=True, check=True
    ).stdout.strip()
    outputs = []
    for line in _block("first-steps"):
        args = _args(line, samples)
        if args[0] == "cd":
            os.chdir(args[1])  # monkeypatch.chdir above restores the folder afterwards
            continue
        assert args[0] == "healthcache", line
        result = hc(*args[1:])
        assert result.exit_code == 0, (line, result.output)
        outputs.append(result.stdout)
    training = user / "training"
    assert (training / CONFIG_NAME).is_file() and (training / "tracking" / "unified-cache.json").is_file()
    assert "8 activities" in outputs[-1]  # status, in the workspace found from the current folder
    assert list(somewhere.iterdir()) == []


def test_readme_own_data_lines_parse() -> None:
    import click

    from healthcache.cli import cli

    for line in _block("first-steps:own"):
        args = _args(line, "")
        assert args[0] == "healthcache", line
        cmd: click.Command | None = cli
        rest, names = args[1:], ["healthcache"]
        while isinstance(cmd, click.Group):  # cron install: down to the command
            names.append(rest.pop(0))
            cmd = cmd.get_command(click.Context(cmd), names[-1])
            assert cmd is not None, line
        assert cmd is not None
        cmd.make_context(" ".join(names), rest)  # the command's own parser accepts the line (it is not run)
