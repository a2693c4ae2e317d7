"""``healthcache import`` through click's CliRunner: exit codes, output, and what was saved."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

sys.path.insert(0, str(Path(__file__).parents[1] / "samples"))

import generate as samples

from healthcache.cli import main
from healthcache.config import Paths
from healthcache.store import Store
from tests import fitgen


def invoke(*args: str) -> Result:
    """The CLI as the console script runs it (exit codes from main())."""

    def entry() -> None:
        raise SystemExit(main(list(args)))

    return CliRunner().invoke(click.Command("healthcache", callback=entry), [], catch_exceptions=False)


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    d = tmp_path_factory.mktemp("samples")
    return d, samples.generate(d)


def test_import_the_sample_set_then_nothing_new(tmp_path: Path, sample_dir: Any) -> None:
    folder, info = sample_dir
    home = tmp_path / "home"
    result = invoke("import", "--home", str(home), str(folder))
    assert result.exit_code == 0, result.output
    assert "failed" in result.output and f"{info['workouts']} new" in result.output
    assert "backed up" not in result.output  # the first save has nothing to back up
    assert len(Store(Paths(home)).read().cache.activities) == info["workouts"]
    again = invoke("import", "--home", str(home), str(folder))
    assert again.exit_code == 0
    assert "nothing new: nothing was written" in again.output
    assert f"{len(info['files'])} unchanged and not opened" in again.output


def test_json_report(tmp_path: Path, sample_dir: Any) -> None:
    folder, info = sample_dir
    result = invoke("import", "--home", str(tmp_path), "--json", str(folder))
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert data["counts"]["imported"] == len(info["files"]) and data["counts"]["failed"] == 0
    assert data["merge"]["new"] == info["workouts"] and data["saved"] is True
    assert {f["status"] for f in data["files"]} <= {"imported", "skipped", "unchanged"}
    assert set(data["timings_s"]) == {"scan", "read", "merge_save"}


def test_failures_exit_1_after_saving_the_rest(tmp_path: Path) -> None:
    d = tmp_path / "in"
    d.mkdir()
    (d / "run.fit").write_bytes(fitgen.run(datetime(2024, 5, 1, 6, 30, tzinfo=UTC)))
    (d / "broken.fit").write_bytes(b"\x0e\x10\x00\x00" + b"\x00" * 40)
    home = tmp_path / "home"
    result = invoke("import", "--home", str(home), str(d))
    assert result.exit_code == 1
    assert "broken.fit: not a FIT file" in result.output
    assert len(Store(Paths(home)).read().cache.activities) == 1
    quiet = invoke("import", "--home", str(tmp_path / "h2"), "--quiet", str(d))
    assert quiet.exit_code == 1
    assert quiet.stdout == "" and "import failed: " in quiet.stderr and "broken.fit" in quiet.stderr


def test_dry_run_writes_nothing(tmp_path: Path, sample_dir: Any) -> None:
    folder, info = sample_dir
    home = tmp_path / "home"
    result = invoke("import", "--home", str(home), "--dry-run", str(folder))
    assert result.exit_code == 0
    assert f"{info['workouts']} new" in result.output and "dry run: nothing was written" in result.output
    assert not (home / "tracking" / "unified-cache.json").exists()
    assert not (home / "tracking" / "sync_state").exists() or not list((home / "tracking" / "sync_state").iterdir())


def test_full_reimports(tmp_path: Path, sample_dir: Any) -> None:
    folder, info = sample_dir
    invoke("import", "--home", str(tmp_path), str(folder))
    result = invoke("import", "--home", str(tmp_path), "--full", "--json", str(folder))
    data = json.loads(result.output)
    assert data["counts"]["opened"] == len(info["files"]) and data["merge"]["new"] == 0


def test_missing_path_is_a_failure_and_no_path_a_usage_error(tmp_path: Path) -> None:
    result = invoke("import", "--home", str(tmp_path), str(tmp_path / "nope"))
    assert result.exit_code == 1 and "no such file or folder" in result.output
    assert invoke("import", "--home", str(tmp_path)).exit_code == 2


def _folder_with_a_run(folder: Path) -> Path:
    folder.mkdir()
    (folder / "run.fit").write_bytes(fitgen.run(datetime(2024, 5, 2, 6, 30, tzinfo=UTC)))
    return folder


def test_an_empty_path_is_a_usage_error_not_the_current_folder(
    tmp_path: Path, sample_dir: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``import "$(python -m healthcache.samples)"`` under a python without healthcache: ``import ""``."""
    folder, _ = sample_dir
    home = tmp_path / "home"
    assert invoke("import", "--home", str(home), str(folder)).exit_code == 0
    before = {p: p.read_bytes() for p in sorted(home.rglob("*")) if p.is_file()}
    monkeypatch.chdir(_folder_with_a_run(tmp_path / "here"))  # what "" would have imported
    for args in ([""], [str(folder), ""], ["--json", ""]):
        result = invoke("import", "--home", str(home), *args)
        assert result.exit_code == 2, result.output
        message = json.loads(result.output)["error"] if "--json" in args else result.output
        assert "an empty path was given" in message and "command substitution" in message
        assert "healthcache/samples/data" in message  # where the bundled samples really are
        assert {p: p.read_bytes() for p in sorted(home.rglob("*")) if p.is_file()} == before


def test_an_empty_path_outside_a_workspace_creates_no_workspace(
    tmp_path: Path, per_user_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HEALTHCACHE_HOME", raising=False)
    monkeypatch.chdir(_folder_with_a_run(tmp_path / "here"))
    result = invoke("import", "")
    assert result.exit_code == 2 and "an empty path was given" in result.output
    assert not per_user_data.exists()
    assert sorted(p.name for p in (tmp_path / "here").iterdir()) == ["run.fit"]


def test_run_import_refuses_an_empty_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The library's entry point too: the walk never turns "" into the current folder."""
    from healthcache.errors import EXIT_USAGE, UsageError
    from healthcache.importers.run import run_import

    monkeypatch.chdir(_folder_with_a_run(tmp_path / "here"))
    store = Store(Paths(tmp_path / "home"))
    with pytest.raises(UsageError, match="an empty path was given") as raised:
        run_import(store, ["", str(tmp_path / "here")], jobs=1)
    assert raised.value.exit_code == EXIT_USAGE
    assert not (tmp_path / "home" / "tracking" / "unified-cache.json").exists()


def test_a_failed_file_under_json_is_named_in_the_error_with_a_hint(tmp_path: Path) -> None:
    """--json said "1 file could not be imported (listed above)": nothing is listed above a JSON object."""
    home = tmp_path / "home"
    bad = tmp_path / "bad.fit"
    bad.write_bytes(b"not a fit file")
    result = invoke("import", "--home", str(home), "--json", str(bad))
    assert result.exit_code == 1
    out = json.loads(result.stdout)
    assert "listed above" not in out["error"] and str(bad) in out["error"]
    assert out["hint"] == "Nothing else was written; the next import tries the failed ones again."
