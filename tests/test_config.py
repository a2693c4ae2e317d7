"""healthcache.toml is a contract: refused whole, naming the key, before anything is read or written.

Through the real CLI on a real workspace: a cache saved by the store, its
backups and state files; every file's bytes are compared before and after a
refused command.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from healthcache.config import (
    DEFAULT_PREFERENCE,
    Config,
    DisplayConfig,
    ExportConfig,
    NotifyConfig,
    Paths,
    RetentionPolicy,
    SyncConfig,
    from_document,
    known_sources,
)
from healthcache.errors import ConfigError
from healthcache.model.records import Cache
from healthcache.normalise import NORMALISERS
from healthcache.store import Store
from tests import factories
from tests.conftest import Run

README = Path(__file__).resolve().parents[1] / "README.md"


def snapshot(home: Path) -> dict[str, bytes | None]:
    """Every file (bytes) and folder (None) under the home, except the config itself."""
    return {
        str(p.relative_to(home)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(home.rglob("*"))
        if p.name != "healthcache.toml"
    }


@pytest.fixture
def workspace(store: Store, seeded: Callable[[int], Cache]) -> Store:
    """A cache saved twice (so backups/ holds one), with its index and state."""
    seeded(6)
    with store.transaction() as tx:
        tx.save(factories.cache(8))
    assert list(store.paths.backups.glob("*.json"))
    return store


def write(store: Store, text: str) -> None:
    store.paths.config_file.write_text(text, encoding="utf-8")


def refused(run: Run, store: Store, *args: str) -> str:
    """Run a command that must be refused for its configuration: rc 1, nothing touched."""
    before = snapshot(store.paths.home)
    result = run(*args)
    assert result.exit_code == 1, result.output
    assert snapshot(store.paths.home) == before
    assert str(store.paths.config_file) in result.output
    return result.output


def test_keep_last_two_refuses_delete_before_writing(run: Run, workspace: Store) -> None:
    write(workspace, '[backups]\nkeep_last = "two"\n')
    victim = workspace.read().cache.activities[0].id
    out = refused(run, workspace, "delete", victim, "--reason", "test")
    assert '[backups] keep_last must be an integer, got "two"' in out
    assert "Traceback" not in out
    assert victim in {a.id for a in workspace.read().cache.activities}


def test_all_zero_retention_refused_before_a_save(run: Run, workspace: Store) -> None:
    write(workspace, "[backups]\nkeep_last = 0\nkeep_daily = 0\nkeep_weekly = 0\nkeep_monthly = 0\n")
    victim = workspace.read().cache.activities[0].id
    out = refused(run, workspace, "delete", victim, "--reason", "test")
    assert "are all 0" in out


def test_negative_count_refused(run: Run, workspace: Store) -> None:
    write(workspace, "[backups]\nkeep_daily = -1\n")
    assert "[backups] keep_daily must be an integer of at least 0, got -1" in refused(run, workspace, "status")


def test_preference_as_a_bare_string_is_refused_not_split(run: Run, workspace: Store) -> None:
    write(workspace, '[merge]\npreference = "garmin"\n')
    out = refused(run, workspace, "dupes")
    assert '[merge] preference must be a list of source names, e.g. ["garmin", "strava"], got "garmin"' in out


def test_unknown_source_in_preference_is_refused(run: Run, workspace: Store) -> None:
    write(workspace, '[merge]\npreference = ["garmin", "stravaa", "fit"]\n')
    out = refused(run, workspace, "status")
    assert '[merge] preference names an unknown source "stravaa" (did you mean "strava"?)' in out
    write(workspace, '[merge]\npreference = ["garmin", "fit", "garmin"]\n')
    assert '"garmin" more than once' in refused(run, workspace, "status")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[backup]\nkeep_last = 3\n", "unknown section [backup] (did you mean [backups]?)"),
        ("[retention]\nkeep_last = 3\n", "unknown section [retention] (did you mean [backups]?)"),
        ("[syncc]\nmin_interval_minutes = 5\n", "unknown section [syncc] (did you mean [sync]?)"),
        ('preference = ["garmin"]\n', 'unknown section "preference": a key at the top level; it belongs in [merge]'),
        ('[merge]\nprefrence = ["garmin"]\n', '[merge] unknown key "prefrence" (did you mean "preference"?)'),
        ("[backups]\nkeep_lats = 3\n", '[backups] unknown key "keep_lats" (did you mean "keep_last"?)'),
    ],
)
def test_unknown_sections_and_keys_are_refused_by_name(run: Run, workspace: Store, text: str, expected: str) -> None:
    write(workspace, text)
    assert expected in refused(run, workspace, "status")


def test_refused_before_an_import_reads_or_writes(run: Run, home: Path, tmp_path: Path) -> None:
    """No tracking/, no manifest, no lock file: the import never started."""
    gpx = tmp_path / "in" / "a.gpx"
    gpx.parent.mkdir()
    gpx.write_text("<gpx/>")
    (home / "healthcache.toml").write_text('[export]\ntargets = "sqlite:mirror.db"\n')
    result = run("import", str(gpx))
    assert result.exit_code == 1, result.output
    assert '[export] targets must be a list of targets, e.g. ["sqlite:mirror.db"], got "sqlite:mirror.db"' in (
        result.output
    )
    assert sorted(p.name for p in home.iterdir()) == ["healthcache.toml"]


def test_wrong_type_in_an_environment_override(run: Run, workspace: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEALTHCACHE_STRAVA_CLIENT_ID", "my-app")
    before = snapshot(workspace.paths.home)
    result = run("status")
    assert result.exit_code == 1
    assert '$HEALTHCACHE_STRAVA_CLIENT_ID: [sync] strava_client_id must be a number, got "my-app"' in result.output
    monkeypatch.delenv("HEALTHCACHE_STRAVA_CLIENT_ID")
    monkeypatch.setenv("HEALTHCACHE_GARMIN_API_BASE", "connectapi.garmin.com")
    result = run("status")
    assert result.exit_code == 1
    assert "$HEALTHCACHE_GARMIN_API_BASE: [sync] garmin_api_base must be an http:// or https:// URL" in result.output
    assert snapshot(workspace.paths.home) == before


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    doc = {"sync": {"strava_client_id": 12, "garmin_api_base": "https://a.example"}, "export": {"postgres_url": "x"}}
    env = {"HEALTHCACHE_STRAVA_CLIENT_ID": "345", "HEALTHCACHE_PG_URL": "postgresql://me@db/t"}
    config = from_document(doc, tmp_path / "healthcache.toml", env)
    assert config.sync.strava_client_id == "345"
    assert config.sync.garmin_api_base == "https://a.example"
    assert config.export.postgres_url == "postgresql://me@db/t"
    assert from_document(doc, "f", {}).sync.strava_client_id == "12"


def test_readme_configuration_loads_into_the_documented_values(tmp_path: Path) -> None:
    """The README's example config, every line uncommented, is a valid file giving its values."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## Configuration", 1)[1]
    block = re.search(r"```toml\n(.*?)```", section, re.S)
    assert block is not None
    body = re.sub(r"^# (\w+ = )", r"\1", block.group(1), flags=re.M)
    (tmp_path / "healthcache.toml").write_text(body)
    config = Config.load(Paths(tmp_path), environ={})
    assert config == Config(
        preference=("garmin", "fit", "strava", "polar", "apple_health"),
        retention=RetentionPolicy(keep_last=10, keep_daily=7, keep_weekly=4, keep_monthly=12),
        sync=SyncConfig(
            min_interval_minutes=60.0,
            garmin_api_base="https://connectapi.garmin.com",
            strava_api_host="www.strava.com",
        ),
        export=ExportConfig(
            targets=("sqlite:mirror.db", "postgres"), postgres_url="postgresql://me@localhost/training"
        ),
        notify=NotifyConfig(urls=("ntfy://healthcache-alerts",)),
        display=DisplayConfig(timezone="Europe/Berlin"),
    )


