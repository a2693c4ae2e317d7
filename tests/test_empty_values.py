"""An empty value ("" from a command substitution that printed nothing) is a usage error, never the
current folder: ``os.path.abspath("")`` is where the user happens to stand, and relative to the
home, an empty ``[import] paths`` entry is the whole workspace.  ``import ""`` has its own test in
tests/test_import_cli.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import Run


def _files(folder: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(
    "argv",
    [
        ("init", ""),
        ("restore", ""),
        ("restore", "--merge", "--json", ""),
        ("export", "sqlite", ""),
        ("--home", "", "status"),
        ("status", "--home", ""),
    ],
)
def test_an_empty_value_is_a_usage_error_and_writes_nothing(
    argv: tuple[str, ...], tmp_path: Path, run: Run, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)  # what "" would have been
    before_home, before_here = _files(home), _files(here)
    result = run(*argv)
    assert result.exit_code == 2, result.output
    text = json.loads(result.stdout)["error"] if "--json" in argv else result.output
    assert 'an empty value was given ("")' in text
    assert _files(home) == before_home and _files(here) == before_here
    assert sorted(p.name for p in here.iterdir()) == []


def test_an_empty_watched_path_is_refused_by_the_configuration(run: Run, home: Path) -> None:
    """Relative to the home, "" would make the daily job import everything under the workspace."""
    (home / "healthcache.toml").write_text('[import]\npaths = ["fit", ""]\n')
    result = run("run", "--dry-run")
    assert result.exit_code == 1
    assert "[import] paths[1] is empty" in result.output
    assert sorted(p.name for p in home.iterdir()) == ["healthcache.toml"]
