"""dupes, link and unlink: show and steer the de-duplication."""

from __future__ import annotations

from typing import Any, Literal

import click
import msgspec

from healthcache.cli import Ctx, common_options


@click.command()
@click.option("--explain", is_flag=True, help="Say which rule joined each record, with the measured differences.")
@click.option(
    "--near-misses",
    is_flag=True,
    help="Also list separate activities that almost matched, and what kept them apart.",
)
@common_options
def dupes(ctx: Ctx, explain: bool, near_misses: bool) -> None:
    """List activities merged from several sources (one workout, several records).

    Reads the cache without taking the write lock.
    """
    from healthcache import merge as m

    store = ctx.store()
    cache = store.read().cache
    groups = m.groups(cache, explain=explain, preference=store.config.preference)
    misses = m.near_misses(cache) if near_misses else []
    data: dict[str, Any] = {"groups": msgspec.to_builtins(groups)}
    if near_misses:
        data["near_misses"] = msgspec.to_builtins(misses)

    def text() -> str:
        n = len(groups)
        lines = [f"{n} {'activity' if n == 1 else 'activities'} merged from several sources"]
        for g in groups:
            lines.append(f"{g.id}  {g.start_time}  {g.sport}  " + " + ".join(x.key for x in g.members))
            if explain:
                for x in g.members[1:]:
                    lines.append(f"    {x.key}  {x.rule}: {x.detail}")
        if near_misses:
            lines.append(f"{len(misses)} near misses (kept apart)")
            for miss in misses:
                lines.append(f"{miss.a} / {miss.b}  {miss.start_time}  " + "; ".join(miss.reasons))
        return "\n".join(lines)

    ctx.emit(data, text)


def _apply(ctx: Ctx, action: Literal["link", "unlink"], a: str, b: str) -> None:
    """One implementation behind link and unlink: decide under the lock, save through the guard."""
    from healthcache import merge as m
    from healthcache.cli.render import render_merge_report
    from healthcache.timeutil import utc_iso

    store = ctx.store()
    decide = m.link_records if action == "link" else m.unlink_records
    with ctx.transaction(store) as tx:
        new, report = decide(tx.cache, a, b, now=utc_iso(store.clock()), preference=store.config.preference)
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
@click.argument("a")
@click.argument("b")
@common_options
def link(ctx: Ctx, a: str, b: str) -> None:
    """Declare A and B (activity ids, aliases or source:id keys) one workout, and join them now.

    The decision is kept: automatic rules will never split them.  Two records
    of one source cannot be linked (an activity holds one record per source).
    """
    _apply(ctx, "link", a, b)


@click.command()
@click.argument("a")
@click.argument("b")
@common_options
def unlink(ctx: Ctx, a: str, b: str) -> None:
    """Declare A and B distinct workouts; split their activity if they share one.

    The parts are rebuilt from the kept raw payloads, and the decision is kept:
    no later sync or import joins them again.
    """
    _apply(ctx, "unlink", a, b)
