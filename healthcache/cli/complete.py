"""Shell completion of backup names and activity ids (click's ``shell_complete=`` callbacks).

Each callback finds the workspace as every command does (``--home`` given
earlier on the line, else ``$HEALTHCACHE_HOME``, else the workspace the current
folder is in, else the per-user one: ``config.Paths.resolve``), reads only what
it offers, and writes nothing: no workspace is created, no state file touched.
Any trouble (no workspace, a missing, unreadable or corrupt cache) completes
nothing, silently: a traceback printed into someone's prompt helps nobody, and
the command itself will say what is wrong when it runs.

The matching is pure (``backup_choices``, ``activity_choices``); the callbacks
are the I/O around it.  Only the fields completion shows are decoded from the
cache (``_Brief``); msgspec skips the rest unbuilt.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click
import msgspec

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem

    from healthcache.backup import BackupInfo
    from healthcache.config import Paths

# The states `diff` takes besides a backup, with what each means.
STATES: dict[str, str] = {
    "latest": "the newest backup that differs from the cache now",
    "current": "the cache as it is now",
    "baseline": "the recorded counts (healthcache verify --baseline)",
}


class _Brief(msgspec.Struct):
    """What completion shows of an activity; every other field of the cache is skipped."""

    id: str
    start_time: str
    sport: str = ""
    start_time_local: str | None = None
    name: str | None = None
    aliases: list[str] = []
    source_ids: dict[str, str] = {}


class _Briefs(msgspec.Struct):
    activities: list[_Brief]


_decoder = msgspec.json.Decoder(_Briefs)


# --------------------------------------------------------------------------- pure matching


def backup_choices(backups: Iterable[BackupInfo], incomplete: str) -> list[tuple[str, str]]:
    """(name, help) of each backup ``incomplete`` starts: its file name, or its stamp or hash as
    ``diff`` accepts them (``2024`` finds ``unified-cache-20240519T...``); newest first, as listed."""
    from healthcache.backup import PREFIX

    out: list[tuple[str, str]] = []
    for info in backups:
        stamp = info.name.removeprefix(PREFIX)
        if info.name.startswith(incomplete) or stamp.startswith(incomplete) or info.digest.startswith(incomplete):
            when = info.when.strftime("%Y-%m-%d %H:%M:%SZ")
            out.append((info.name, f"{when}{' compressed' if info.compressed else ''}"))
    return out


def _when(brief: _Brief) -> str:
    """``YYYY-MM-DD HH:MM`` where the workout happened, as ``list`` shows it (Z: UTC, no local time known)."""
    if brief.start_time_local:
        return brief.start_time_local[:16].replace("T", " ")
    return brief.start_time[:16].replace("T", " ") + "Z"


def _described(brief: _Brief) -> str:
    return " ".join(part for part in (_when(brief), brief.sport, brief.name or "") if part)


def activity_choices(briefs: Sequence[_Brief], incomplete: str) -> list[tuple[str, str]]:
    """(value, help) of each activity ``incomplete`` starts, newest first as ``list`` prints them.

    Hex digits (or nothing) complete the short ids ``list`` shows; text with a colon
    completes the full keys every ID-taking command also accepts (id, alias,
    ``source:source_id``).
    """
    from healthcache.lookup import short_ids

    newest_first = list(reversed(briefs))
    if ":" in incomplete:
        out: list[tuple[str, str]] = []
        for b in newest_first:
            keys = dict.fromkeys([b.id, *b.aliases, *(f"{s}:{i}" for s, i in b.source_ids.items())])
            out.extend((key, _described(b)) for key in keys if key.startswith(incomplete))
        return out
    prefix = incomplete.lower()
    shorts = short_ids((b.id for b in briefs), (a for b in briefs for a in b.aliases))
    return [(shorts[b.id], _described(b)) for b in newest_first if shorts[b.id].startswith(prefix)]


# --------------------------------------------------------------------------- the callbacks


def given_home(ctx: click.Context) -> str | None:
    """``--home`` as given so far on the line: the command's own, else the group's (the command's wins)."""
    here: click.Context | None = ctx
    while here is not None:
        home = here.params.get("home")
        if isinstance(home, str) and home:
            return home
        here = here.parent
    return None


def _paths(ctx: click.Context) -> Paths:
    from healthcache.config import Paths

    return Paths.resolve(given_home(ctx))


def _items(pairs: Iterable[tuple[str, str]]) -> list[CompletionItem]:
    # Imported here, not with the module: the commands that import this one run far more often than completion.
    from click.shell_completion import CompletionItem

    return [CompletionItem(value, help=why) for value, why in pairs]


def _file(incomplete: str) -> list[CompletionItem]:
    """Ask the shell to complete a path (restore and diff take a backup's path too)."""
    from click.shell_completion import CompletionItem

    return [CompletionItem(incomplete, type="file")]


def _safely(offer: Callable[[], list[CompletionItem]]) -> list[CompletionItem]:
    """What ``offer`` finds; nothing when anything goes wrong (a bad --home, a corrupt cache, an unreadable
    folder): completion must never print a traceback into the user's prompt."""
    try:
        return offer()
    except Exception:
        return []


def _looks_like_path(incomplete: str) -> bool:
    return incomplete.startswith(("/", ".", "~")) or os.sep in incomplete


def complete_backup(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """``restore BACKUP``: the backups of the resolved workspace (a path typed is completed by the shell)."""
    if _looks_like_path(incomplete):
        return _file(incomplete)

    def offer() -> list[CompletionItem]:
        from healthcache.backup import list_backups

        backups = list_backups(_paths(ctx).backups)
        return _items(backup_choices(backups, incomplete))

    return _safely(offer)


def complete_state(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """``diff [A [B]]``: latest, current, baseline, then the backups of the resolved workspace."""
    if _looks_like_path(incomplete):
        return _file(incomplete)
    states = _items((name, why) for name, why in STATES.items() if name.startswith(incomplete))
    return states + complete_backup(ctx, param, incomplete)


def read_briefs(cache: Path) -> list[_Brief]:
    """The activities of the cache file, only the fields completion shows (raises on a corrupt file)."""
    return _decoder.decode(cache.read_bytes()).activities


def complete_activity(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """``show ID``, ``delete ID``, ``link A B``, ``unlink A B``: short ids with the date, sport and name."""

    def offer() -> list[CompletionItem]:
        briefs = read_briefs(_paths(ctx).cache)
        return _items(activity_choices(briefs, incomplete))

    return _safely(offer)
