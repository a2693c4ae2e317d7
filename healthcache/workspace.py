"""``healthcache init``: make a folder a workspace, and nothing else.

A workspace is a folder with ``healthcache.toml`` (or a cache): that is what the
home resolution (``config.choose_home``) looks for, so a command run anywhere
else never writes there.  ``plan`` decides from what is on disk what to create
(pure, with the reason for each step or for refusing); ``init`` looks, plans and
creates.  It never replaces a file: an existing ``healthcache.toml`` is a
refusal (nothing written), an existing cache and its folders are kept as they
are, an existing ``.gitignore`` only gains the lines it lacks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from healthcache import atomic
from healthcache.config import CONFIG_NAME, DEFAULT_PREFERENCE, NOTIFY_EVENTS, RetentionPolicy, SyncConfig
from healthcache.errors import UsageError

FOLDERS: tuple[str, ...] = ("tracking", "backups")
GITIGNORE = ".gitignore"
# Personal data and credentials: a workspace kept in git (for its config) must never commit them.
IGNORED: tuple[str, ...] = ("tracking/", "backups/", ".credentials/")


def _toml_list(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(f'"{v}"' for v in values) + "]"


_R = RetentionPolicy()
_S = SyncConfig()
# Every key commented out at its default: the file loads as it is, and uncommenting a line is valid TOML
# with the value healthcache already uses (tests/test_init.py loads it both ways).
CONFIG_TEMPLATE = f"""\
# healthcache settings. Every key is commented out at its default: uncomment a line to change it.
# The file is checked strictly: a misspelt section or key is refused with a message naming it.

# [merge]
# Which source's value wins when records of one workout disagree, first wins.
# preference = {_toml_list(DEFAULT_PREFERENCE)}

# [backups]
# Kept after every save (borg-style): the newest N, then one per day, week and month.
# keep_last = {_R.keep_last}
# keep_daily = {_R.keep_daily}
# keep_weekly = {_R.keep_weekly}
# keep_monthly = {_R.keep_monthly}

# [sync]
# A sync (e.g. from cron) within this many minutes of the last one asks no source again.
# min_interval_minutes = {_S.min_interval_minutes:g}
# Your own Strava API application's client id (https://www.strava.com/settings/api).
# strava_client_id = 12345

# [export]
# Mirrors refreshed after every sync or import.
# targets = ["sqlite:mirror.db"]
# postgres_url = "postgresql://user@localhost/healthcache"

# [notify]
# Where to say that something went wrong (apprise URLs: mail, ntfy, Slack, Telegram, webhooks...).
# urls = ["mailto://you@example.com"]
# on = {_toml_list(NOTIFY_EVENTS)}

