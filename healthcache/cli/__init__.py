"""The ``healthcache`` command: parse arguments, call one library function, render.

Commands live in modules of this package and are imported only when run, so
``healthcache --help`` stays fast and never loads a heavy client.  ``main`` is
the one place where a ``HealthcacheError`` becomes a message and an exit code.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any

import click

from healthcache import __version__
from healthcache.errors import EXIT_CODES, EXIT_USAGE, CorruptInput, HealthcacheError

# name -> (module:attribute, one-line help shown by `healthcache --help`)
COMMANDS: dict[str, tuple[str, str]] = {
    "sync": ("healthcache.cli.sync_cmds:sync", "Fetch new activities from Garmin Connect and Strava and merge them."),
    "import": (
        "healthcache.cli.import_cmds:import_",
        "Import FIT/GPX/TCX files, account exports, Polar and Apple Health.",
    ),
    "backfill-hr": (
        "healthcache.cli.sync_cmds:backfill_hr",
        "Add per-km heart-rate splits to activities that lack them.",
    ),
    "auth": ("healthcache.cli.sync_cmds:auth", "Log in to Garmin Connect or Strava and keep the tokens."),
    "verify": ("healthcache.cli.store_cmds:verify", "Check the cache, its invariants, the baseline and the backups."),
    "restore": (
        "healthcache.cli.store_cmds:restore",
        "Restore the cache from a backup (refuses to drop data unless told).",
    ),
    "backups": ("healthcache.cli.store_cmds:backups", "List and prune backups."),
    "delete": ("healthcache.cli.store_cmds:delete", "Delete an activity explicitly, leaving a tombstone."),
    "status": ("healthcache.cli.store_cmds:status", "Summarise the cache, sources, backups and baseline."),
    "paths": ("healthcache.cli.store_cmds:paths", "Print every resolved path of the workspace."),
    "dupes": ("healthcache.cli.merge_cmds:dupes", "Show merged duplicates and why, and near misses."),
    "link": ("healthcache.cli.merge_cmds:link", "Declare two records the same workout."),
    "unlink": ("healthcache.cli.merge_cmds:unlink", "Declare two records distinct workouts and split them."),
    "export": ("healthcache.cli.export_cmds:export", "Mirror the cache into SQLite or PostgreSQL."),
    "report": ("healthcache.cli.report_cmds:report", "Write an offline HTML report of your data's health and training."),
    "list": ("healthcache.cli.view_cmds:list_", "List activities, newest first, with their short ids."),
    "show": ("healthcache.cli.view_cmds:show", "Show one activity: every field, its sources, HR splits, how it was joined."),
    "stats": ("healthcache.cli.view_cmds:stats", "Totals per week, month or year and sport, with HR coverage."),
    "diff": ("healthcache.cli.view_cmds:diff", "Show what changed between two states of the cache (backups, current)."),
    "rebuild": ("healthcache.cli.view_cmds:rebuild", "Re-derive every activity from its kept raw payloads (asks first)."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target[0].split(":")
        command = getattr(importlib.import_module(module_name), attr)
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Help from the table above, so `--help` imports no command module.
        with formatter.section("Commands"):
            formatter.write_dl([(name, COMMANDS[name][1]) for name in sorted(COMMANDS)])


@dataclass
class Ctx:
    """What every command gets: the workspace and how to talk to the user."""

    home: str | None
    as_json: bool
    quiet: bool
    lock_timeout: float | None

    @property
    def paths(self) -> Any:
        from healthcache.config import Paths

        return Paths.resolve(self.home)

    def config(self) -> Any:
        from healthcache.config import Config

        return Config.load(self.paths)

    def store(self) -> Any:
        from healthcache.store import Store

        return Store(self.paths, self.config())

    def say(self, text: str) -> None:
        """Human output; silent under --quiet and --json."""
        if not self.quiet and not self.as_json:
            click.echo(text)

    def warn(self, text: str) -> None:
        """Trouble: always shown, on stderr, even under --quiet."""
        click.echo(text, err=True)

    def emit(self, data: Any, text: str | Callable[[], str]) -> None:
        """The command's result: JSON under --json, otherwise text (unless --quiet)."""
        if self.as_json:
            click.echo(json.dumps(data, indent=2, default=str))
        elif not self.quiet:
            click.echo(text() if callable(text) else text)

    def on_lock_wait(self, holder: str | None) -> None:
        self.warn(f"waiting for the write lock held by {'pid ' + holder if holder else 'another process'} ...")

    def transaction(self, store: Any, **kwargs: Any) -> Any:
        return store.transaction(lock_timeout=self.lock_timeout, on_wait=self.on_lock_wait, **kwargs)


