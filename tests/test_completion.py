"""Shell completion, driven through click's completion protocol as the shell scripts drive it (issue 15 point 3).

The scripts click generates (``_HEALTHCACHE_COMPLETE=bash_source healthcache``) call the program with
``_HEALTHCACHE_COMPLETE=<shell>_complete``, ``COMP_WORDS`` (the line) and ``COMP_CWORD`` (the index of the word
being completed).  Here: in-process through ``healthcache.cli.run`` (the console script's function), through the
installed ``.venv/bin/healthcache`` in a subprocess, and through the generated bash script in a real bash.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from healthcache import backup, lookup
from healthcache.cli import COMMANDS, HOME_HELP, run
from healthcache.config import Paths
from healthcache.model.records import Cache
from healthcache.store import Store
from tests import factories

ENTRY = Path(sys.executable).with_name("healthcache")


def _protocol_env(line: str, shell: str = "zsh") -> dict[str, str]:
    """What the shell script sets: the line so far, and the index of the word under the cursor."""
    words = shlex.split(line)
    cword = len(words) if line.endswith(" ") or not words else len(words) - 1
    return {"_HEALTHCACHE_COMPLETE": f"{shell}_complete", "COMP_WORDS": line, "COMP_CWORD": str(cword)}


def _parse_zsh(out: str) -> list[tuple[str, str, str]]:
    """(type, value, help) per item: zsh's reply is three lines an item; a value's colons are escaped when
    it has a help text (``_describe`` splits there)."""
    lines = out.splitlines() if out.strip() else []  # nothing offered: click still ends the reply with a newline
    assert len(lines) % 3 == 0, out
    items = [tuple(lines[i : i + 3]) for i in range(0, len(lines), 3)]
    return [(t, v.replace("\\:", ":") if h != "_" else v, h) for t, v, h in items]


@pytest.fixture
def ask(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Callable[[str], list[tuple[str, ...]]]:
    """(type, value, help) offered for the last word of a line, as the console script's ``run`` answers zsh;
    nothing on stderr, exit 0."""

    def ask(line: str) -> list[tuple[str, ...]]:
        for name, value in _protocol_env(line).items():
            monkeypatch.setenv(name, value)
        monkeypatch.setattr(sys, "argv", ["healthcache"])
        with pytest.raises(SystemExit) as done:
            run()
        out, err = capsys.readouterr()
        assert done.value.code == 0 and err == "", (done.value.code, err)
        return _parse_zsh(out)

    return ask


@pytest.fixture
def complete(ask: Callable[[str], list[tuple[str, ...]]]) -> Callable[[str], list[tuple[str, str]]]:
    """(value, help) of the plain values offered (no file or folder completion asked of the shell)."""

    def complete(line: str) -> list[tuple[str, str]]:
        items = ask(line)
        assert all(kind == "plain" for kind, _, _ in items), items
        return [(value, why) for _, value, why in items]

    return complete


def _save_three_times(home: Path) -> Cache:
    """Three real saves: a backup is written before each (and of each saved state)."""
    store = Store(Paths.resolve(home))
    for n in (5, 8, 12):
        with store.transaction() as tx:
            tx.save(factories.cache(n))
    return store.read().cache


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# --------------------------------------------------------------------------- commands and options


def test_command_names_complete_from_the_table_with_their_help(complete: Callable[[str], list[tuple[str, str]]]):
    assert complete("healthcache st") == [("stats", COMMANDS["stats"][1]), ("status", COMMANDS["status"][1])]
    assert [v for v, _ in complete("healthcache ")] == sorted(COMMANDS)
    assert complete("healthcache --h") == [("--home", HOME_HELP), ("--help", "Show this message and exit.")]


def test_completing_a_command_name_imports_no_command_module(home: Path) -> None:
    """The lazy loading holds under completion too: click's Group would import every module for its help."""
    probe = (
        "import sys\nfrom healthcache.cli import run\ntry:\n    run()\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('healthcache.cli.')), file=sys.stderr)\n"
    )
    env = {**os.environ, **_protocol_env("healthcache s"), "HEALTHCACHE_HOME": str(home)}
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert "sync\n" in done.stdout and "show\n" in done.stdout
    assert done.stderr.strip() == "[]"


