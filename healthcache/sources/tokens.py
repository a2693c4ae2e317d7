"""Token files: outside tracking/ and backups/, folder 0700, files 0600, atomic writes.

Tokens grant access to a person's health data, so they never reach the cache,
a backup, a log line or a report.  Every write goes through ``save_atomic`` with
mode 0600 even when the file already exists with looser bits.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from healthcache import atomic
from healthcache.config import Paths
from healthcache.errors import CorruptInput

GARMIN_DIR = "garmin"
# The file name garminconnect's own token store uses inside its folder, so the
# folder also works as a tokenstore for the library's tools.
GARMIN_TOKENS = "garmin_tokens.json"
GARMIN_MFA_PENDING = "mfa_pending.json"
STRAVA_TOKENS = "strava.json"


def secure_dir(path: Path) -> Path:
    """Create ``path`` (and parents) and make it 0700."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        os.chmod(path, 0o700)
    return path


def garmin_dir(paths: Paths) -> Path:
    return paths.credentials / GARMIN_DIR


def garmin_tokens_path(paths: Paths) -> Path:
    return garmin_dir(paths) / GARMIN_TOKENS


def garmin_mfa_path(paths: Paths) -> Path:
    return garmin_dir(paths) / GARMIN_MFA_PENDING


def strava_tokens_path(paths: Paths) -> Path:
    return paths.credentials / STRAVA_TOKENS


def write_secret(paths: Paths, path: Path, data: bytes) -> None:
    """Write a credential file: every folder from the credentials root down 0700, the file 0600."""
    root = secure_dir(paths.credentials)
    folder = path.parent
    chain = []
    while folder != root and root in folder.parents:
        chain.append(folder)
        folder = folder.parent
    for folder in reversed(chain):
        secure_dir(folder)
    atomic.save_atomic(path, data, mode=0o600)


def write_json_secret(paths: Paths, path: Path, value: Any) -> None:
    import json  # a token file is read and written when a source is used, not to see whether it is set up

    write_secret(paths, path, (json.dumps(value, indent=2, sort_keys=True) + "\n").encode())


def read_text(path: Path) -> str | None:
    """A credential file's text, or None when there is none."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def read_json(path: Path) -> dict[str, Any] | None:
    import json

    text = read_text(path)
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise CorruptInput(
            path, "token file is not valid JSON", hint="Log in again to replace it (healthcache auth ...)."
        ) from exc
    if not isinstance(value, dict):
        raise CorruptInput(path, "token file does not hold a JSON object", hint="Log in again to replace it.")
    return value


def remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
