"""Where things live (``Paths``) and what the user chose (``Config``).

The workspace ("home") is ``--home``, else ``$HEALTHCACHE_HOME``, else the
workspace the current folder is in (like git), else the per-user default
(``choose_home``): never a random folder someone happened to be in, so no run
scatters a ``tracking/`` across the disk.  Settings come from ``<home>/healthcache.toml``; environment
variables (``ENV_OVERRIDES``) override the endpoint and export settings so cron
and tests can set them without editing the file.

The file is a contract: it is decoded strictly into typed structs (msgspec), and
a wrong type, an unknown section or key, or an unknown source name is refused
with a message naming the key, before a command reads or writes anything.  A
setting that is silently ignored or half-applied is how a backup tool surprises
its user after the fact (e.g. a retention count that only fails after a save).
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any

import msgspec

from healthcache.errors import ConfigError

CONFIG_NAME = "healthcache.toml"
DEFAULT_PREFERENCE: tuple[str, ...] = ("garmin", "fit", "strava", "polar", "apple_health")


# Files only healthcache writes: either one makes a folder a workspace.  A bare
# ``tracking/`` does not: that name is too common to claim someone's folder.
WORKSPACE_MARKERS: tuple[str, ...] = (CONFIG_NAME, "tracking/unified-cache.json")

# Which rule chose the home (``Paths.rule``), in resolution order.
BY_OPTION = "--home"
BY_ENV = "$HEALTHCACHE_HOME"
BY_WORKSPACE = "workspace"
BY_DEFAULT = "per-user default"
BY_CALLER = "given"  # a library caller built Paths(home) itself


class HomeChoice(msgspec.Struct, frozen=True):
    """The home, the rule that chose it, and why, in words for ``paths``."""

    home: Path
    rule: str
    why: str


def choose_home(
    option: str | os.PathLike[str] | None,
    env: str | None,
    cwd: Path,
    enclosing: tuple[Path, str] | None,
    user_default: Path | None,
) -> HomeChoice:
    """--home, else $HEALTHCACHE_HOME, else the workspace enclosing ``cwd`` (folder, marker), else the
    per-user default (the caller looks for what a rule needs only when the rules before it did not apply)."""
    if option is not None:
        return HomeChoice(_absolute(option, cwd), BY_OPTION, "the folder given by --home")
    if env:
        return HomeChoice(_absolute(env, cwd), BY_ENV, "the folder $HEALTHCACHE_HOME names")
    if enclosing is not None:
        folder, marker = enclosing
        where = "the current folder is a workspace" if folder == cwd else f"the workspace enclosing {cwd}"
        return HomeChoice(folder, BY_WORKSPACE, f"{where} (it holds {marker})")
    if user_default is None:
        raise ValueError("no rule chose a home: the per-user default is needed")
    return HomeChoice(
        user_default,
        BY_DEFAULT,
        f"no --home, no $HEALTHCACHE_HOME, and no workspace in {cwd} or above",
    )


def _absolute(path: str | os.PathLike[str], cwd: Path) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else cwd / p


def workspace_marker(folder: Path) -> str | None:
    """Why ``folder`` is a workspace (the marker it holds: ``healthcache.toml`` or a cache), or None."""
    return next((m for m in WORKSPACE_MARKERS if (folder / m).is_file()), None)


def find_workspace(start: Path) -> tuple[Path, str] | None:
    """The nearest workspace at or above ``start``, with its marker (git finds its repository the same way)."""
    for folder in (start, *start.parents):
        marker = workspace_marker(folder)
        if marker is not None:
            return folder, marker
    return None


def user_default_home() -> Path:
    """The per-user workspace (platformdirs: ~/.local/share/healthcache, honouring $XDG_DATA_HOME, on Linux)."""
    import platformdirs

    return platformdirs.user_data_path("healthcache", appauthor=False)


class Paths(msgspec.Struct, frozen=True):
    """Every path of a workspace, from its home.  Two are equal when their homes are: the rule that
    chose the home, and why, are for ``paths`` to tell.  (A Struct: a dataclass costs about 0.5 ms
    of generated code at every start, and every command makes one.)"""

    home: Path
    rule: str = BY_CALLER  # which rule chose the home (BY_*)
    why: str = "the folder the caller gave"

    def __eq__(self, other: object) -> bool:
        return self.home == other.home if isinstance(other, Paths) else NotImplemented

    def __hash__(self) -> int:
        return hash(self.home)

    @classmethod
    def resolve(cls, home: str | os.PathLike[str] | None = None) -> Paths:
        """The home by the rules of ``choose_home``; walks up from the current folder only when it must."""
        env = os.environ.get("HEALTHCACHE_HOME") or None
        cwd = Path.cwd()
        enclosing = find_workspace(cwd) if home is None and not env else None
        default = user_default_home() if home is None and not env and enclosing is None else None
        choice = choose_home(home, env, cwd, enclosing, default)
        return cls(choice.home, choice.rule, choice.why)

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
            "home_rule": self.rule,
            "home_why": self.why,
            "config": str(self.config_file),
            "cache": str(self.cache),
            "baseline": str(self.baseline),
            "sync_state": str(self.sync_state),
            "lock": str(self.lock),
            "backups": str(self.backups),
            "credentials": str(self.credentials),
        }


# The settings as code reads them: msgspec Structs (built in C at import, where a dataclass runs
# generated code; every command imports this module), frozen as settings are.
class RetentionPolicy(msgspec.Struct, frozen=True):
    """borg-style prune rules applied after each save."""

    keep_last: int = 10
    keep_daily: int = 7
    keep_weekly: int = 4
    keep_monthly: int = 12


class SyncConfig(msgspec.Struct, frozen=True):
    """The smart skip's thresholds (``sync_state.SkipRule``) and the endpoints."""

    min_interval_minutes: float = 60.0
    active_interval_minutes: float = 120.0
    quiet_interval_minutes: float = 240.0
    max_interval_minutes: float = 360.0
    active_days: float = 7.0
    garmin_api_base: str | None = None
    garmin_sso_url: str | None = None
    garmin_token_url: str | None = None
    strava_api_host: str | None = None
    strava_client_id: str | None = None


