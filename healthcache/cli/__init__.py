"""The ``healthcache`` command: parse arguments, call one library function, render.

Commands live in modules of this package and are imported only when run, so
``healthcache --help`` stays fast and never loads a heavy client.  ``main`` is
the one place where outcomes become an exit status: a command reports its
result's failures (``ctx.fail``), an exception ends it, and ``main`` renders
both (stderr, or one JSON object on stdout under ``--json``) and asks
``outcome.exit_status`` for the code.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import os
import sys
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from functools import wraps
from typing import TYPE_CHECKING, Any

import click
import msgspec

from healthcache import __version__, notices
from healthcache.errors import EXIT_CODES, CorruptInput, HealthcacheError
from healthcache.outcome import Failure, Outcome, exit_status, failure_of, json_failure

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem

# name -> (module:attribute, one-line help shown by `healthcache --help`)
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("healthcache.cli.init_cmds:init", "Make a folder a workspace and say what to do next."),
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
    "report": (
        "healthcache.cli.report_cmds:report",
        "Write an offline HTML report of your data's health and training.",
    ),
    "list": ("healthcache.cli.view_cmds:list_", "List activities, newest first, with their short ids."),
    "show": (
        "healthcache.cli.view_cmds:show",
        "Show one activity: every field, its sources, HR splits, how it was joined.",
    ),
    "stats": ("healthcache.cli.view_cmds:stats", "Totals per week, month or year and sport, with HR coverage."),
    "diff": ("healthcache.cli.view_cmds:diff", "Show what changed between two states of the cache (backups, current)."),
    "rebuild": (
        "healthcache.cli.view_cmds:rebuild",
        "Re-derive every activity from its kept raw payloads (asks first).",
    ),
    "run": (
        "healthcache.cli.daily_cmds:run",
        "The daily job: sync, import the watched paths, backfill-hr, verify, export; one report.",
    ),
    "log": ("healthcache.cli.run_cmds:log", "Show the recent runs of writing commands, newest first."),
    "cron": ("healthcache.cli.run_cmds:cron", "Install, show or remove the daily job (crontab or systemd timer)."),
    "notify": ("healthcache.cli.run_cmds:notify", "Send a test notification to every [notify] URL."),
}

# Commands whose every run is recorded in the history (and may notify): those that write, and verify.
RECORDED = frozenset(
    {"sync", "import", "backfill-hr", "delete", "link", "unlink", "restore", "verify", "rebuild", "backups prune"}
    | {"run", "notify"}
)
# Commands that write into the home: run where no workspace is found, they create the per-user one and say so.
WRITES_HOME = RECORDED | {"auth"}


def no_such_command(name: str, known: Iterable[str]) -> str:
    """The message for a mistyped command, with the nearest names (difflib, as click does for subcommands);
    a name with the same letters (two swapped: "stauts") comes first."""
    import difflib  # only for a name that is not a command

    near = difflib.get_close_matches(name, sorted(known), n=3, cutoff=0.7)
    near.sort(key=lambda candidate: sorted(candidate) != sorted(name))  # stable: difflib's order otherwise
    if not near:
        return f"No such command {name!r}. See 'healthcache --help' for the commands."
    return f"No such command {name!r}. Did you mean " + " or ".join(repr(n) for n in near) + "?"


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

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as exc:
            name = click.utils.make_str(args[0]) if args else ""
            if not name or name in COMMANDS or name.startswith("-"):
                raise
            raise click.UsageError(no_such_command(name, COMMANDS), ctx) from exc

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[CompletionItem]:
        # Names and help from the table, so completing a command name imports no command module
        # (click's Group would import each one for its short help); the options as click completes them.
        from click.shell_completion import CompletionItem

        found = [CompletionItem(n, help=COMMANDS[n][1]) for n in sorted(COMMANDS) if n.startswith(incomplete)]
        return found + click.Command.shell_complete(self, ctx, incomplete)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Help from the table above, so `--help` imports no command module.
        with formatter.section("Commands"):
            formatter.write_dl([(name, COMMANDS[name][1]) for name in sorted(COMMANDS)])


# (msgspec Structs rather than dataclasses: built in C at import, where a dataclass runs generated code.)
class Ctx(msgspec.Struct):
    """What every command gets: the workspace and how to talk to the user."""

    home: str | None
    as_json: bool
    quiet: bool
    lock_timeout: float | None
    verbose: bool = False  # -v: every file, each phase's time, each record's outcome
    failures: list[Failure] = msgspec.field(default_factory=list)
    deferred: bool = False  # under ``main``: the --json result is printed by main, once
    result: Any = None
    accept_outside_edits: bool = False  # set by --accept-outside-edits on commands that write
    command: str = ""  # "sync", "backups prune": what the history records
    data: Any = None  # the command's result as emitted (the history takes its per-step figures)
    steps: list[Any] | None = None  # history.Step per step, for a command that fills them itself
    deliveries: list[Any] = msgspec.field(default_factory=list)  # history.Delivery of notifications the command sent
    _paths: Any = None
    _config: tuple[Any, Any] | None = None  # (the file's stat key, the Config read from it)

    @property
    def paths(self) -> Any:
        """The home, resolved once per run (``config.choose_home``: --home, env, enclosing workspace, per-user)."""
        if self._paths is None:
            from healthcache.config import Paths

            self._paths = Paths.resolve(self.home)
        return self._paths

    def config(self) -> Any:
        """The workspace's configuration: read once per command, and again only if its file changed."""
        from healthcache.config import Config

        key = _stat_key(self.paths.config_file)
        if self._config is None or key is None or self._config[0] != key:
            config = Config.load(self.paths)
            self._config = (key, config)
        return self._config[1]

    def store(self) -> Any:
        from healthcache.store import Store

        return Store(
            self.paths,
            self.config(),
            accept_outside_edits=self.accept_outside_edits,
            on_outside=self.on_outside_edit,
        )

    def on_outside_edit(self, edit: Any) -> None:
        """A writing command goes on over a cache changed outside healthcache: say so."""
        if edit.lost:
            self.warn(f"{edit.describe()}\nkept as it is (--accept-outside-edits)")
        else:
            self.say(edit.describe())

    def say(self, text: str) -> None:
        """Human output; silent under --quiet and --json."""
        if not self.quiet and not self.as_json:
            click.echo(text)

    def warn(self, text: str) -> None:
        """Trouble: always shown, on stderr, even under --quiet."""
        click.echo(text, err=True)

    def emit(self, data: Any, text: str | Callable[[], str]) -> None:
        """The command's result: JSON under --json, otherwise text (unless --quiet)."""
        self.data = data
        if self.as_json:
            if self.deferred:
                self.result = data  # main prints it, with the failures if any
            else:
                click.echo(_dumps(data))
        elif not self.quiet:
            click.echo(text() if callable(text) else text)

    def fail(self, failures: Iterable[Failure]) -> None:
        """Report what went wrong; ``main`` prints it and decides the exit status."""
        self.failures.extend(failures)

    def on_lock_wait(self, holder: str | None) -> None:
        self.warn(f"waiting for the write lock held by {'pid ' + holder if holder else 'another process'} ...")

    def transaction(self, store: Any, **kwargs: Any) -> Any:
        return store.transaction(lock_timeout=self.lock_timeout, on_wait=self.on_lock_wait, **kwargs)


