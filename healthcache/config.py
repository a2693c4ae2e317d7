"""Where things live (``Paths``) and what the user chose (``Config``).

The workspace ("home") is ``--home``, else ``$HEALTHCACHE_HOME``, else the
current folder.  Settings come from ``<home>/healthcache.toml``; environment
variables override the endpoint and export settings so cron and tests can set
them without editing the file.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from healthcache.errors import ConfigError

CONFIG_NAME = "healthcache.toml"
DEFAULT_PREFERENCE: tuple[str, ...] = ("garmin", "fit", "strava", "polar", "apple_health")


@dataclass(frozen=True)
class Paths:
    home: Path

    @classmethod
    def resolve(cls, home: str | os.PathLike[str] | None = None) -> Paths:
        chosen = home if home is not None else os.environ.get("HEALTHCACHE_HOME") or os.getcwd()
        return cls(Path(chosen).expanduser().absolute())

    @property
    def tracking(self) -> Path:
        return self.home / "tracking"

    @property
    def cache(self) -> Path:
        return self.tracking / "unified-cache.json"

    @property
    def baseline(self) -> Path:
        return self.tracking / ".data-integrity-baseline.json"

    @property
    def sync_state(self) -> Path:
        return self.tracking / "sync_state"

    @property
    def index(self) -> Path:
        """Compact summary of the cache, so a run with nothing new need not parse it."""
        return self.sync_state / "cache-index.json"

    @property
    def lock(self) -> Path:
        return self.tracking / ".healthcache.lock"

    @property
    def backups(self) -> Path:
        return self.home / "backups"

    @property
    def credentials(self) -> Path:
        """Tokens live here: never in tracking/ or backups/, folder 0700, files 0600."""
        env = os.environ.get("HEALTHCACHE_CREDENTIALS_DIR")
        return Path(env).expanduser().absolute() if env else self.home / ".credentials"

    @property
    def config_file(self) -> Path:
        return self.home / CONFIG_NAME

    def state_file(self, source: str) -> Path:
        return self.sync_state / f"{source}.json"

    def as_dict(self) -> dict[str, str]:
        return {
            "home": str(self.home),
            "config": str(self.config_file),
            "cache": str(self.cache),
            "baseline": str(self.baseline),
            "sync_state": str(self.sync_state),
            "lock": str(self.lock),
            "backups": str(self.backups),
            "credentials": str(self.credentials),
        }


@dataclass(frozen=True)
class RetentionPolicy:
    """borg-style prune rules applied after each save."""

    keep_last: int = 10
    keep_daily: int = 7
    keep_weekly: int = 4
    keep_monthly: int = 12


@dataclass(frozen=True)
class SyncConfig:
    min_interval_minutes: float = 60.0
    garmin_api_base: str | None = None
    garmin_sso_url: str | None = None
    garmin_token_url: str | None = None
    strava_api_host: str | None = None
    strava_client_id: str | None = None


@dataclass(frozen=True)
class ExportConfig:
    """Targets refreshed after a successful sync or import, e.g. ``sqlite:mirror.db``."""

    targets: tuple[str, ...] = ()
    postgres_url: str | None = None


@dataclass(frozen=True)
class Config:
    preference: tuple[str, ...] = DEFAULT_PREFERENCE
    retention: RetentionPolicy = field(default_factory=RetentionPolicy)
    sync: SyncConfig = field(default_factory=SyncConfig)
    export: ExportConfig = field(default_factory=ExportConfig)

    @classmethod
    def load(cls, paths: Paths, environ: dict[str, str] | None = None) -> Config:
        env = os.environ if environ is None else environ
        data: dict[str, Any] = {}
        if paths.config_file.exists():
            try:
                data = tomllib.loads(paths.config_file.read_text(encoding="utf-8"))
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
                raise ConfigError(f"{paths.config_file}: not valid TOML: {exc}") from exc
        merge = data.get("merge", {})
        preference = tuple(merge.get("preference", DEFAULT_PREFERENCE))
        sync = _section(SyncConfig, data.get("sync", {}), paths.config_file, "sync")
        sync = SyncConfig(
            min_interval_minutes=sync.min_interval_minutes,
            garmin_api_base=env.get("HEALTHCACHE_GARMIN_API_BASE") or sync.garmin_api_base,
            garmin_sso_url=env.get("HEALTHCACHE_GARMIN_SSO_URL") or sync.garmin_sso_url,
            garmin_token_url=env.get("HEALTHCACHE_GARMIN_TOKEN_URL") or sync.garmin_token_url,
            strava_api_host=env.get("HEALTHCACHE_STRAVA_API_HOST") or sync.strava_api_host,
            strava_client_id=env.get("HEALTHCACHE_STRAVA_CLIENT_ID") or sync.strava_client_id,
        )
        export_raw = dict(data.get("export", {}))
        export_raw["targets"] = tuple(export_raw.get("targets", ()))
        export = _section(ExportConfig, export_raw, paths.config_file, "export")
        if env.get("HEALTHCACHE_PG_URL"):
            export = ExportConfig(targets=export.targets, postgres_url=env["HEALTHCACHE_PG_URL"])
        return cls(
            preference=preference,
            retention=_section(RetentionPolicy, data.get("backups", {}), paths.config_file, "backups"),
            sync=sync,
            export=export,
        )


def _section[T](kind: type[T], values: dict[str, Any], path: Path, name: str) -> T:
    known = {f.name for f in fields(kind)}  # type: ignore[arg-type]
    unknown = set(values) - known
    if unknown:
        raise ConfigError(f"{path}: unknown setting(s) in [{name}]: {', '.join(sorted(unknown))}")
    try:
        return kind(**values)
    except TypeError as exc:
        raise ConfigError(f"{path}: [{name}]: {exc}") from exc
