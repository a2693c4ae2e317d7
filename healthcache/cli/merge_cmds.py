"""dupes, link and unlink: show and steer the de-duplication."""

from __future__ import annotations

from typing import Any, Literal

import click
import msgspec

from healthcache.cli import Ctx, common_options, writes_cache
from healthcache.cli.complete import complete_activity


@click.command()
@click.option("--explain", is_flag=True, help="Say which rule joined each record, with the measured differences.")
@click.option(
    "--near-misses",
    is_flag=True,
    help="Also list separate activities that almost matched, what kept them apart, and possible copies within one source.",
)
@common_options
def dupes(ctx: Ctx, explain: bool, near_misses: bool) -> None:
    """List activities merged from several sources (one workout, several records).

    Reads the cache without taking the write lock.

    Examples:

    \b
      healthcache dupes
      healthcache dupes --explain --near-misses
    """
    from healthcache import merge as m

    store = ctx.store()
    cache = store.read().cache
    groups = m.groups(cache, explain=explain, preference=store.config.preference)
    misses = m.near_misses(cache) if near_misses else []
    copies = m.same_source_copies(cache) if near_misses else []
    data: dict[str, Any] = {"groups": msgspec.to_builtins(groups)}
    if near_misses:
        data["near_misses"] = msgspec.to_builtins(misses)
        data["same_source_copies"] = msgspec.to_builtins(copies)

    def text() -> str:
        n = len(groups)
        lines = [f"{n} {'activity' if n == 1 else 'activities'} merged from several sources"]
        for g in groups:
            lines.append(f"{g.id}  {g.start_time}  {g.sport}  " + " + ".join(x.key for x in g.members))
            if explain:
                for x in g.members[1:]:
                    lines.append(f"    {x.key}  {x.rule}: {x.detail}" + (f"  (joined {x.at})" if x.at else ""))
        if near_misses:
            lines.append(f"{len(misses)} near misses (kept apart)")
            for miss in misses:
                lines.append(f"{miss.a} / {miss.b}  {miss.start_time}  " + "; ".join(miss.reasons))
            lines += _render_copies(copies)
        from healthcache.zone import display_zone, localise  # times as a person reads them (JSON stays UTC)

        return localise("\n".join(lines), display_zone(store.config.display.timezone))

    ctx.emit(data, text)


def _render_copies(copies: list[Any]) -> list[str]:
    n = sum(len(c.copies) for c in copies)
    lines = [
        f"{n} possible {'copy' if n == 1 else 'copies'} within one source "
        "(never merged automatically: one source's records stay apart)"
    ]
    for c in copies:
        lines.append(f"{c.source}  {c.start_time}  {c.sport}  keep {c.keep}, {len(c.copies)} more:")
        lines += [f"    {reason}" for reason in c.reasons]
    if copies:
        lines.append("to remove the copies (a tombstone keeps each from coming back):")
        lines += [f"    {cmd}" for c in copies for cmd in c.commands]
    return lines


def _apply(ctx: Ctx, action: Literal["link", "unlink"], a: str, b: str, *, force: bool = False) -> None:
    """One implementation behind link and unlink: decide under the lock, save through the guard."""
    from healthcache import merge as m
    from healthcache.cli.render import render_merge_report
    from healthcache.lookup import canonical
    from healthcache.timeutil import utc_iso

    store = ctx.store()
    with ctx.transaction(store) as tx:
        a, b = canonical(tx.cache, a), canonical(tx.cache, b)  # short ids name the activity's own record
        now, pref = utc_iso(store.clock()), store.config.preference
        if action == "link":
            new, report = m.link_records(tx.cache, a, b, now=now, preference=pref, force=force)
        else:
            new, report = m.unlink_records(tx.cache, a, b, now=now, preference=pref)
        saved = tx.save(new)
    data: dict[str, Any] = {
        "action": action,
        "ids": [a, b],
        **report.as_dict(),
        "changed_file": saved.changed,
        "previous_saved_as": str(saved.backup) if saved.backup else None,
    }

    def text() -> str:
        lines = [f"{action}ed {a} and {b}", render_merge_report(report, verbose=True)]
        if not saved.changed:
            lines.append("nothing changed; nothing was written")
        elif saved.backup is not None:
            lines.append(f"the previous file was saved as {saved.backup.name}")
        return "\n".join(lines)

    ctx.emit(data, text)


@click.command()
@click.argument("a", shell_complete=complete_activity)
@click.argument("b", shell_complete=complete_activity)
@click.option("--force", is_flag=True, help="Link even records days apart or of incompatible sports.")
@common_options
@writes_cache
def link(ctx: Ctx, a: str, b: str, force: bool) -> None:
    """Declare A and B (activity ids, aliases or source:id keys) one workout, and join them now.

    The decision is kept: automatic rules will never split them.  Two records
    of one source cannot be linked (an activity holds one record per source).
    Records whose starts are more than 26 h apart (beyond any clock or time-zone
    error) or whose sports cannot be one workout are refused (exit 2) unless --force.

    Examples:

    \b
      healthcache link garmin:15660001234 strava:11530000003
    """
    _apply(ctx, "link", a, b, force=force)


@click.command()
@click.argument("a", shell_complete=complete_activity)
@click.argument("b", shell_complete=complete_activity)
@common_options
@writes_cache
def unlink(ctx: Ctx, a: str, b: str) -> None:
    """Declare A and B distinct workouts; split their activity if they share one.

    The parts are rebuilt from the kept raw payloads, and the decision is kept:
    no later sync or import joins them again.

    Examples:

    \b
      healthcache unlink garmin:15660001234 strava:11530000003
    """
    _apply(ctx, "unlink", a, b)