def test_options_and_choices_complete(complete: Callable[[str], list[tuple[str, str]]]) -> None:
    assert {"--days", "--dry-run"} <= {v for v, _ in complete("healthcache sync --d")}
    assert [v for v, _ in complete("healthcache sync --source ")] == ["garmin", "strava", "all"]
    assert [v for v, _ in complete("healthcache auth ")] == ["garmin", "strava"]
    assert [v for v, _ in complete("healthcache cron ")] == ["install", "remove", "show"]


# --------------------------------------------------------------------------- backups


def test_restore_completes_the_backups_of_the_home_given_earlier_on_the_line(
    home: Path, complete: Callable[[str], list[tuple[str, str]]]
) -> None:
    _save_three_times(home)
    names = [b.name for b in backup.list_backups(home / "backups")]
    assert len(names) >= 3
    for line in (f"healthcache restore --home {home} ", f"healthcache --home {home} restore "):
        offered = complete(line)
        assert [v for v, _ in offered] == names  # newest first, as `backups list`
        assert all(why[:4].isdigit() for _, why in offered)
    oldest = backup.list_backups(home / "backups")[-1]
    stamp = oldest.name.removeprefix(backup.PREFIX).split("Z-")[0]  # to the microsecond: one backup's
    assert [v for v, _ in complete(f"healthcache restore --home {home} {stamp}")] == [oldest.name]
    assert [v for v, _ in complete(f"healthcache restore --home {home} {oldest.digest}")] == [oldest.name]


def test_backups_complete_from_the_env_home_and_from_the_workspace_the_shell_is_in(
    home: Path, monkeypatch: pytest.MonkeyPatch, complete: Callable[[str], list[tuple[str, str]]]
) -> None:
    _save_three_times(home)
    names = [b.name for b in backup.list_backups(home / "backups")]
    below = home / "notes" / "2024"
    below.mkdir(parents=True)
    monkeypatch.chdir(below)  # inside the workspace: found as git finds its repository
    assert [v for v, _ in complete("healthcache restore ")] == names
    monkeypatch.chdir(home.parent)
    monkeypatch.setenv("HEALTHCACHE_HOME", str(home))
    assert [v for v, _ in complete("healthcache diff ")] == ["latest", "current", "baseline", *names]
    assert [v for v, _ in complete("healthcache diff latest cu")] == ["current"]  # "c" alone is also a hash prefix


def test_a_typed_path_is_left_to_the_shell(home: Path, ask: Callable[[str], list[tuple[str, ...]]]) -> None:
    """restore and diff also take a backup's path: completing one is the shell's file completion."""
    _save_three_times(home)
    assert ask(f"healthcache restore --home {home} ./backups/unif") == [("file", "./backups/unif", "_")]
    assert ask(f"healthcache diff --home {home} current ~/old/") == [("file", "~/old/", "_")]
    assert ask(f"healthcache restore --home {home} nothing-like-it") == []


# --------------------------------------------------------------------------- activities


def test_activity_ids_complete_as_list_prints_them_with_date_and_name(
    home: Path, complete: Callable[[str], list[tuple[str, str]]]
) -> None:
    cache = _save_three_times(home)
    newest_first = list(reversed(cache.activities))
    shorts = lookup.short_ids(a.id for a in cache.activities)
    expected = [
        (shorts[a.id], f"{a.start_time_local[:16].replace('T', ' ')} {a.sport} {a.name}")
        for a in newest_first
        if a.start_time_local
    ]
    assert len(expected) == 12
    for command in ("show", "delete", "link", "unlink"):
        assert complete(f"healthcache {command} --home {home} ") == expected, command
    first = expected[3][0]
    assert complete(f"healthcache link --home {home} {first} {first[:6]}") == [expected[3]]
    assert complete(f"healthcache show --home {home} {first[:5].upper()}") == [
        e for e in expected if e[0].startswith(first[:5])
    ]


