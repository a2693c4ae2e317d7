"""Run history: one small JSON record per run of a writing command, in ``tracking/history/``.

Each record (start, end, command, outcome, exit code, per-step figures, the ids
lost or refused, the notifications sent) is its own file, written once through
the atomic path under a name no other run uses.  There is no read-modify-write,
so recording needs no lock: a run that found the write lock busy (exit 75) is
recorded too, and a finished command never waits behind a long sync to record.
Rotation keeps the newest ``KEEP`` records.

The history is a log, never a source of truth: an unreadable record is skipped
and named, and a failed write is reported without changing what the command
did or its exit status.  It feeds ``healthcache log`` and the notifications
(consecutive failures, recovery), and the future ``run`` fills one ``Step`` per
step it runs.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from healthcache import atomic
from healthcache.config import Paths
from healthcache.outcome import Failure, Outcome

FOLDER = "history"
KEEP = 1000  # records kept (~1 KiB each): years of daily runs
ID_LIMIT = 200  # lost/refused ids kept per record; ``lost_count`` says how many there were
TEXT_LIMIT = 500  # characters kept of one reason or error
VERSION = 1

# Step statuses that mean "this step did not work" (``auth``: a login expired or is missing).
FAILED = frozenset({"failed", "rate_limited", "auth"})
# Statuses that say nothing about whether a step works (it did not run).
UNDECIDED = frozenset({"skipped", "not_configured", "dry_run", "interrupted", "usage"})


class Step(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One step of a run: a source's sync, an import, a verify; ``figures`` are its counts."""

    name: str  # "sync garmin", "import", "verify"
    status: str  # ok | failed | auth | rate_limited | refused | skipped | not_configured | dry_run
    reason: str | None = None
    seconds: float | None = None
    figures: dict[str, int] = msgspec.field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.status in FAILED


