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