def _default_lock_timeout(quiet: bool) -> float | None:
    # A cron run (quiet, or no terminal) gives up at once; a person waits and is told who holds it.
    interactive = sys.stdin is not None and sys.stdin.isatty()
    return 0.0 if quiet or not interactive else 600.0


def common_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--home, --json, --quiet and --lock-timeout on every command; passes ``ctx: Ctx``."""

    @click.option(
        "--home",
        type=click.Path(file_okay=False),
        envvar="HEALTHCACHE_HOME",
        help="Workspace folder (default: $HEALTHCACHE_HOME, else the current folder).",
    )
    @click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
    @click.option("--quiet", "-q", is_flag=True, help="Print only on trouble (for cron).")
    @click.option(
        "--lock-timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="Wait this long for the write lock (default: 0 under cron/--quiet, 600 at a terminal).",
    )
    @wraps(func)
    def wrapper(
        *args: Any, home: str | None, as_json: bool, quiet: bool, lock_timeout: float | None, **kwargs: Any
    ) -> Any:
        timeout = lock_timeout if lock_timeout is not None else _default_lock_timeout(quiet)
        ctx = Ctx(home=home, as_json=as_json, quiet=quiet, lock_timeout=timeout)
        ctx.config()  # the configuration is validated before any command reads or writes anything
        return func(*args, ctx=ctx, **kwargs)

    return wrapper


def refresh_mirrors(ctx: Ctx) -> int:
    """After a sync or import: refresh the ``[export] targets``; 1 if one failed.

    The save already happened; a failing export is reported and leaves that
    mirror as it was, but never undoes or hides the save.
    """
    config = ctx.config()
    if not config.export.targets:
        return 0
    from healthcache.export.core import run_configured_exports

    status = 0
    for outcome in run_configured_exports(ctx.paths, config):
        if outcome.error or outcome.report is None:
            ctx.warn(f"export: {outcome.error}")
            status = 1
        else:
            ctx.say(f"export {outcome.target}: {outcome.report.human()}")
    return status


class Exit(Exception):
    """Raised by a command that finished but must report a non-zero status."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def _epilog() -> str:
    return "Exit codes: " + "; ".join(f"{code} {text}" for code, text in EXIT_CODES.items())


@click.group(cls=LazyGroup, epilog=_epilog(), context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="healthcache")
def cli() -> None:
    """Keep every workout from Garmin, Strava, Polar, Apple Health and your files
    in one guarded, de-duplicated local JSON file."""


def corrupt_hint(exc: CorruptInput) -> str | None:
    """For a corrupt cache: the newest backup that loads, and the command to restore it."""
    from healthcache.config import Paths

    home = os.environ.get("HEALTHCACHE_HOME")
    try:
        paths = Paths(exc.path.parent.parent) if exc.path.name == "unified-cache.json" else Paths.resolve(home)
        if exc.path != paths.cache:
            return None
        from healthcache.restore import newest_good_backup

        good = newest_good_backup(paths)
    except HealthcacheError:
        return None
    if good is None:
        return "No readable backup was found; the file was left untouched."
    return f"The newest good backup is {good}.\nRestore it with: healthcache restore --home {paths.home} {good.name}"


def main(argv: list[str] | None = None) -> int:
    # One command per process, working on millions of long-lived, acyclic
    # objects: the cycle collector would only walk them again and again.
    gc.disable()
    try:
        cli.main(args=argv, prog_name="healthcache", standalone_mode=False)
    except Exit as exc:
        return exc.code
    except CorruptInput as exc:
        click.echo(f"error: {exc}", err=True)
        hint = corrupt_hint(exc) if exc.hint is None else None
        if hint:
            click.echo(hint, err=True)
        return exc.exit_code
    except HealthcacheError as exc:
        click.echo(f"error: {exc}", err=True)
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 1
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code if exc.exit_code != 1 else EXIT_USAGE
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except BrokenPipeError:
        return 1
    except KeyboardInterrupt:
        click.echo("interrupted; nothing partial was written", err=True)
        return 130
    finally:
        gc.enable()
    return 0


def run() -> None:
    sys.exit(main())
