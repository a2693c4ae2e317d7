"""The Garmin Connect login (``auth garmin``) as steps: email, password, then maybe an MFA code.

The code can come in this run (typed at a prompt, given with ``--mfa-code``,
read from standard input) or in a later run: a login Garmin stopped at MFA is
kept (SSO cookies, never the password; 0600) and finished by ``finish_login``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from healthcache.config import Config, Paths
from healthcache.errors import SourceError, UsageError
from healthcache.sources import tokens
from healthcache.sources.garmin.client import Endpoints, make_garmin
from healthcache.sources.login import LoginResult, Prompter

ENV_EMAIL = "HEALTHCACHE_GARMIN_EMAIL"
ENV_PASSWORD = "HEALTHCACHE_GARMIN_PASSWORD"


def _nothing() -> str | None:
    return None


@dataclass(frozen=True)
class GarminLogin:
    """What the command line gave.  ``password`` and ``code`` are read only when the login needs
    them (both may come from standard input, password first)."""

    email: str | None = None
    password: Callable[[], str | None] = _nothing
    code: Callable[[], str | None] = _nothing
    code_offered: bool = False  # a code was given: it may finish a login left waiting


Start = Literal["finish_pending", "sign_in"]


def first_step(email: str | None, code_offered: bool, pending: Callable[[], bool]) -> tuple[Start, str]:
    """Where a login starts, and why.  Pure (``pending`` is asked only when it matters)."""
    if code_offered and not email and pending():
        return "finish_pending", "an MFA code and no email: the login left waiting is finished"
    return "sign_in", "email and password first"


def login(
    paths: Paths, config: Config, request: GarminLogin, prompter: Prompter, environ: Mapping[str, str] | None = None
) -> LoginResult:
    """The whole login: finish a waiting one, or sign in and answer (or keep) an MFA request."""
    env = os.environ if environ is None else environ
    email = request.email or env.get(ENV_EMAIL)
    start, _ = first_step(email, request.code_offered, lambda: load_pending(paths) is not None)
    if start == "finish_pending":
        finish_login(paths, config, str(request.code()))
        return logged_in(paths)
    email = email or _required(prompter.ask("Garmin email"), f"give --email (or ${ENV_EMAIL})")
    password = request.password() or env.get(ENV_PASSWORD)
    if not password:
        password = _required(
            prompter.ask("Garmin password", secret=True),
            f"give the password with --password-stdin or ${ENV_PASSWORD}",
        )
    prompter.say("Logging in to Garmin Connect (this takes a few seconds) ...")
    step = start_login(paths, config, email, password)
    if not step.done:
        code = request.code() or prompter.ask("Garmin sent a verification code; enter it")
        if not code:
            assert step.pending is not None
            save_pending(paths, step.pending)
            return LoginResult(
                "garmin",
                "needs_mfa",
                tokens.garmin_mfa_path(paths),
                "Garmin wants a verification code. Finish with: healthcache auth garmin --mfa-code CODE",
            )
        finish_login(paths, config, code, step=step)
    return logged_in(paths)


def _required(value: str | None, missing: str) -> str:
    if not value:
        raise UsageError(missing)
    return value


def logged_in(paths: Paths) -> LoginResult:
    path = tokens.garmin_tokens_path(paths)
    return LoginResult("garmin", "ok", path, f"Logged in to Garmin Connect; tokens kept in {path} (0600).")


@dataclass
class LoginStep:
    """Where a login stands: done, or waiting for an MFA code (``pending`` holds the state)."""

    done: bool
    garmin: Any = None
    pending: dict[str, Any] | None = None


def _login_error(exc: BaseException) -> BaseException:
    from garminconnect import GarminConnectAuthenticationError, GarminConnectTooManyRequestsError

    if isinstance(exc, GarminConnectAuthenticationError):
        text = str(exc)
        if "MFA" in text:
            return SourceError("Garmin did not accept the MFA code", hint="Run healthcache auth garmin again.")
        return SourceError("Garmin did not accept the email and password", hint="Check them and try again.")
    if isinstance(exc, GarminConnectTooManyRequestsError):
        return SourceError(
            "Garmin is refusing logins from here for now (HTTP 429)", hint="Wait a few minutes and try again."
        )
    return SourceError(f"Garmin login failed: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")


def start_login(paths: Paths, config: Config, email: str, password: str) -> LoginStep:
    """Log in with email and password; stop at MFA with the state needed to finish.

    Uses the library's scripted path (``return_on_mfa``), so the code can come
    from a prompt in this process or from a later run (``finish_login``).
    """
    garmin = make_garmin(Endpoints.resolve(config))
    try:
        status, pending = garmin.client.login(email, password, return_on_mfa=True)
    except Exception as exc:
        raise _login_error(exc) from exc
    if status == "needs_mfa":
        return LoginStep(done=False, garmin=garmin, pending=pending)
    save_login(paths, garmin)
    return LoginStep(done=True, garmin=garmin)


def finish_login(paths: Paths, config: Config, code: str, *, step: LoginStep | None = None) -> None:
    """Complete an MFA login, in this process (``step``) or from the saved pending state."""
    pending = step.pending if step is not None else load_pending(paths)
    if pending is None:
        raise SourceError(
            "no Garmin login is waiting for an MFA code", hint="Start one with: healthcache auth garmin --email ..."
        )
    garmin = step.garmin if step is not None and step.garmin is not None else make_garmin(Endpoints.resolve(config))
    try:
        garmin.client.resume_login(pending, code.strip())
    except Exception as exc:
        raise _login_error(exc) from exc
    save_login(paths, garmin)
    tokens.remove(tokens.garmin_mfa_path(paths))


def save_login(paths: Paths, garmin: Any) -> None:
    tokens.write_secret(paths, tokens.garmin_tokens_path(paths), garmin.client.dumps().encode())


def save_pending(paths: Paths, pending: dict[str, Any]) -> None:
    """The half-done login (SSO cookies, no password) for a later --mfa-code run; 0600."""
    tokens.write_json_secret(paths, tokens.garmin_mfa_path(paths), pending)


def load_pending(paths: Paths) -> dict[str, Any] | None:
    return tokens.read_json(tokens.garmin_mfa_path(paths))