class Delivery(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One notification sent (or not) to one target; ``target`` never carries a credential."""

    target: str
    ok: bool
    events: list[str] = msgspec.field(default_factory=list)
    error: str | None = None


class Record(msgspec.Struct, kw_only=True, omit_defaults=True):
    """What one run did; ``lost`` holds at most ``ID_LIMIT`` ids of ``lost_count``."""

    version: int = VERSION
    started: str
    ended: str
    seconds: float
    command: str  # "sync", "backups prune", "notify"
    args: list[str] = msgspec.field(default_factory=list)
    outcome: str  # "ok", "error", "integrity", ... (``Outcome`` names, lower case)
    exit_code: int
    steps: list[Step] = msgspec.field(default_factory=list)
    errors: list[str] = msgspec.field(default_factory=list)
    hints: list[str] = msgspec.field(default_factory=list)  # the next steps the command gave
    lost: list[str] = msgspec.field(default_factory=list)
    lost_count: int = 0
    notifications: list[Delivery] = msgspec.field(default_factory=list)


def folder(paths: Paths) -> Path:
    return paths.tracking / FOLDER


# --------------------------------------------------------------------------- secrets

_URL_USERINFO = r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/\s@]*@"
_SECRET_QUERY = (
    r"(?P<key>[?&;](?:[\w.-]*(?:token|secret|password|passwd|pass|key|auth|code|signature|sig|apikey)[\w.-]*))="
    r"[^&#\s]*"
)
_BEARER = r"(?P<word>\b(?:bearer|token|basic)\s+)[A-Za-z0-9._~+/=-]{8,}"
_BEARER_WORDS = ("bearer", "token", "basic")


@functools.cache
def _patterns() -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
    """Compiled at the first text that may hold a secret (most run records hold none: ~1 ms spared)."""
    return re.compile(_URL_USERINFO), re.compile(_SECRET_QUERY, re.IGNORECASE), re.compile(_BEARER, re.IGNORECASE)


def _plain(text: str) -> bool:
    """No pattern of ``redact`` can match: each needs ``://``, ``=`` or one of its words (any case;
    a text that is not ASCII is not judged here, as case folding of other letters could match)."""
    if not text.isascii() or "://" in text or "=" in text:
        return False
    lower = text.lower()
    return not any(word in lower for word in _BEARER_WORDS)


def redact(text: str) -> str:
    """``text`` without URL credentials, secret-looking query values or bearer tokens.

    Applied to everything a record or a notification says, so a failure message
    that quotes a URL can never carry a password or a token along.
    """
    if _plain(text):
        return text
    url_userinfo, secret_query, bearer = _patterns()
    text = url_userinfo.sub(r"\g<scheme>***@", text)
    text = secret_query.sub(r"\g<key>=***", text)
    return bearer.sub(r"\g<word>***", text)


def _short(text: str) -> str:
    text = redact(text.strip())
    return text if len(text) <= TEXT_LIMIT else text[: TEXT_LIMIT - 1] + "…"


# --------------------------------------------------------------------------- building a record


def outcome_name(code: int) -> str:
    return Outcome.of_code(code).name.lower()


def _figures(data: Mapping[str, Any]) -> dict[str, int]:
    """The counts of a result: its integers, and those of its tables one level down (``merge.new``
    when the name is taken already)."""
    out = {k: v for k, v in data.items() if isinstance(v, int) and not isinstance(v, bool)}
    for section, table in data.items():
        if isinstance(table, Mapping):
            for k, v in table.items():
                if isinstance(v, int) and not isinstance(v, bool):
                    out[k if k not in out else f"{section}.{k}"] = v
    return out


def _auth_hint(step: Mapping[str, Any], name: str) -> bool:
    """A failed source whose message sends the user to ``healthcache auth <source>``: a login to renew.

    The step reports carry the ``AuthRequired`` message and hint as text; its
    hint always names that command (sources/garmin.py, strava.py, sync.py).
    """
    source = step.get("source") or name.split()[-1]
    reason = f"{step.get('reason') or ''} {' '.join(map(str, step.get('errors') or []))}"
    return step.get("auth") is True or f"healthcache auth {source}" in reason


def steps_of(command: str, data: Any) -> list[Step]:
    """The per-step figures a command's result holds: ``steps`` (sync, the future ``run``), else none."""
    if not isinstance(data, Mapping) or not isinstance(data.get("steps"), list):
        return []
    steps: list[Step] = []
    for raw in data["steps"]:
        if not isinstance(raw, Mapping):
            continue
        label = raw.get("name") or raw.get("source")
        if not isinstance(label, str):
            continue
        name = label if raw.get("name") else f"{command} {label}"
        status = str(raw.get("status") or "ok")
        if status in FAILED and _auth_hint(raw, name):
            status = "auth"
        reason = raw.get("reason")
        seconds = raw.get("seconds")
        steps.append(
            Step(
                name=name,
                status=status,
                reason=_short(str(reason)) if reason else None,
                seconds=float(seconds) if isinstance(seconds, int | float) and not isinstance(seconds, bool) else None,
                figures=_figures(raw),
            )
        )
    return steps


def _command_status(code: int) -> str:
    outcome = Outcome.of_code(code)
    return {
        Outcome.OK: "ok",
        Outcome.INTEGRITY: "refused",
        Outcome.INTERRUPTED: "interrupted",
        Outcome.USAGE: "usage",
    }.get(outcome, "failed")


def lost_ids(failures: Iterable[Failure], data: Any) -> list[str]:
    """Every id a refusal or a verify names as lost or at risk, in order, once."""
    ids: list[str] = []
    for failure in failures:
        lost = failure.fields.get("lost")
        if isinstance(lost, list):
            ids.extend(str(i) for i in lost)
        for v in failure.fields.get("violations") or []:
            if isinstance(v, Mapping) and v.get("kind") in ("dropped_id", "lost_hr"):
                ids.append(str(v.get("subject")))
    if isinstance(data, Mapping):
        outside = data.get("outside")
        if isinstance(outside, Mapping):
            ids.extend(str(v.get("subject")) for v in outside.get("lost") or [] if isinstance(v, Mapping))
        for p in data.get("problems") or []:
            if isinstance(p, Mapping) and p.get("kind") == "outside":
                ids.append(str(p.get("subject")))
    return list(dict.fromkeys(ids))


