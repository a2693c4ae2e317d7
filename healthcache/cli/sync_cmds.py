"""``sync``, ``auth garmin|strava`` and ``backfill-hr``: parse, call the library, render."""

from __future__ import annotations

import sys
from typing import Any

import click

from healthcache.cli import Ctx, common_options, quiet_client_logs, refresh_mirrors, writes_cache
from healthcache.errors import UsageError
from healthcache.outcome import Failure, Outcome
from healthcache.sources import registry

ENV_GARMIN_EMAIL = "HEALTHCACHE_GARMIN_EMAIL"  # named in --help; sources.garmin.login reads them
ENV_GARMIN_PASSWORD = "HEALTHCACHE_GARMIN_PASSWORD"
SOURCE_CHOICE = click.Choice([*registry.names(), "all"])


def _sources(source: str) -> tuple[tuple[str, ...], bool]:
    return (registry.names(), False) if source == "all" else ((source,), True)


# --------------------------------------------------------------------------- sync


def _render_step(step: Any) -> list[str]:
    if step.status == "not_configured":  # its reason says so: "not set up; run healthcache auth ..."
        return [f"{step.source:<7} {step.reason}"]
    head = f"{step.source:<7} {step.status:<14}"
    if step.status == "skipped":
        return [f"{head} {step.reason}"]
    line = (
        f"{head} {step.requests} requests  {step.seconds:.2f} s  seen {step.seen}  new {step.new}  "
        f"updated {step.updated}  merged {step.merged}  unchanged {step.unchanged}  skipped {step.skipped}"
    )
    for name, n in (("joined-closest", step.joined_closest), ("kept-apart", step.kept_apart)):
        if n:
            line += f"  {name} {n}"
    if step.conflict:
        line += f"  conflicts {step.conflict} (not stored)"
    if step.tombstoned:
        line += f"  deleted-before {step.tombstoned}"
    lines = [line, *(f"{'':<7} {note}" for note in step.notes)]
    if step.saved:
        lines.append(f"{'':<7} saved the cache" + (f" (backup {step.backup})" if step.backup else ""))
    verbs = {
        "new": "would add",
        "updated": "would update",
        "merged": "would merge",
        "joined_closest": "would merge",
        "kept_apart": "would add",
        "conflict": "would refuse",
    }
    for change in step.changes if step.status == "dry_run" else []:
        what = f"{change['start_time'] or ''} {change['sport'] or ''} {change['name'] or ''}".strip()
        extra = ""
        apart = ", ".join(change["candidates"])
        if change["outcome"] in ("merged", "joined_closest"):
            extra = f" into {change['activity_id']} ({change['rule'] or 'rule'})"
            extra += f", apart from {apart}" if change["outcome"] == "joined_closest" else ""
        elif change["outcome"] == "updated" and change["fields"]:
            extra = f" ({', '.join(change['fields'])})"
        elif change["outcome"] == "kept_apart":
            extra = f" (apart from {apart}: they cannot take it)"
        elif change["outcome"] == "conflict":
            extra = f" ({change['activity_id']} holds another {change['key'].split(':', 1)[0]} record)"
        lines.append(f"{'':<7} {verbs[change['outcome']]:<12} {change['key']}{extra}  {what}")
    return lines


def _render_sync(result: Any) -> str:
    from healthcache.cli.render import sync_headline

    lines: list[str] = [sync_headline(result)]  # the one line first; a line per source after
    for step in result.steps:
        lines.extend(_render_step(step))
    return "\n".join(lines)


