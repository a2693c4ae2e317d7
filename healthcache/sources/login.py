"""What a source's login needs from whoever runs it: a way to ask, to show, to tell.

The login steps (which value is needed next, what to do with an MFA request or
an OAuth answer) live with each source (``garmin.login``, ``strava.oauth``);
the command line only supplies a ``Prompter``, so the steps can be tested
without a terminal and the CLI holds no login logic.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol


class Prompter(Protocol):
    """The person at the other end of a login."""

    def ask(self, label: str, *, secret: bool = False) -> str | None:
        """The answer to ``label``; None when asking is not allowed (``--no-prompt``)."""
        ...

    def say(self, text: str) -> None:
        """Progress worth telling (``Logging in ...``)."""
        ...

    def show_url(self, url: str) -> None:
        """An address the person must open (the OAuth consent page)."""
        ...

    def warn(self, text: str) -> None:
        """Something that went half right."""
        ...


@dataclass(frozen=True)
class LoginResult:
    """How a login ended: ``ok`` (tokens kept in ``tokens``) or ``needs_mfa`` (finish it later)."""

    source: str
    status: Literal["ok", "needs_mfa"]
    tokens: Path
    reason: str

    def as_dict(self) -> dict[str, str]:
        out = {"source": self.source, "status": self.status}
        if self.status == "ok":
            out["tokens"] = str(self.tokens)
        return out
