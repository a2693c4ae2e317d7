"""Where to export: a target named on the command line or in ``[export] targets``.

An engine's module (and its driver: psycopg for PostgreSQL) is imported only
when a target of that engine is opened.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from healthcache.config import Config, Paths

if TYPE_CHECKING:  # deciding where a target is loads no engine, nor the tables (a skipped export)
    from healthcache.export.mirror import Mirror

POSTGRES_INSTALL_HINT = "pip install 'healthcache[postgres]' (with pipx: pipx inject healthcache 'psycopg[binary]')"


class Target(msgspec.Struct, frozen=True):
    """Where to export: ``sqlite`` with a file path, or ``postgres`` with a URL/conninfo ("" = PG* environment)."""

    engine: str
    location: str

    def open(self, **kwargs: Any) -> Mirror:
        from healthcache.export.mirror import ExportError

        if self.engine == "sqlite":
            from healthcache.export.sqlite import SqliteMirror

            return SqliteMirror(Path(self.location), **kwargs)
        try:
            from healthcache.export.postgres import PostgresMirror
        except ImportError as exc:  # psycopg is the optional `postgres` extra
            raise ExportError(
                f"PostgreSQL export needs psycopg, which could not be imported ({exc})",
                hint=f"Install it with: {POSTGRES_INSTALL_HINT}",
            ) from exc
        return PostgresMirror(self.location, **kwargs)


def parse_target(spec: str, config: Config, paths: Paths) -> Target:
    """A configured target: ``sqlite:PATH`` (relative to the home), ``postgres`` or ``postgres:URL``/a URL."""
    text = spec.strip()
    if text.startswith("sqlite:"):
        location = text.removeprefix("sqlite:")
        if not location:
            raise _error(f"export target {spec!r} names no file")
        path = Path(location).expanduser()
        return Target("sqlite", str(path if path.is_absolute() else paths.home / path))
    if text in ("postgres", "postgresql"):
        return Target("postgres", config.export.postgres_url or "")
    for prefix in ("postgres:", "postgresql:"):
        if text.startswith(prefix) and not text.startswith(prefix + "//"):
            return Target("postgres", text.removeprefix(prefix))
    if text.startswith(("postgres://", "postgresql://")):
        return Target("postgres", text)
    raise _error(
        f"unknown export target {redact_text(spec)!r}",
        hint='Use "sqlite:PATH", "postgres" (the configured URL or the PG* environment) or a postgresql:// URL.',
    )


def _error(message: str, hint: str | None = None) -> Exception:
    from healthcache.export.mirror import ExportError

    return ExportError(message, hint=hint)


def redact_text(text: str) -> str:
    """A target spec with any URL password masked, for messages."""
    return re.sub(r"(://[^:/@\s]*:)[^@/\s]*@", r"\1***@", text)