@click.command()
@click.option("--days", type=click.IntRange(min=1), default=7, show_default=True, help="How far back to look.")
@click.option("--source", type=SOURCE_CHOICE, default="all", show_default=True, help="Which source to sync.")
@click.option("--dry-run", is_flag=True, help="Show what would be added, updated and merged; write nothing.")
@click.option("--force", is_flag=True, help="Sync even if the source was synced within the interval.")
@common_options
@writes_cache
def sync(ctx: Ctx, days: int, source: str, dry_run: bool, force: bool) -> None:
    """Fetch new activities from Garmin Connect and Strava and merge them into the cache.

    Examples:

    \b
      healthcache sync
      healthcache sync --days 30
      healthcache sync --source garmin --force
      healthcache sync --dry-run --json
    """
    from healthcache.cli.progress import progress_for
    from healthcache.sources.sync import SyncOptions
    from healthcache.sources.sync import sync as run
    from healthcache.zone import display_zone, localise

    quiet_client_logs()
    names, explicit = _sources(source)
    options = SyncOptions(days=days, sources=names, explicit=explicit, dry_run=dry_run, force=force)
    with progress_for(ctx) as tracker:
        result = run(ctx.store(), options, lock_timeout=ctx.lock_timeout, on_wait=ctx.on_lock_wait, tracker=tracker)
    ctx.emit(result.as_dict(), lambda: localise(_render_sync(result), display_zone(ctx.config().display.timezone)))
    for step in result.steps:
        for problem in step.errors:
            ctx.warn(f"warning: {problem}")
    ctx.fail(result.failures())
    if not dry_run:
        ctx.fail(refresh_mirrors(ctx))


# --------------------------------------------------------------------------- auth


GARMIN_ONLY = ("email", "password_stdin", "mfa_code", "no_prompt")
STRAVA_ONLY = ("client_id", "code", "no_browser")


@click.command()
@click.argument("service", type=click.Choice(registry.names()))
@click.option("--email", help=f"garmin: account email (or ${ENV_GARMIN_EMAIL}).")
@click.option(
    "--password-stdin",
    is_flag=True,
    help=f"garmin: read the password from the first line of standard input (else ${ENV_GARMIN_PASSWORD}, "
    "else a prompt).",
)
@click.option(
    "--mfa-code",
    metavar="CODE",
    help="garmin: the MFA code ('-' reads it from standard input). Finishes a login that --no-prompt left "
    "waiting, or answers Garmin's request in this login.",
)
@click.option(
    "--no-prompt",
    is_flag=True,
    help="garmin: never ask. If Garmin wants an MFA code, keep the half-done login (0600) and stop; "
    "finish with --mfa-code CODE.",
)
@click.option("--client-id", help="strava: your API application's client id (or $HEALTHCACHE_STRAVA_CLIENT_ID).")
@click.option(
    "--code",
    metavar="CODE",
    help="strava: paste the code (or the whole address the browser landed on) instead of waiting for the "
    "local callback.",
)
@click.option("--no-browser", is_flag=True, help="strava: print the address instead of opening a browser.")
@click.option(
    "--timeout", type=click.FloatRange(min=1), default=300.0, show_default=True, help="strava: seconds to wait."
)
@common_options
def auth(ctx: Ctx, service: str, **options: Any) -> None:
    """Log in to Garmin Connect (email, password, MFA code when asked) or Strava (OAuth with your own
    API application: local callback, or paste the code); tokens are kept 0600 outside tracking/ and backups/.

    Examples:

    \b
      healthcache auth garmin
      healthcache auth garmin --email you@example.com --no-prompt
      healthcache auth garmin --mfa-code 123456
      healthcache auth strava
      healthcache auth strava --client-id 12345 --no-browser
    """
    wrong = STRAVA_ONLY if service == "garmin" else GARMIN_ONLY
    given = [f"--{name.replace('_', '-')}" for name in wrong if options.get(name)]
    if given:
        raise UsageError(f"{', '.join(given)} does not apply to auth {service}")
    if service == "garmin":
        _auth_garmin(ctx, options["email"], options["password_stdin"], options["mfa_code"], options["no_prompt"])
    else:
        _auth_strava(ctx, options["client_id"], options["code"], options["no_browser"], options["timeout"])


def _stdin_line(what: str) -> str:
    line = sys.stdin.readline()
    if not line.strip():
        raise UsageError(f"expected the {what} on standard input")
    return line.rstrip("\r\n")