class ExportConfig(msgspec.Struct, frozen=True):
    """Targets refreshed after a successful sync or import, e.g. ``sqlite:mirror.db``."""

    targets: tuple[str, ...] = ()
    postgres_url: str | None = None


NOTIFY_EVENTS: tuple[str, ...] = ("loss", "failure", "auth", "recovered")

# The daily job's steps (``healthcache run``), in the order it runs them.
RUN_STEPS: tuple[str, ...] = ("sync", "import", "backfill-hr", "verify", "export")


class ImportConfig(msgspec.Struct, frozen=True):
    """Paths ``run`` imports from (as written: ``~`` and the home are applied by ``daily``)."""

    paths: tuple[str, ...] = ()


class RunConfig(msgspec.Struct, frozen=True):
    """Which steps the daily job runs, and how many activities one run's backfill-hr may ask about."""

    steps: tuple[str, ...] = RUN_STEPS
    backfill_limit: int = 50


class DisplayConfig(msgspec.Struct, frozen=True):
    """How human output shows times: in ``timezone`` (an IANA name), else the machine's zone (``zone``)."""

    timezone: str | None = None


class NotifyConfig(msgspec.Struct, frozen=True):
    """Where to send what (apprise URLs); nothing is sent while ``urls`` is empty."""

    urls: tuple[str, ...] = ()
    on: tuple[str, ...] = NOTIFY_EVENTS


class _Defaults(msgspec.Struct, frozen=True):
    """The settings' defaults, for the file's schema below (a Struct's class attribute is its field's slot)."""

    retention: RetentionPolicy = msgspec.field(default_factory=RetentionPolicy)
    sync: SyncConfig = msgspec.field(default_factory=SyncConfig)
    run: RunConfig = msgspec.field(default_factory=RunConfig)


_DEFAULTS = _Defaults()


# --- The file's schema: one struct per section ----------------------------------

Count = Annotated[int, msgspec.Meta(ge=0)]
Minutes = Annotated[float, msgspec.Meta(ge=0)]


