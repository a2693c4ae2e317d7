"""Human output that reads well (issue 15): no Python reprs, counts that add up, a one-line summary
first, file names relative to the folder given, and ``-v`` for the long lists.

Everything runs the real CLI (``main``, through click's CliRunner) on a workspace made from the
bundled samples (``healthcache/samples/data``, imported as it ships), and on the corpus of real
device files where it is present.
"""

from __future__ import annotations

import json
import re
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import pytest
from click.testing import CliRunner, Result

from healthcache.cli import main
from healthcache.config import Paths
from tests.test_sync_cli import seed_both

if TYPE_CHECKING:
    from tests.fakes.fixtures import Workspace

pytest_plugins = ["tests.fakes.fixtures"]

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "healthcache" / "samples" / "data"
CORPUS = Path("/work/shared/corpus")
SKIPPED_MEMBER = "apple/export.zip!apple_health_export/export_cda.xml"

# What a Python object's repr or a key=value dump looks like in text meant for a person.
REPR = re.compile(
    r"\{'|\['|\bNone\b|\bTrue\b|\bFalse\b|Path\(|PosixPath|datetime\.|\b[a-z][a-z_]*=[^\s=]|<[a-zA-Z_.]+ object at"
)


def invoke(*args: str, input: str | None = None) -> Result:
    """The CLI as the console script runs it (exit codes from main())."""

    def entry() -> None:
        raise SystemExit(main(list(args)))

    return CliRunner().invoke(
        click.Command("healthcache", callback=entry), [], input=input, env={"NO_COLOR": "1"}, catch_exceptions=False
    )


def hc(home: Path) -> Callable[..., Result]:
    return lambda *args, input=None: invoke(*args, "--home", str(home), input=input)


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Result, dict[str, Any]]:
    """The bundled samples imported into a new workspace: the home, the human import, the --json one of a twin."""
    home = tmp_path_factory.mktemp("out") / "home"
    assert invoke("init", str(home)).exit_code == 0
    result = hc(home)("import", str(SAMPLES))
    assert result.exit_code == 0, result.output
    twin = tmp_path_factory.mktemp("twin") / "home"
    data = json.loads(hc(twin)("import", "--json", str(SAMPLES)).stdout)
    return home, result, data


@pytest.fixture
def home(imported: tuple[Path, Result, dict[str, Any]], tmp_path: Path) -> Path:
    copy = tmp_path / "home"
    shutil.copytree(imported[0], copy)
    return copy


# ----------------------------------------------------------------------------- 3. one line first


def test_import_says_what_happened_to_the_cache_in_its_first_line(imported: Any) -> None:
    _, result, data = imported
    c, m = data["counts"], data["merge"]
    assert m["new"] and m["merged"] and c["members_imported"]
    first = result.stdout.splitlines()[0]
    assert first == (
        f"imported {c['distinct']} records from {c['imported']} files ({c['members_imported']} archive members): "
        f"{m['new']} new activities, {m['merged']} merged as duplicates; saved"
    )


def test_the_readme_import_report_is_what_import_prints(imported: Any) -> None:
    _, result, _ = imported
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- report:import -->\n```text\n\$ healthcache import (\S+)\n(.*?)\n```", readme, re.S)
    assert block and block.group(1) == str(SAMPLES.relative_to(ROOT))
    assert result.stdout.rstrip("\n") == block.group(2)


def test_import_with_nothing_new_says_so_first(home: Path) -> None:
    again = hc(home)("import", str(SAMPLES)).stdout.splitlines()
    assert again[0] == "nothing new: nothing was written"
    assert again[1] == f"files: {len(list(f for f in SAMPLES.rglob('*') if f.is_file()))} seen: 0 imported, " + (
        f"0 skipped, {len([f for f in SAMPLES.rglob('*') if f.is_file()])} unchanged and not opened, 0 failed"
    )


def test_sync_says_first_how_many_sources_were_asked_and_what_was_saved(home: Path) -> None:
    result = hc(home)("sync")
    lines = result.stdout.splitlines()
    assert lines[0] == "synced 0 of 2 sources (2 not set up): nothing new; nothing was written", result.output
    assert lines[1:] == [f"{s:<7} not set up; run healthcache auth {s} to add it" for s in ("garmin", "strava")]
    assert "not_configured" not in result.stdout  # the JSON status name, not words for a person