def _stat_key(path: Any) -> tuple[int, int, int, int] | None:
    """The configuration file's version (``state.file_key``); absent is one too (the defaults, until
    it appears); None when it cannot be known."""
    from healthcache.state import file_key

    try:
        return file_key(path) or (0, 0, 0, 0)
    except OSError:
        return None


def _default_lock_timeout(quiet: bool) -> float | None:
    # A cron run (quiet, or no terminal) gives up at once; a person waits and is told who holds it.
    interactive = sys.stdin is not None and sys.stdin.isatty()
    return 0.0 if quiet or not interactive else 600.0


HOME_HELP = (
    "Workspace folder (default: $HEALTHCACHE_HOME, else the workspace the current folder is in, "
    "else the per-user one; `healthcache paths` says which)."
)


def not_empty(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """A click callback: an empty argument is a usage error (exit 2).  As a path, ``""`` is the current
    folder; it is what ``"$(...)"`` gives when the command inside printed nothing."""
    if value == "" or (isinstance(value, tuple) and "" in value):
        raise click.BadParameter(
            'an empty value was given (""): a command substitution such as "$(...)" gives one when the command '
            "inside prints nothing",
            ctx,
            param,
        )
    return value


def _global_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The options every command takes, before or after its name (the group declares them too)."""
    func = click.option(
        "--lock-timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="Wait this long for the write lock (default: 0 under cron/--quiet, 600 at a terminal).",
    )(func)
    func = click.option("--quiet", "-q", is_flag=True, help="Print only on trouble (for cron).")(func)
    func = click.option(
        "--verbose", "-v", is_flag=True, help="Show more: every file and record, and each phase's time."
    )(func)
    func = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")(func)
    return click.option("--home", type=click.Path(file_okay=False), callback=not_empty, help=HOME_HELP)(func)


def _options_given(
    here: click.Context, home: str | None, as_json: bool, quiet: bool, lock: float | None, verbose: bool = False
) -> Ctx:
    """One Ctx from the command's options and its groups' (``healthcache --home H cron show``, ``healthcache
    cron --home H show``); the nearest given wins."""
    groups: list[dict[str, Any]] = []
    parent = here.parent
    while parent is not None:
        groups.append(parent.params)
        parent = parent.parent

    def given(name: str, value: Any) -> Any:
        return next((g[name] for g in groups if g.get(name) is not None), None) if value is None else value

    home, lock = given("home", home), given("lock_timeout", lock)
    quiet = quiet or any(g.get("quiet") for g in groups)
    timeout = lock if lock is not None else _default_lock_timeout(quiet)
    as_json = as_json or any(g.get("as_json") for g in groups)
    verbose = verbose or any(g.get("verbose") for g in groups)
    return Ctx(home=home, as_json=as_json, quiet=quiet, lock_timeout=timeout, verbose=verbose)


def group_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The global options on a group of commands too (``cron``, ``backups``, ``export``): its commands
    take them from there, as they take the top level's."""

    @_global_options
    @wraps(func)
    def wrapper(*args: Any, home: str | None, as_json: bool, quiet: bool, verbose: bool, **kwargs: Any) -> Any:
        kwargs.pop("lock_timeout", None)
        return func(*args, **kwargs)

    return wrapper


def _ctx_options(func: Callable[..., Any], *, workspace: bool) -> Callable[..., Any]:
    @_global_options
    @wraps(func)
    def wrapper(
        *args: Any,
        home: str | None,
        as_json: bool,
        quiet: bool,
        verbose: bool,
        lock_timeout: float | None,
        **kwargs: Any,
    ) -> Any:
        here = click.get_current_context()
        ctx = _options_given(here, home, as_json, quiet, lock_timeout, verbose)
        ctx.command = " ".join(here.command_path.split()[1:])
        run = _RUN.get()
        if run is not None:
            run.ctx = ctx
            ctx.deferred = True
        if workspace:
            _per_user_home(ctx)
            ctx.config()  # the configuration is validated before any command reads or writes anything
        return func(*args, ctx=ctx, **kwargs)

    return wrapper


def common_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--home, --json, --quiet and --lock-timeout on every command; passes ``ctx: Ctx``."""
    return _ctx_options(func, workspace=True)


def workspace_free_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The same options for a command that resolves no home (``init`` makes one)."""
    return _ctx_options(func, workspace=False)


def _per_user_home(ctx: Ctx) -> None:
    """Where no workspace was named or found, a writing command uses the per-user one: made if need be, and said.

    The home resolution never picks a folder that is not a workspace, so this is the
    only place a workspace appears without ``init``; a read-only command creates nothing
    (``paths`` says which rule chose the home).
    """
    from healthcache.config import BY_DEFAULT, workspace_marker

    paths = ctx.paths
    if paths.rule != BY_DEFAULT or ctx.command not in WRITES_HOME:
        return
    created = ""
    if workspace_marker(paths.home) is None:
        from healthcache.workspace import init

        init(paths.home, private=not paths.home.exists())
        created = " (created)"
    if not ctx.quiet:
        click.echo(
            f"using the per-user workspace {paths.home}{created}: no workspace here or above "
            "(healthcache init makes one; --home names one)",
            err=True,
        )


def writes_cache(func: Callable[..., Any]) -> Callable[..., Any]:
    """--accept-outside-edits on a command that saves the cache (place it below ``common_options``)."""

    @click.option(
        "--accept-outside-edits",
        is_flag=True,
        help="Save even though the cache lost data through an edit outside healthcache (the loss is kept).",
    )
    @wraps(func)
    def wrapper(*args: Any, ctx: Ctx, accept_outside_edits: bool, **kwargs: Any) -> Any:
        ctx.accept_outside_edits = accept_outside_edits
        return func(*args, ctx=ctx, **kwargs)

    return wrapper


def quiet_client_logs() -> None:
    """The clients log warnings and tracebacks of failures we report ourselves, once and
    without secrets; keep them off the terminal (a cron mail should be our message)."""
    import logging

    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.NullHandler())
    for name in ("garminconnect", "stravalib"):
        logger = logging.getLogger(name)
        logger.propagate = False
        if not logger.handlers:
            logger.addHandler(logging.NullHandler())