def test_keys_with_a_colon_complete_the_full_ids(home: Path, complete: Callable[[str], list[tuple[str, str]]]) -> None:
    cache = _save_three_times(home)
    newest = cache.activities[-1]
    offered = complete(f"healthcache show --home {home} {newest.id[:-1]}")
    assert offered[0][0] == newest.id
    assert newest.name is not None and offered[0][1].endswith(newest.name)
    assert all(v.startswith(newest.id[:-1]) for v, _ in offered)


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda p: p.write_bytes(b'{"activities": [{"id": '), id="truncated"),
        pytest.param(lambda p: p.write_bytes(b'{"activities": 7}'), id="wrong-shape"),
        pytest.param(lambda p: p.write_bytes(b"\xff\xfe\x00garbage"), id="binary"),
        pytest.param(lambda p: (p.unlink(), p.mkdir()), id="a-folder"),
        pytest.param(lambda p: p.unlink(), id="missing"),
    ],
)
def test_a_missing_or_corrupt_cache_completes_nothing_and_writes_nothing(
    home: Path, damage: Callable[[Path], object], complete: Callable[[str], list[tuple[str, str]]]
) -> None:
    _save_three_times(home)
    cache = home / "tracking" / "unified-cache.json"
    damage(cache)
    before = _tree(home)
    assert complete(f"healthcache show --home {home} ") == []  # no traceback: `complete` checks stderr is empty
    assert _tree(home) == before


def test_no_workspace_anywhere_completes_nothing_and_creates_none(
    tmp_path: Path,
    per_user_data: Path,
    monkeypatch: pytest.MonkeyPatch,
    complete: Callable[[str], list[tuple[str, str]]],
) -> None:
    monkeypatch.delenv("HEALTHCACHE_HOME", raising=False)
    nowhere = tmp_path / "nowhere"
    nowhere.mkdir()
    monkeypatch.chdir(nowhere)
    assert complete("healthcache restore ") == []
    assert complete("healthcache show ") == []
    assert [v for v, _ in complete("healthcache diff ")] == ["latest", "current", "baseline"]
    assert list(nowhere.iterdir()) == [] and not per_user_data.exists()


# --------------------------------------------------------------------------- the real entry point and shell


def test_the_installed_entry_point_answers_the_protocol(home: Path) -> None:
    cache = _save_three_times(home)
    env = {**os.environ, **_protocol_env(f"healthcache show --home {home} "), "HEALTHCACHE_HOME": ""}
    done = subprocess.run([str(ENTRY)], env=env, capture_output=True, text=True, check=True, cwd=home.parent)
    assert done.stderr == ""
    offered = _parse_zsh(done.stdout)
    shorts = lookup.short_ids(a.id for a in cache.activities)
    assert [v for _, v, _ in offered] == [shorts[a.id] for a in reversed(cache.activities)]
    assert all(a.name in why for (_, _, why), a in zip(offered, reversed(cache.activities), strict=True))


def _readme_line(shell: str) -> str:
    """The start-up line the README gives for ``shell`` (its <!-- completion --> block)."""
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    m = re.search(r"<!-- completion -->\n```sh\n(.*?)```", text, re.S)
    assert m, "README has no <!-- completion --> block"
    lines = [line.split("  #")[0].strip() for line in m.group(1).splitlines() if f"={shell}_source" in line]
    assert len(lines) == 1, m.group(1)
    return lines[0]


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash on this machine")
def test_the_readme_bash_line_completes_in_a_real_bash(home: Path) -> None:
    """The README's line for ~/.bashrc, then the function it defines called as bash's `complete -F` calls it."""
    cache = _save_three_times(home)
    script = (
        _readme_line("bash") + "\n"
        "complete -p healthcache\n"
        'COMP_WORDS=(healthcache show --home "$HOME_DIR" ""); COMP_CWORD=4; COMPREPLY=()\n'
        "_healthcache_completion healthcache\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
        "COMP_WORDS=(healthcache res); COMP_CWORD=1; COMPREPLY=()\n"
        "_healthcache_completion healthcache\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    env = {**os.environ, "PATH": f"{ENTRY.parent}{os.pathsep}{os.environ['PATH']}", "HOME_DIR": str(home)}
    done = subprocess.run(["bash", "--norc", "-c", script], env=env, capture_output=True, text=True, check=True)
    assert done.stderr == ""
    shorts = lookup.short_ids(a.id for a in cache.activities)
    lines = done.stdout.splitlines()
    assert lines[0] == "complete -o nosort -F _healthcache_completion healthcache"
    assert lines[1:] == [*(shorts[a.id] for a in reversed(cache.activities)), "restore"]