def record_of(
    *,
    command: str,
    args: Sequence[str],
    started: datetime,
    ended: datetime,
    code: int,
    failures: Sequence[Failure],
    data: Any = None,
    steps: Sequence[Step] | None = None,
) -> Record:
    """The history record of one finished command (pure).

    ``steps`` is what a command filled itself (``run``); otherwise the steps its
    result holds.  A command that failed with no failed step gets one step of
    its own name, so every failure has a name the next runs can count.
    """
    chosen = list(steps) if steps is not None else steps_of(command, data)
    status = _command_status(code)
    reason = next((f.message for f in failures), None)
    if not chosen:  # one step, the command itself, with the counts its result gave
        figures = _figures(data) if isinstance(data, Mapping) else {}
        chosen.append(Step(name=command, status=status, reason=_short(reason) if reason else None, figures=figures))
    elif status != "ok" and not any(s.failed or s.status == status for s in chosen):
        chosen.append(Step(name=command, status=status, reason=_short(reason) if reason else None))
    lost = lost_ids(failures, data)
    return Record(
        started=_iso(started),
        ended=_iso(ended),
        seconds=round(max(0.0, (ended - started).total_seconds()), 3),
        command=command,
        args=[redact(a) for a in args],
        outcome=outcome_name(code),
        exit_code=code,
        steps=chosen,
        errors=[_short(f.message) for f in failures],
        hints=list(dict.fromkeys(redact(f.hint) for f in failures if f.hint)),
        lost=lost[:ID_LIMIT],
        lost_count=len(lost),
    )


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --------------------------------------------------------------------------- the folder


def append(paths: Paths, record: Record, *, keep: int = KEEP) -> Path:
    """Write ``record`` as a new file (atomic path), then drop the oldest beyond ``keep``.

    Raises ``StorageError`` (an ``OSError``) when the file cannot be written;
    the caller reports it and carries on.
    """
    where = folder(paths)
    stamp = record.ended.replace("-", "").replace(":", "")
    path = where / f"{stamp}-{os.getpid()}.json"
    atomic.save_atomic(path, msgspec.json.encode(record) + b"\n", safe="Only this run's history record is missing.")
    prune(where, keep)
    return path


def _names(where: Path) -> list[str]:
    try:
        return sorted((n for n in os.listdir(where) if n.endswith(".json") and n[0].isdigit()), reverse=True)
    except FileNotFoundError:
        return []


def prune(where: Path, keep: int) -> list[Path]:
    """Remove the records beyond the newest ``keep`` and temp files a killed run left a day ago
    (one reading of the folder, as every run's record ends with this)."""
    removed: list[Path] = []
    names: list[str] = []
    day_ago = time.time() - 86400
    with contextlib.suppress(FileNotFoundError), os.scandir(where) as entries:
        for entry in entries:
            name = entry.name
            if name.endswith(".json") and name[:1].isdigit():
                names.append(name)
            elif name.startswith(atomic.TEMP_PREFIX):
                with contextlib.suppress(FileNotFoundError):
                    if entry.stat().st_mtime < day_ago:
                        os.unlink(entry.path)
    if len(names) > keep:
        for name in sorted(names, reverse=True)[keep:]:
            with contextlib.suppress(FileNotFoundError):  # another run pruned it first
                (where / name).unlink()
                removed.append(where / name)
    return removed


def read(paths: Paths, limit: int | None = None) -> tuple[list[Record], list[Path]]:
    """The newest ``limit`` records, newest first, and the record files that could not be read."""
    where = folder(paths)
    records: list[Record] = []
    unreadable: list[Path] = []
    decoder = msgspec.json.Decoder(Record)
    for name in _names(where):
        if limit is not None and len(records) >= limit:
            break
        try:
            records.append(decoder.decode((where / name).read_bytes()))
        except FileNotFoundError:
            continue  # pruned meanwhile
        except (OSError, msgspec.DecodeError, msgspec.ValidationError):
            unreadable.append(where / name)
    return records, unreadable


# --------------------------------------------------------------------------- what the history says


def streak(previous: Sequence[Record], name: str) -> tuple[str | None, int]:
    """The last decided status of step ``name`` before now, and how many runs in a row had it.

    ``previous`` is newest first.  Runs without that step, and runs where it did
    not run (skipped, dry run), say nothing and are passed over.
    """
    status: str | None = None
    count = 0
    for record in previous:
        step = next((s for s in record.steps if s.name == name), None)
        if step is None or step.status in UNDECIDED:
            continue
        decided = "failed" if step.failed else step.status
        if status is None:
            status = decided
        elif decided != status:
            break
        count += 1
    return status, count