def refresh_mirrors(ctx: Ctx) -> list[Failure]:
    """After a sync or import: refresh the ``[export] targets``; the failures, if any.

    The save already happened; a failing export is reported and leaves that
    mirror as it was, but never undoes or hides the save.
    """
    config = ctx.config()
    if not config.export.targets:
        return []
    from healthcache.export.core import run_configured_exports

    failures: list[Failure] = []
    for outcome in run_configured_exports(ctx.paths, config):
        if outcome.error or outcome.report is None:
            failures.append(
                Failure(
                    Outcome.of_code(outcome.exit_code or 1),
                    f"export: {outcome.error}",
                    hint="The save stands; only that mirror was left as it was.",
                )
            )
        else:
            ctx.say(f"export {outcome.target}: {outcome.report.human()}")
    return failures


def _epilog() -> str:
    return "Exit codes: " + "; ".join(f"{code} {text}" for code, text in EXIT_CODES.items())


@click.group(cls=LazyGroup, epilog=_epilog(), context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="healthcache")
@_global_options
def cli(home: str | None, as_json: bool, quiet: bool, verbose: bool, lock_timeout: float | None) -> None:
    """Keep every workout from Garmin, Strava, Polar, Apple Health and your files
    in one guarded, de-duplicated local JSON file.

    The options go before or after the command (`healthcache --home ~/training status`);
    given on both sides, the command's own value wins.
    """