def test_sync_s_first_line_adds_up_what_each_source_did(ws: Workspace) -> None:
    """Real clients against the local fake servers: Garmin's six new, Strava's copies merged into them."""
    seed_both(ws)
    result = ws.cli("sync")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0] == "synced 2 of 2 sources: 6 new activities, 6 merged as duplicates; saved"
    assert lines[1].startswith("garmin  ok") and "new 6" in lines[1]
    again = ws.cli("sync", "--force").out.splitlines()
    assert again[0] == "synced 2 of 2 sources: 12 unchanged; nothing was written"
    status = ws.cli("status").out
    assert re.search(r"^garmin: last synced \d{4}-\d\d-\d\d \d\d:\d\d", status, re.M), status
    assert re.search(r"^strava: last synced ", status, re.M) and "lineage" not in status and "remembered" not in status
    verbose = ws.cli("status", "-v").out
    assert "; 6 payloads remembered; cache lineage " in verbose, verbose


# ----------------------------------------------------------------------------- 2. counts that add up


def _numbers(line: str, *words: str) -> list[int]:
    """The counts before each word of a report line, in order (``7 seen``, ``7 imported``, ...)."""
    found = []
    for word in words:
        match = re.search(rf"(\d+) {word}", line)
        assert match, (word, line)
        found.append(int(match.group(1)))
    return found


def assert_counts_add_up(text: str, data: dict[str, Any] | None, live_records: int) -> None:
    """What a reader does with the report: files and members seen = imported + skipped + unchanged +
    failed; records read = read a second time + distinct; distinct = new + updated + merged + unchanged
    (+ the rare outcomes).  On a first import every distinct record is in the cache."""
    lines = {line.split(":", 1)[0]: line for line in text.splitlines() if ":" in line}
    for label, prefix in (("files", ""), ("archive members", "members_")):
        if label not in lines:
            assert data is None or not data["counts"][prefix + "seen"]
            continue
        seen, *parts = _numbers(lines[label], "seen", "imported", "skipped", "unchanged", "failed")
        assert seen == sum(parts), lines[label]
        assert data is None or seen == data["counts"][prefix + "seen"]
    records = lines["records"]
    (read,) = _numbers(records, "read")
    twice = _numbers(records, "of them a second time")[0] if "a second time" in records else 0
    distinct = _numbers(records, "distinct")[0] if twice else read
    outcomes = _numbers(records, "new activit", "updated", "merged as duplicates", "unchanged")
    rare = re.findall(r"(\d+) (?:joined|added apart|not stored|skipped \(deleted)", records)
    assert read == twice + distinct and distinct == sum(outcomes) + sum(map(int, rare)), records
    assert distinct == live_records
    if data is not None:
        c = data["counts"]
        assert (read, twice, distinct) == (c["records"], c["read_twice"], c["distinct"])
        assert distinct == sum(data["merge"].values())


def test_import_counts_add_up_on_the_samples(imported: Any) -> None:
    home, result, data = imported
    assert data["counts"]["read_twice"] > 0  # the samples hold the same record in two files
    live = json.loads(hc(home)("status", "--json").stdout)["live_records"]
    assert_counts_add_up(result.stdout, data, live)


def test_the_records_read_twice_are_those_two_files_share(imported: Any) -> None:
    """The gap between records read and merged is exactly the records whose key two files gave."""
    home, _, data = imported
    manifests = sorted((home / "tracking" / "sync_state").glob("import_*.json"))
    keys: list[str] = []
    for manifest in manifests:
        for entry in json.loads(manifest.read_text())["files"].values():
            members = entry.get("members") or {}
            keys += [k for m in members.values() for k in m.get("keys", [])] if members else entry.get("keys", [])
    assert len(keys) - len(set(keys)) == data["counts"]["read_twice"]
    assert len(set(keys)) == data["counts"]["distinct"]


def test_members_unchanged_in_a_changed_archive_are_counted(tmp_path: Path) -> None:
    """An export downloaded again, with one workout more: its old members are seen, unchanged."""
    archive = tmp_path / "in" / "watch.zip"
    archive.parent.mkdir()
    with zipfile.ZipFile(archive, "w") as z:
        z.write(SAMPLES / "watch" / "recovery.fit", "recovery.fit")
        z.write(SAMPLES / "watch" / "treadmill.fit", "treadmill.fit")
    run = hc(tmp_path / "home")
    assert run("import", str(archive.parent)).exit_code == 0
    with zipfile.ZipFile(archive, "a") as z:
        z.write(SAMPLES / "gpx" / "hike.gpx", "hike.gpx")
    again = run("import", str(archive.parent))
    assert "archive members: 3 seen: 1 imported, 0 skipped, 2 unchanged, 0 failed" in again.stdout, again.output
    live = json.loads(run("status", "--json").stdout)["live_records"]
    assert_counts_add_up(again.stdout, None, live - 2)  # the two unchanged members' records were there before


