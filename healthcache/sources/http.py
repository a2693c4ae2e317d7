"""What every HTTP API source shares: counting its requests, and the rate-limit failure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from healthcache.errors import SourceError


class RateLimited(SourceError):
    """The source's request budget is spent; nothing more until ``until``."""

    def __init__(self, message: str, until: datetime, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.until = until


@dataclass
class RequestCounter:
    """Counts HTTP responses through a ``requests`` response hook."""

    count: int = 0

    def hook(self, response: Any, *args: Any, **kwargs: Any) -> Any:
        self.count += 1
        return response

    def attach(self, session: Any) -> None:
        session.hooks.setdefault("response", []).append(self.hook)