class _Prompter:
    """The terminal end of a login (``sources.login.Prompter``): prompts on stderr, never under --no-prompt."""

    def __init__(self, ctx: Ctx, *, prompt: bool = True, browser: bool = False) -> None:
        self.ctx, self.prompt, self.browser = ctx, prompt, browser

    def ask(self, label: str, *, secret: bool = False) -> str | None:
        return str(click.prompt(label, hide_input=secret, err=True)) if self.prompt else None

    def say(self, text: str) -> None:
        self.ctx.say(text)

    def show_url(self, url: str) -> None:
        click.echo(f"Open this address to let healthcache read your Strava activities:\n{url}", err=True)
        if self.browser:
            import webbrowser

            webbrowser.open(url)

    def warn(self, text: str) -> None:
        self.ctx.warn(text)


def _auth_garmin(ctx: Ctx, email: str | None, password_stdin: bool, mfa_code: str | None, no_prompt: bool) -> None:
    from healthcache.sources.garmin.login import GarminLogin

    request = GarminLogin(
        email=email,
        password=(lambda: _stdin_line("password")) if password_stdin else (lambda: None),
        code=(lambda: _stdin_line("MFA code")) if mfa_code == "-" else (lambda: mfa_code),
        code_offered=bool(mfa_code),
    )
    _login(ctx, "garmin", request, _Prompter(ctx, prompt=not no_prompt))


def _auth_strava(ctx: Ctx, client_id: str | None, code: str | None, no_browser: bool, timeout: float) -> None:
    from healthcache.sources.strava.oauth import StravaLogin

    _login(
        ctx,
        "strava",
        StravaLogin(client_id=client_id, code=code, timeout=timeout),
        _Prompter(ctx, browser=not no_browser),
    )


def _login(ctx: Ctx, service: str, request: Any, prompter: _Prompter) -> None:
    from healthcache.sources.protocol import get_source

    quiet_client_logs()
    result = get_source(service).login(ctx.paths, ctx.config(), request, prompter)
    ctx.emit(result.as_dict(), result.reason)


# --------------------------------------------------------------------------- backfill-hr


@click.command()
@click.option("--days", type=click.IntRange(min=1), default=None, help="Only activities of the last N days.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most N activities this run.")
@click.option("--source", type=SOURCE_CHOICE, default="all", show_default=True, help="Which source to ask.")
@common_options
@writes_cache
def backfill_hr(ctx: Ctx, days: int | None, limit: int | None, source: str) -> None:
    """Add per-km heart-rate splits to activities that lack them (Garmin details, Strava streams).

    Examples:

    \b
      healthcache backfill-hr
      healthcache backfill-hr --days 30
      healthcache backfill-hr --source strava --limit 50
    """
    from healthcache.cli.progress import progress_for
    from healthcache.sources.backfill import BackfillOptions
    from healthcache.sources.backfill import backfill_hr as run

    quiet_client_logs()
    names, _ = _sources(source)
    with progress_for(ctx) as tracker:
        report = run(
            ctx.store(),
            BackfillOptions(days=days, limit=limit, sources=names),
            tracker=tracker,
            lock_timeout=ctx.lock_timeout,
            on_wait=ctx.on_lock_wait,
        )
    ctx.emit(
        report.as_dict(),
        lambda: (
            f"backfill-hr: {report.candidates} without splits, {report.filled} filled, {report.no_hr} without "
            f"HR samples, {report.failed} failed, {report.not_reached} left for later; "
            f"{report.requests} requests, {report.seconds:.2f} s"
        ),
    )
    for problem in report.errors:
        ctx.warn(f"warning: {problem}")
    for name, why in report.stopped.items():
        ctx.warn(f"{name}: stopped: {why}")
    if report.exit_code:
        left = report.failed + report.not_reached
        ctx.fail([Failure(Outcome.of_code(report.exit_code), f"backfill-hr left {left} activities without splits")])