def corrupt_hint(exc: CorruptInput) -> str | None:
    """For a corrupt cache: the newest backup that loads, and the command to restore it."""
    from healthcache.config import Paths
    from healthcache.restore import restore_advice

    home = os.environ.get("HEALTHCACHE_HOME")
    try:
        paths = Paths(exc.path.parent.parent) if exc.path.name == "unified-cache.json" else Paths.resolve(home)
        if exc.path != paths.cache:
            return None
        return restore_advice(paths)
    except HealthcacheError:
        return None


class _Run(msgspec.Struct):
    """One ``main`` call: the command's context, once its options are parsed."""

    argv: list[str]
    ctx: Ctx | None = None

    @property
    def as_json(self) -> bool:
        if self.ctx is not None:
            return self.ctx.as_json
        # The options did not parse (or failed while parsing): look for the flag ourselves.
        args = self.argv[: self.argv.index("--")] if "--" in self.argv else self.argv
        return "--json" in args


_RUN: ContextVar[_Run | None] = ContextVar("healthcache_run", default=None)


def _dumps(data: Any) -> str:
    import json  # only for --json output

    return json.dumps(data, indent=2, default=str)


def _failure_of(exc: BaseException) -> Failure:
    """``outcome.failure_of``, plus what only the CLI knows: click's errors and the restore hint."""
    if isinstance(exc, click.exceptions.Abort):
        if isinstance(exc.__context__, KeyboardInterrupt):
            return failure_of(exc.__context__)
        return Failure(Outcome.ERROR, "aborted")
    if isinstance(exc, click.ClickException):
        return Failure(Outcome.USAGE, exc.format_message())
    failure = failure_of(exc)
    if isinstance(exc, CorruptInput) and exc.hint is None:
        hint = corrupt_hint(exc)
        if hint:
            failure = Failure(failure.outcome, failure.message, hint=hint, fields=failure.fields)
    return failure