def test_no_file_and_empty_file_give_the_defaults(tmp_path: Path) -> None:
    assert Config.load(Paths(tmp_path), environ={}) == Config()
    (tmp_path / "healthcache.toml").write_text("")
    assert Config.load(Paths(tmp_path), environ={}) == Config()
    assert Config().preference == DEFAULT_PREFERENCE


def test_known_sources_are_the_normalisers() -> None:
    assert set(known_sources()) == set(NORMALISERS)
    assert set(DEFAULT_PREFERENCE) <= set(known_sources())


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        (
            {"sync": {"min_interval_minutes": "1h"}},
            '[sync] min_interval_minutes must be a number, got "1h"',
        ),
        (
            {"sync": {"min_interval_minutes": True}},
            "[sync] min_interval_minutes must be a number, got true",
        ),
        ({"merge": {"preference": ["garmin", 3]}}, "[merge] preference[1] must be a string, got 3"),
        ({"backups": 5}, "[backups] must be a table, got 5"),
        ({"sync": {"strava_client_id": 1.5}}, "[sync] strava_client_id must be an integer or a string, got 1.5"),
    ],
)
def test_type_messages(doc: dict[str, object], expected: str) -> None:
    with pytest.raises(ConfigError) as exc:
        from_document(doc, "healthcache.toml", {})
    assert str(exc.value) == f"healthcache.toml: {expected}"


def test_not_toml_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "healthcache.toml").write_text("[merge\n")
    with pytest.raises(ConfigError, match=r"healthcache\.toml: not valid TOML"):
        Config.load(Paths(tmp_path), environ={})


def test_readme_table_documents_every_section_and_key() -> None:
    from healthcache.config import ENV_OVERRIDES, SECTIONS

    text = README.read_text(encoding="utf-8").split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = set(re.findall(r"^\| `\[(\w+)\]` \| `(\w+)` \|", text, re.M))
    assert rows == {(name, key) for name, kind in SECTIONS.items() for key in kind.__struct_fields__}
    assert all(f"${name}" in text for name in ENV_OVERRIDES)


@pytest.mark.parametrize("command", [("backups", "list"), ("paths",), ("dupes",), ("verify",)])
def test_every_command_checks_the_config_first(run: Run, workspace: Store, command: tuple[str, ...]) -> None:
    """Even a command that only lists or reads refuses a wrong configuration before it starts."""
    write(workspace, "[backup]\nkeep_last = 3\n")
    assert "did you mean [backups]?" in refused(run, workspace, *command)
