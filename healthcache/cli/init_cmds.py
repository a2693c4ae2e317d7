"""``healthcache init``: create a workspace where the user says, and say what to do next."""

from __future__ import annotations

import os
from pathlib import Path

import click

from healthcache.cli import Ctx, not_empty, workspace_free_options


@click.command()
@click.argument("folder", required=False, type=click.Path(file_okay=False), callback=not_empty)
@workspace_free_options
def init(ctx: Ctx, folder: str | None) -> None:
    """Make FOLDER a workspace: tracking/, backups/, a commented healthcache.toml and a .gitignore
    that keeps your personal data and credentials out of git.

    FOLDER defaults to --home, else $HEALTHCACHE_HOME, else the current folder. Commands run in that
    folder or below it then use it (like git); from elsewhere, give --home. An existing
    healthcache.toml is never replaced (exit 2, nothing changed); an existing cache is kept as it is.

    Examples:

    \b
      healthcache init
      healthcache init ~/training
      healthcache --home ~/training init --json
    """
    from healthcache.workspace import init as make

    chosen = folder or ctx.home or os.environ.get("HEALTHCACHE_HOME") or "."
    cwd = Path.cwd()
    result = make((cwd / Path(chosen).expanduser()).absolute(), cwd)

    def text() -> str:
        width = max(len(command) for command, _ in result.next_steps)
        lines = [f"initialised the workspace {result.home}"]
        if result.created:
            lines.append("  created: " + ", ".join(result.created))
        if result.kept:
            lines.append("  kept as it was: " + ", ".join(result.kept))
        lines.append("next:")
        lines += [f"  {command:<{width}}  # {does}" for command, does in result.next_steps]
        return "\n".join(lines)

    ctx.emit(result.as_dict(), text)