# [display]
# The time zone times are shown in (an IANA name); without it, this machine's zone.
# timezone = "Europe/Berlin"
"""

GITIGNORE_TEXT = "# healthcache: personal data and credentials stay out of version control\n" + "".join(
    f"{line}\n" for line in IGNORED
)


@dataclass(frozen=True)
class Found:
    """What is in the folder now (``look``), all ``plan`` needs to decide."""

    home: Path
    home_kind: Literal["missing", "folder", "other"]
    config_exists: bool
    folders: frozenset[str]  # of FOLDERS, those present as folders
    not_folders: frozenset[str]  # of FOLDERS, names taken by something else
    gitignore: str | None  # its text, when there is one
    cache_exists: bool


@dataclass(frozen=True)
class Step:
    """One thing to create, and why."""

    name: str  # relative to the home ("." for the home itself)
    action: Literal["mkdir", "write", "append"]
    data: bytes = b""
    mode: int | None = None
    why: str = ""


@dataclass(frozen=True)
class Plan:
    home: Path
    steps: tuple[Step, ...] = ()
    kept: tuple[str, ...] = ()
    refused: str | None = None  # why nothing may be done
    hint: str | None = None


def plan(found: Found, *, private: bool = False) -> Plan:
    """What ``init`` creates in ``found.home``, or why it refuses (pure).

    ``private``: the home is created 0700 (the per-user default, made without being asked for).
    """
    home = found.home
    if found.home_kind == "other":
        return Plan(home, refused=f"{home} exists and is not a folder", hint="Choose another folder.")
    if found.config_exists:
        return Plan(
            home,
            refused=f"{home} is already a workspace: {home / CONFIG_NAME} exists; nothing was changed",
            hint=f"Edit {CONFIG_NAME} to change the settings, or move it aside and run init again to start over.",
        )
    if found.not_folders:
        taken = ", ".join(sorted(found.not_folders))
        return Plan(home, refused=f"{home}: {taken} exists and is not a folder", hint="Move it aside and run again.")
    steps: list[Step] = []
    kept: list[str] = []
    if found.home_kind == "missing":
        steps.append(Step(".", "mkdir", mode=0o700 if private else None, why="the workspace"))
    for name in FOLDERS:
        if name in found.folders:
            kept.append(f"{name}/")
        else:
            steps.append(Step(name, "mkdir", why="the cache" if name == "tracking" else "backups of every saved state"))
    if found.cache_exists:
        kept.append("tracking/unified-cache.json")
    steps.append(Step(CONFIG_NAME, "write", CONFIG_TEMPLATE.encode(), 0o600, "the settings, every key at its default"))
    if found.gitignore is None:
        steps.append(Step(GITIGNORE, "write", GITIGNORE_TEXT.encode(), 0o644, "personal data stays out of git"))
    else:
        have = {line.strip() for line in found.gitignore.splitlines()}
        missing = [line for line in IGNORED if line not in have and line.rstrip("/") not in have]
        if missing:
            text = found.gitignore + ("" if found.gitignore.endswith("\n") or not found.gitignore else "\n")
            text += "".join(f"{line}\n" for line in missing)
            steps.append(Step(GITIGNORE, "append", text.encode(), None, "ignores " + ", ".join(missing)))
        else:
            kept.append(GITIGNORE)
    return Plan(home, tuple(steps), tuple(kept))


def look(home: Path) -> Found:
    """Read what ``plan`` needs from the disk."""
    kind: Literal["missing", "folder", "other"] = (
        "folder" if home.is_dir() else "other" if os.path.lexists(home) else "missing"
    )
    folders = frozenset(n for n in FOLDERS if (home / n).is_dir())
    taken = frozenset(n for n in FOLDERS if n not in folders and os.path.lexists(home / n))
    try:
        gitignore: str | None = (home / GITIGNORE).read_text(encoding="utf-8")
    except FileNotFoundError:
        gitignore = None
    except NotADirectoryError:
        gitignore = None  # the home is not a folder: plan refuses
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"{home / GITIGNORE}: not UTF-8 text; nothing was changed", hint="Fix or move that file, then run again."
        ) from exc
    return Found(
        home=home,
        home_kind=kind,
        config_exists=os.path.lexists(home / CONFIG_NAME),
        folders=folders,
        not_folders=taken,
        gitignore=gitignore,
        cache_exists=(home / "tracking" / "unified-cache.json").is_file(),
    )


@dataclass
class InitResult:
    home: Path
    created: list[str] = field(default_factory=list)  # "tracking/", "healthcache.toml", ".gitignore (appended)"
    kept: list[str] = field(default_factory=list)
    next_steps: list[tuple[str, str]] = field(default_factory=list)  # (command, what it does)

    def as_dict(self) -> dict[str, object]:
        return {
            "home": str(self.home),
            "created": self.created,
            "kept": self.kept,
            "next": [{"command": c, "does": d} for c, d in self.next_steps],
        }


def next_steps(home: Path, cwd: Path) -> list[tuple[str, str]]:
    """The commands to run next; with ``--home`` where the current folder would not find this workspace."""
    suffix = "" if cwd == home or cwd.is_relative_to(home) else f" --home {_quoted(home)}"
    return [
        (f"healthcache auth garmin{suffix}", "log in to Garmin Connect (or: auth strava), once"),
        (f"healthcache import PATH{suffix}", "import FIT/GPX/TCX files, folders and account exports"),
        (f"healthcache sync{suffix}", "fetch new activities from the sources you logged in to"),
        (f"healthcache cron install{suffix}", "run it every day"),
    ]


def _quoted(path: Path) -> str:
    import shlex

    return shlex.quote(str(path))


def apply(p: Plan) -> list[str]:
    """Create what the plan says, in order; each file through the atomic path. The names created."""
    done: list[str] = []
    for step in p.steps:
        target = p.home / step.name
        if step.action == "mkdir":
            target.mkdir(parents=True, exist_ok=step.name != ".")
            if step.mode is not None:
                target.chmod(step.mode)
            done.append("the folder" if step.name == "." else f"{step.name}/")
        else:
            atomic.save_atomic(target, step.data, mode=step.mode)
            done.append(step.name if step.action == "write" else f"{step.name} (appended)")
    return done


def init(home: Path, cwd: Path | None = None, *, private: bool = False) -> InitResult:
    """Make ``home`` a workspace; UsageError (nothing written) when it already is one or cannot be."""
    decided = plan(look(home), private=private)
    if decided.refused is not None:
        raise UsageError(decided.refused, hint=decided.hint)
    created = apply(decided)
    return InitResult(home, created, list(decided.kept), next_steps(home, cwd or Path.cwd()))