def _render(run: _Run, failures: list[Failure], code: int, raised: BaseException | None) -> None:
    """Print the run's end: the --json object (always exactly one), or the failures on stderr."""
    ctx = run.ctx
    if run.as_json:
        base = ctx.result if ctx is not None and raised is None else None
        if not code:
            if base is not None:
                click.echo(_dumps(base))
            return
        if base is not None and not isinstance(base, dict):
            base = {"result": base}
        click.echo(_dumps(json_failure(failures, code, base)))
        return
    if isinstance(raised, click.ClickException):
        raised.show()
        return
    for failure in failures:
        click.echo(f"error: {failure.message}", err=True)
        if failure.hint:
            click.echo(failure.hint, err=True)


def _conclude(run: _Run, failures: list[Failure], code: int, started: Any) -> None:
    """Record a finished command in the history and send its notifications.

    The one place both happen, after the outcome is known.  Neither can change
    the exit status or what was saved: their own trouble is a warning on stderr,
    printed after the command's own messages, so a loss is never hidden by it.
    """
    ctx = run.ctx
    if ctx is None or ctx.command not in RECORDED:
        return
    from datetime import UTC, datetime

    from healthcache import history, notify
    from healthcache.config import Config

    try:
        paths = ctx.paths
        config: Config = ctx.config()
    except (HealthcacheError, OSError):
        return  # refused before it read or wrote anything (bad configuration): it writes no record either
    argv = run.argv[run.argv.index(ctx.command.split()[0]) + 1 :] if ctx.command.split()[0] in run.argv else []
    record = history.record_of(
        command=ctx.command,
        args=argv,
        started=started,
        ended=datetime.now(UTC),
        code=code,
        failures=failures,
        data=ctx.data,
        steps=ctx.steps,
    )
    record.notifications = list(ctx.deliveries)
    try:
        problems = notify.conclude(paths, config, record).problems
    except Exception as exc:  # the history and notifications never fail a command that has finished
        problems = [f"recording or notifying this run failed: {type(exc).__name__}: {history.redact(str(exc))}"]
    for problem in problems:
        click.echo(f"warning: {problem}", err=True)


def _notice(text: str) -> None:
    """A library notice (``healthcache.notices``): a line on stderr, beside the command's own messages."""
    click.echo(text, err=True)


def main(argv: list[str] | None = None) -> int:
    """Run one command; the only place that decides the exit status (``outcome.exit_status``)."""
    # One command per process, working on millions of long-lived, acyclic
    # objects: the cycle collector would only walk them again and again.
    gc.disable()
    from datetime import UTC, datetime

    started = datetime.now(UTC)
    args = list(sys.argv[1:] if argv is None else argv)
    run = _Run(args)
    token = _RUN.set(run)
    raised: BaseException | None = None
    try:
        try:
            with notices.listening(_notice):
                cli.main(args=args, prog_name="healthcache", standalone_mode=False)
        except click.exceptions.Exit as exc:  # --help, --version
            return exc.exit_code
        except BrokenPipeError:
            return int(Outcome.ERROR)  # the reader went away: nobody to tell
        except (HealthcacheError, OSError, click.ClickException, click.exceptions.Abort, KeyboardInterrupt) as exc:
            raised = exc
        failures = [_failure_of(raised)] if raised is not None else list(run.ctx.failures if run.ctx else [])
        code = exit_status(failures)
        with contextlib.suppress(BrokenPipeError):
            _render(run, failures, code, raised)
        with contextlib.suppress(BrokenPipeError):
            _conclude(run, failures, code, started)
        return code
    except KeyboardInterrupt:  # a second Ctrl-C while reporting the first
        return int(Outcome.INTERRUPTED)
    finally:
        _RUN.reset(token)
        gc.enable()


def run() -> None:
    sys.exit(main())