def test_an_archive_holding_only_an_archive_counts_its_nested_members(tmp_path: Path) -> None:
    """A zip of a zip of FIT files (as Garmin exports nest them): the outer file is imported, not skipped."""
    inner = tmp_path / "inner.zip"
    with zipfile.ZipFile(inner, "w") as z:
        z.write(SAMPLES / "watch" / "recovery.fit", "recovery.fit")
    (tmp_path / "in").mkdir()
    with zipfile.ZipFile(tmp_path / "in" / "outer.zip", "w") as z:
        z.write(inner, "inner.zip")
    result = hc(tmp_path / "home")("import", "-v", str(tmp_path / "in"))
    lines = result.stdout.splitlines()
    assert lines[0] == "imported 1 record from 1 file (1 archive member): 1 new activity; saved", result.output
    assert "files: 1 seen: 1 imported, 0 skipped, 0 unchanged, 0 failed" in lines
    assert "  imported  outer.zip: members: 1 imported" in lines


@pytest.mark.skipif(not CORPUS.is_dir(), reason="the corpus of real device files is not on this machine")
def test_import_counts_add_up_on_the_corpus(tmp_path: Path) -> None:
    text = hc(tmp_path)("import", str(CORPUS)).stdout
    live = json.loads(hc(tmp_path)("status", "--json").stdout)["live_records"]
    files = [f for f in CORPUS.rglob("*") if f.is_file() and not any(p.startswith(".") for p in f.parts)]
    assert_counts_add_up(text, None, live)
    assert _numbers(text.splitlines()[1], "seen") == [len(files)]


# ----------------------------------------------------------------------------- 4. names relative to the folder


def test_names_are_relative_to_the_folder_given(home: Path, tmp_path: Path) -> None:
    result = hc(tmp_path / "fresh")("import", "-v", str(SAMPLES))
    assert f"  skipped   {SKIPPED_MEMBER}: not an activity file" in result.stdout
    assert str(SAMPLES) not in result.stdout
    data = json.loads(hc(tmp_path / "json")("import", "--json", str(SAMPLES)).stdout)
    assert f"{SAMPLES}/{SKIPPED_MEMBER}" in [f["path"] for f in data["files"]]  # JSON keeps absolute paths


def test_a_file_given_by_name_is_shown_as_given(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "broken.fit").write_bytes(b"\x0e\x10garbage, not a FIT file at all")
    monkeypatch.chdir(tmp_path)
    result = hc(home)("import", "runs/broken.fit", "missing.gpx")
    assert result.exit_code == 1
    assert "\n  runs/broken.fit: " in result.stdout and "\n  missing.gpx: no such file" in result.stdout
    assert str(tmp_path) not in result.stdout


# ----------------------------------------------------------------------------- 5. -v for more


def test_without_v_long_lists_are_a_count_with_a_hint(imported: Any) -> None:
    _, result, data = imported
    skipped = data["counts"]["members_skipped"]
    assert skipped and f"{skipped} skipped (-v lists them)" in result.stdout
    assert SKIPPED_MEMBER not in result.stdout and "timings" not in result.stdout
    assert "each file" not in result.stdout


@pytest.mark.parametrize("where", ["before", "after"])
def test_v_before_or_after_the_command_lists_them(tmp_path: Path, where: str) -> None:
    home = ("--home", str(tmp_path))
    args = ("-v", *home, "import", str(SAMPLES)) if where == "before" else ("import", str(SAMPLES), "--verbose", *home)
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert SKIPPED_MEMBER in result.stdout and "(-v lists them)" not in result.stdout
    assert re.search(
        r"^timings: scan \d+\.\d\d s, read \d+\.\d\d s.*, merge and save \d+\.\d\d s$", result.stdout, re.M
    )
    assert "  imported  watch/recovery.fit (1 record)" in result.stdout