class _Section(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    pass


class MergeSection(_Section):
    preference: tuple[str, ...] = DEFAULT_PREFERENCE


class BackupsSection(_Section):
    keep_last: Count = _DEFAULTS.retention.keep_last
    keep_daily: Count = _DEFAULTS.retention.keep_daily
    keep_weekly: Count = _DEFAULTS.retention.keep_weekly
    keep_monthly: Count = _DEFAULTS.retention.keep_monthly


class SyncSection(_Section):
    min_interval_minutes: Minutes = _DEFAULTS.sync.min_interval_minutes
    active_interval_minutes: Minutes = _DEFAULTS.sync.active_interval_minutes
    quiet_interval_minutes: Minutes = _DEFAULTS.sync.quiet_interval_minutes
    max_interval_minutes: Minutes = _DEFAULTS.sync.max_interval_minutes
    active_days: Minutes = _DEFAULTS.sync.active_days
    garmin_api_base: str | None = None
    garmin_sso_url: str | None = None
    garmin_token_url: str | None = None
    strava_api_host: str | None = None
    strava_client_id: int | str | None = None  # a number; quoted or not


class ExportSection(_Section):
    targets: tuple[str, ...] = ()
    postgres_url: str | None = None


class NotifySection(_Section):
    urls: tuple[str, ...] = ()
    on: tuple[str, ...] = NOTIFY_EVENTS


class ImportSection(_Section):
    paths: tuple[str, ...] = ()


class RunSection(_Section):
    steps: tuple[str, ...] = RUN_STEPS
    backfill_limit: Annotated[int, msgspec.Meta(ge=1)] = _DEFAULTS.run.backfill_limit


class DisplaySection(_Section):
    timezone: str | None = None


class ConfigFile(_Section):
    """``healthcache.toml`` as written: every section and key optional."""

    merge: MergeSection = msgspec.field(default_factory=MergeSection)
    backups: BackupsSection = msgspec.field(default_factory=BackupsSection)
    sync: SyncSection = msgspec.field(default_factory=SyncSection)
    export: ExportSection = msgspec.field(default_factory=ExportSection)
    notify: NotifySection = msgspec.field(default_factory=NotifySection)
    import_: ImportSection = msgspec.field(default_factory=ImportSection, name="import")
    run: RunSection = msgspec.field(default_factory=RunSection)
    display: DisplaySection = msgspec.field(default_factory=DisplaySection)


SECTIONS: dict[str, type[_Section]] = {
    "merge": MergeSection,
    "backups": BackupsSection,
    "sync": SyncSection,
    "export": ExportSection,
    "notify": NotifySection,
    "import": ImportSection,
    "run": RunSection,
    "display": DisplaySection,
}
# Names people write for a section that has another name here.
SECTION_ALIASES: dict[str, str] = {
    "backup": "backups",
    "retention": "backups",
    "sources": "merge",
    "time": "display",
    "timezone": "display",
}

# Environment variable -> (section, key) it overrides; validated like the file.
ENV_OVERRIDES: dict[str, tuple[str, str]] = {
    "HEALTHCACHE_GARMIN_API_BASE": ("sync", "garmin_api_base"),
    "HEALTHCACHE_GARMIN_SSO_URL": ("sync", "garmin_sso_url"),
    "HEALTHCACHE_GARMIN_TOKEN_URL": ("sync", "garmin_token_url"),
    "HEALTHCACHE_STRAVA_API_HOST": ("sync", "strava_api_host"),
    "HEALTHCACHE_STRAVA_CLIENT_ID": ("sync", "strava_client_id"),
    "HEALTHCACHE_PG_URL": ("export", "postgres_url"),
}


def known_sources() -> tuple[str, ...]:
    """Every source name a record can carry: the ones a stored payload can be re-read for."""
    from healthcache.normalise import NORMALISERS

    return tuple(sorted(NORMALISERS))


class Config(msgspec.Struct, frozen=True):
    preference: tuple[str, ...] = DEFAULT_PREFERENCE
    retention: RetentionPolicy = msgspec.field(default_factory=RetentionPolicy)
    sync: SyncConfig = msgspec.field(default_factory=SyncConfig)
    export: ExportConfig = msgspec.field(default_factory=ExportConfig)
    notify: NotifyConfig = msgspec.field(default_factory=NotifyConfig)
    imports: ImportConfig = msgspec.field(default_factory=ImportConfig)
    run: RunConfig = msgspec.field(default_factory=RunConfig)
    display: DisplayConfig = msgspec.field(default_factory=DisplayConfig)

    @classmethod
    def load(cls, paths: Paths, environ: Mapping[str, str] | None = None) -> Config:
        """Read and validate ``healthcache.toml`` and the overrides; ConfigError names the key."""
        env = os.environ if environ is None else environ
        where = paths.config_file
        doc: dict[str, Any] = {}
        try:
            text = where.read_bytes().decode("utf-8")
        except FileNotFoundError:
            text = None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{where}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from exc
        except OSError as exc:
            raise ConfigError(f"{where}: cannot be read: {exc.strerror or exc}") from exc
        if text is not None:
            try:
                doc = tomllib.loads(text)
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError(f"{where}: not valid TOML: {exc}") from exc
        return from_document(doc, where, env)


def from_document(doc: dict[str, Any], where: Path | str, env: Mapping[str, str] | None = None) -> Config:
    """The typed config of a parsed TOML document plus environment overrides (pure)."""
    _refuse_unknown(doc, where)
    parsed = _convert(doc, ConfigFile, where, strict=True)
    _check(parsed.sync, "sync", where)
    _check_notify(parsed.notify, where)
    _check_run(parsed.run, where)
    _check_import(parsed.import_, where)
    _check_display(parsed.display, where)
    overrides = {name: env[name] for name in ENV_OVERRIDES if env and env.get(name)}
    if overrides:
        parsed = _apply_env(parsed, overrides)
    return _to_config(parsed, where)


def _refuse_unknown(doc: dict[str, Any], where: Path | str) -> None:
    for name, value in doc.items():
        section = SECTIONS.get(name)
        if section is None:
            raise ConfigError(f"{where}: unknown section {_describe_unknown(name, doc)}")
        if not isinstance(value, dict):
            continue  # the typed decode names the wrong type
        known = section.__struct_fields__
        for key in value:
            if key not in known:
                hint = _did_you_mean(key, known)
                raise ConfigError(
                    f"{where}: [{name}] unknown key {_toml(key)}{hint}; [{name}] knows: {', '.join(known)}"
                )


def _describe_unknown(name: str, doc: dict[str, Any]) -> str:
    """An unknown top-level name, with what the user most likely meant."""
    if not isinstance(doc[name], dict):
        homes = [s for s, kind in SECTIONS.items() if name in kind.__struct_fields__]
        if homes:
            return f'"{name}": a key at the top level; it belongs in [{homes[0]}]'
    guess = SECTION_ALIASES.get(name) or _nearest(name, SECTIONS)
    hint = f" (did you mean [{guess}]?)" if guess else ""
    return f"[{name}]{hint}; the sections are " + ", ".join(f"[{s}]" for s in SECTIONS)


def _convert[T](doc: Any, kind: type[T], where: Path | str, *, strict: bool, prefix: str | None = None) -> T:
    try:
        return msgspec.convert(doc, type=kind, strict=strict)
    except msgspec.ValidationError as exc:
        root = {prefix: doc} if prefix else doc
        message = str(exc).replace("`$", f"`$.{prefix}", 1) if prefix else str(exc)
        raise ConfigError(f"{where}: {_explain(message, root)}") from exc


# Patterns as text, compiled by ``re``'s own cache on first use: they explain a wrong file, and a
# good day's run (every command reads the configuration) should not compile them.
_AT = r"^(?P<why>.*?)(?: - at `\$(?P<path>[^`]*)`)?$"
_EXPECTED = r"^Expected `(?P<type>[^`]+)`(?P<rule>[^,]*)(?:, got `(?P<got>[^`]+)`)?$"
_WORDS = {
    "int": "an integer",
    "float": "a number",
    "str": "a string",
    "bool": "true or false",
    "array": "a list",
    "object": "a table",
}
_EXAMPLES = {
    ("merge", "preference"): ' of source names, e.g. ["garmin", "strava"]',
    ("export", "targets"): ' of targets, e.g. ["sqlite:mirror.db"]',
    ("notify", "urls"): ' of apprise URLs, e.g. ["mailto://me@example.com"]',
    ("notify", "on"): ' of events, e.g. ["loss", "auth"]',
    ("import", "paths"): ' of files or folders, e.g. ["~/fit-files"]',
    ("run", "steps"): ' of steps, e.g. ["sync", "import"]',
}


def _explain(message: str, doc: Any) -> str:
    """msgspec's "Expected `int`, got `str` - at `$.backups.keep_last`" in the user's terms."""
    m = re.match(_AT, message)
    assert m is not None  # the pattern matches any text
    why, path = m["why"], m["path"] or ""
    steps = re.findall(r"\.([^.\[]+)|\[(\d+)\]", path)
    keys: list[str | int] = [name if name else int(index) for name, index in steps]
    found, value = _lookup(doc, keys)
    where = _key_name(keys)
    e = re.match(_EXPECTED, why)
    if e is None:
        return f"{where}: {why}"
    wanted = " or ".join(_WORDS.get(t, t) for t in e["type"].split(" | ") if t != "null")
    rule = e["rule"].strip()
    if rule.startswith(">="):
        wanted += f" of at least {rule[2:].strip()}"
    wanted += _EXAMPLES.get(tuple(keys[:2]), "") if wanted == "a list" else ""  # type: ignore[arg-type]
    got = f", got {_toml(value)}" if found else ""
    return f"{where} must be {wanted}{got}"


def _lookup(doc: Any, keys: list[str | int]) -> tuple[bool, Any]:
    for k in keys:
        try:
            doc = doc[k]
        except (KeyError, IndexError, TypeError):
            return False, None
    return True, doc


def _key_name(keys: list[str | int]) -> str:
    if not keys:
        return "the file"
    section, rest = keys[0], keys[1:]
    if not rest:
        return f"[{section}]"
    key = str(rest[0]) + "".join(f"[{k}]" for k in rest[1:])
    return f"[{section}] {key}"


def _nearest(name: str, known: Iterable[str]) -> str | None:
    """The known name nearest a wrong one, if any is near (difflib loads only for a wrong name)."""
    import difflib

    return next(iter(difflib.get_close_matches(name, list(known), n=1)), None)


def _did_you_mean(name: str, known: Iterable[str]) -> str:
    near = _nearest(name, known)
    return f' (did you mean "{near}"?)' if near else ""


def _toml(value: Any) -> str:
    """A value as the user wrote it (strings quoted, like TOML)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    import json  # only to quote a value in a message

    try:
        return json.dumps(value, ensure_ascii=False)
    except TypeError:
        return str(value)


def _apply_env(parsed: ConfigFile, overrides: dict[str, str]) -> ConfigFile:
    """Overlay the environment, each value decoded to its key's type (from text) and checked like the file."""
    for name, value in overrides.items():
        section, key = ENV_OVERRIDES[name]
        current = msgspec.structs.asdict(getattr(parsed, section))
        label = f"${name}"
        converted = _convert({**current, key: value}, SECTIONS[section], label, strict=False, prefix=section)
        _check(converted, section, label)
        parsed = msgspec.structs.replace(parsed, **{section: converted})
    return parsed


_URL_KEYS = ("garmin_api_base", "garmin_sso_url", "garmin_token_url")


def _check(values: _Section, section: str, where: Path | str) -> None:
    """What a type cannot say: a client id is a number, an endpoint is an http(s) URL."""
    if not isinstance(values, SyncSection):
        return
    _check_intervals(values, section, where)
    cid = values.strava_client_id
    if isinstance(cid, str) and cid.strip() and not cid.strip().isdigit():
        raise ConfigError(f"{where}: [sync] strava_client_id must be a number, got {_toml(cid)}")
    for key in _URL_KEYS:
        url = getattr(values, key)
        if url is not None and url.strip() and not re.match(r"^https?://[^\s/]+", url.strip()):
            raise ConfigError(f"{where}: [{section}] {key} must be an http:// or https:// URL, got {_toml(url)}")


_INTERVALS = ("min_interval_minutes", "active_interval_minutes", "quiet_interval_minutes", "max_interval_minutes")


def _check_intervals(values: SyncSection, section: str, where: Path | str) -> None:
    """The smart skip's thresholds in order: never within min, always after max, the other two between."""
    lo, hi = values.min_interval_minutes, values.max_interval_minutes
    if lo > hi:
        raise ConfigError(f"{where}: [{section}] min_interval_minutes ({lo:g}) is above max_interval_minutes ({hi:g})")
    for key in _INTERVALS[1:3]:
        value = getattr(values, key)
        if not lo <= value <= hi:
            raise ConfigError(
                f"{where}: [{section}] {key} must lie between min_interval_minutes ({lo:g}) and "
                f"max_interval_minutes ({hi:g}), got {value:g}"
            )


_APPRISE_URL = r"^[A-Za-z][A-Za-z0-9+.-]*://\S"  # compiled on first use, as _AT


def _check_notify(values: NotifySection, where: Path | str) -> None:
    """Event names are known; each URL is an apprise URL (``scheme://...``), told without its credentials."""
    for name in values.on:
        if name not in NOTIFY_EVENTS:
            hint = _did_you_mean(name, NOTIFY_EVENTS)
            raise ConfigError(
                f"{where}: [notify] on names an unknown event {_toml(name)}{hint}; the events are "
                + ", ".join(NOTIFY_EVENTS)
            )
    for i, url in enumerate(values.urls):
        if not re.match(_APPRISE_URL, url.strip()):
            shown = url.split("://", 1)[0] + "://..." if "://" in url else "a text without scheme://"
            raise ConfigError(
                f"{where}: [notify] urls[{i}] must be an apprise URL such as mailto://you@example.com "
                f"or json://host/path, got {shown}"
            )


def _check_import(values: ImportSection, where: Path | str) -> None:
    """``[import] paths`` holds no empty path: relative to the home, ``""`` would be the whole workspace."""
    for i, text in enumerate(values.paths):
        if not text.strip():
            raise ConfigError(
                f"{where}: [import] paths[{i}] is empty; name a file or folder (relative ones are taken from the home)"
            )


def _check_run(values: RunSection, where: Path | str) -> None:
    """``[run] steps`` names known steps, each once."""
    for name in values.steps:
        if name not in RUN_STEPS:
            hint = _did_you_mean(name, RUN_STEPS)
            raise ConfigError(
                f"{where}: [run] steps names an unknown step {_toml(name)}{hint}; the steps are " + ", ".join(RUN_STEPS)
            )
    twice = sorted({n for n in values.steps if values.steps.count(n) > 1})
    if twice:
        raise ConfigError(f"{where}: [run] steps names {', '.join(map(_toml, twice))} more than once")


def _check_display(values: DisplaySection, where: Path | str) -> None:
    """``[display] timezone`` is a zone this machine can open: a wrong name fails here, before any work,
    never when a report is printed after a save."""
    name = values.timezone
    if name is None:
        return
    from healthcache import zone

    why = zone.problem(name)
    if why is not None:
        raise ConfigError(f"{where}: [display] timezone {_toml(name)} {why}")


def _to_config(parsed: ConfigFile, where: Path | str) -> Config:
    pref = parsed.merge.preference
    # The normalisers' registry is imported only for a name outside the defaults (known sources all).
    known = known_sources() if not set(pref) <= set(DEFAULT_PREFERENCE) else DEFAULT_PREFERENCE
    for name in pref:
        if name not in known:
            hint = _did_you_mean(name, known)
            raise ConfigError(
                f"{where}: [merge] preference names an unknown source {_toml(name)}{hint}; "
                f"the sources are {', '.join(known)}"
            )
    twice = sorted({n for n in pref if pref.count(n) > 1})
    if twice:
        raise ConfigError(f"{where}: [merge] preference names {', '.join(map(_toml, twice))} more than once")
    b = parsed.backups
    retention = RetentionPolicy(b.keep_last, b.keep_daily, b.keep_weekly, b.keep_monthly)
    if not any((b.keep_last, b.keep_daily, b.keep_weekly, b.keep_monthly)):
        raise ConfigError(
            f"{where}: [backups] keep_last, keep_daily, keep_weekly and keep_monthly are all 0: "
            "every backup but the newest would be pruned; set at least one"
        )
    s = parsed.sync
    cid = s.strava_client_id.strip() if isinstance(s.strava_client_id, str) else s.strava_client_id
    sync = SyncConfig(
        min_interval_minutes=s.min_interval_minutes,
        active_interval_minutes=s.active_interval_minutes,
        quiet_interval_minutes=s.quiet_interval_minutes,
        max_interval_minutes=s.max_interval_minutes,
        active_days=s.active_days,
        garmin_api_base=s.garmin_api_base,
        garmin_sso_url=s.garmin_sso_url,
        garmin_token_url=s.garmin_token_url,
        strava_api_host=s.strava_api_host,
        strava_client_id=str(cid) if cid not in (None, "") else None,
    )
    return Config(
        preference=pref,
        retention=retention,
        sync=sync,
        export=ExportConfig(targets=parsed.export.targets, postgres_url=parsed.export.postgres_url),
        notify=NotifyConfig(urls=tuple(u.strip() for u in parsed.notify.urls), on=parsed.notify.on),
        imports=ImportConfig(paths=parsed.import_.paths),
        run=RunConfig(steps=parsed.run.steps, backfill_limit=parsed.run.backfill_limit),
        display=DisplayConfig(timezone=parsed.display.timezone),
    )