def test_failures_are_listed_in_full_without_v(home: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    for i in range(8):
        (bad / f"broken{i}.fit").write_bytes(b"\x0e\x10not a FIT file" + bytes([i]))
    result = hc(home)("import", str(bad))
    assert result.exit_code == 1
    assert result.stdout.splitlines()[0] == (
        "nothing imported; 8 files failed (listed below); no activity changed; the import manifests were updated"
    )
    assert [line.split(":")[0] for line in result.stdout.splitlines() if line.startswith("  broken")] == [
        f"  broken{i}.fit" for i in range(8)
    ]


def test_status_says_per_import_kind_how_many_files_are_known(home: Path) -> None:
    text = hc(home)("status").stdout
    words = []
    for path in sorted((home / "tracking" / "sync_state").glob("import_*.json")):
        manifest = json.loads(path.read_text())
        n, sessions = len(manifest["files"]), len(manifest.get("sessions", {}))
        words.append(f"{path.stem.removeprefix('import_')} {n} file{'s' if n != 1 else ''}")
        words[-1] += f" ({sessions} session{'s' if sessions != 1 else ''})" if sessions else ""
    words = ", ".join(words)
    assert f"imported files known: {words}" in text
    assert "lineage" not in text
    assert "lineage" in hc(home)("status", "-v").stdout


def test_verify_baseline_gives_the_counts_in_words(home: Path) -> None:
    result = hc(home)("verify", "--baseline")
    assert result.exit_code == 0, result.output
    base = json.loads(Paths(home).baseline.read_text())
    per = ", ".join(f"{s} {n}" for s, n in sorted(base["per_source"].items()))
    assert (
        f"baseline recorded: {base['records']} records in {base['activities']} activities ({per}); "
        f"{base['with_hr']} with HR, {base['with_hr_splits']} with HR splits"
    ) in result.stdout


# ----------------------------------------------------------------------------- 1. no Python reprs anywhere


def _commands(home: Path, tmp_path: Path) -> list[tuple[str, ...]]:
    """Every command in human mode, on the sample workspace (writing ones last)."""
    short = invoke("list", "--home", str(home), "--limit", "1").stdout.splitlines()[1].split()[0]
    return [
        ("status",),
        ("status", "-v"),
        ("paths",),
        ("list",),
        ("show", short),
        ("stats",),
        ("stats", "--by", "month"),
        ("diff",),
        ("diff", "latest", "baseline"),
        ("dupes",),
        ("dupes", "--explain", "--near-misses"),
        ("backups", "list"),
        ("backups", "prune", "--dry-run"),
        ("log",),
        ("verify",),
        ("verify", "--backups", "--strict"),
        ("verify", "--baseline"),
        ("import", str(SAMPLES)),
        ("import", "-v", "--dry-run", "--full", str(SAMPLES)),
        ("import", str(tmp_path / "no-such-file.fit")),
        ("restore", "--latest", "--dry-run"),
        ("delete", short, "--reason", "test", "--dry-run"),
        ("rebuild", "--dry-run"),
        ("sync",),
        ("sync", "--dry-run"),
        ("backfill-hr",),
        ("export", "sqlite", str(tmp_path / "mirror.db")),
        ("export", "sqlite", str(tmp_path / "mirror.db")),
        ("run", "--dry-run"),
        ("notify", "--test"),
        ("show", "ffffffff"),
        ("restore", "no-such-backup"),
        ("log", "-v"),
    ]


def _assert_no_repr(result: Result, command: tuple[str, ...]) -> None:
    assert "Traceback" not in result.output, (command, result.output)
    found = REPR.findall(result.output)
    assert not found, (command, found, result.output)


def test_no_python_repr_in_any_command_s_human_output(home: Path, tmp_path: Path) -> None:
    run = hc(home)
    for command in _commands(home, tmp_path):
        _assert_no_repr(run(*command), command)


def test_no_python_repr_on_the_error_paths(home: Path, tmp_path: Path) -> None:
    """A refused save, a corrupt cache, a config typo: the messages are words too."""
    run = hc(home)
    older = sorted((home / "backups").iterdir())[0].name
    fresh = hc(tmp_path / "small")
    assert fresh("import", str(SAMPLES / "gpx")).exit_code == 0
    assert fresh("import", str(SAMPLES)).exit_code == 0
    small = sorted((tmp_path / "small" / "backups").iterdir())[0].name
    refused = fresh("restore", small)
    assert refused.exit_code == 3, refused.output
    _assert_no_repr(refused, ("restore", small))
    _assert_no_repr(run("restore", older, "--dry-run"), ("restore", older))

    config = home / "healthcache.toml"
    config.write_text("[sync]\nmin_intervall_hours = 3\n")
    typo = run("status")
    assert typo.exit_code == 1 and "min_intervall_hours" in typo.output
    _assert_no_repr(typo, ("status", "config typo"))
    config.write_text("")

    (home / "tracking" / "unified-cache.json").write_bytes(b'{"schema_version": 1, "activities": [')
    for command in [("status",), ("list",), ("verify",), ("import", str(SAMPLES)), ("diff",), ("stats",)]:
        result = run(*command)
        assert result.exit_code == 4, (command, result.output)
        _assert_no_repr(result, (*command, "corrupt cache"))


def test_dupes_shows_its_starts_in_the_display_zone(home: Path) -> None:
    """dupes lists each merged activity's start: a person reads it in the display zone, JSON keeps UTC."""
    run = hc(home)
    run("import", str(SAMPLES))
    (home / "healthcache.toml").write_text('[display]\ntimezone = "America/Los_Angeles"\n')
    text = run("dupes").stdout
    assert "2024-05-05 22:02 PDT" in text and "2024-05-06T05:02:11Z" not in text, text
    assert '"2024-05-06T05:02:11Z"' in run("dupes", "--json").stdout
