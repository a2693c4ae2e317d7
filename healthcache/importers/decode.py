"""Decoding one in-memory file: bytes in, its report line and normalised records out; pure, so it runs anywhere.

The pipeline (``run``) reads, hashes and decides in the parent; this is the
one step a worker process may take over (``pool``).  A ``Task`` carries all a
decode needs and nothing of the run (no manifest, no callbacks), and what
comes back is the report line and the records, never the decoded messages,
so what crosses the pipe stays small.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from healthcache.importers import archive, detect, formats
from healthcache.importers.base import Extracted, ImportFailed, Input, Limits, NotAnActivity, Progress
from healthcache.importers.report import FileResult


@dataclass(frozen=True)
class Task:
    """One in-memory file to decode: its names, its bytes, the kind detection gave it, and the display
    zone's name (resolved by the parent from its config: a worker reads no config)."""

    label: str
    name: str
    data: bytes
    kind: str
    member: bool
    limits: Limits
    zone: str | None = None


Decoded = tuple[FileResult, Extracted | None]


def read_data(task: Task, progress: Progress | None = None) -> Decoded:
    """Read one in-memory file by its kind: its report line, and what it gave (never raises for bad input)."""
    kind, label, member = task.kind, task.label, task.member
    shown = None if kind in ("unknown", "empty") else kind
    try:
        ex = extract(task.name, task.data, kind, task.limits, progress, member=member, zone=task.zone)
    except ImportFailed as exc:
        return FileResult(path=label, status="failed", kind=shown, reason=exc.reason, member=member), None
    except NotAnActivity as exc:
        return FileResult(path=label, status="skipped", kind=shown, reason=exc.reason, member=member), None
    except Exception as exc:  # a parser bug must cost one file, never the import
        why = f"unexpected error: {type(exc).__name__}: {exc}"
        return FileResult(path=label, status="failed", kind=shown, reason=why, member=member), None
    line = FileResult(
        path=label,
        status="imported",
        kind=ex.kind or kind,
        records=len(ex.records),
        warnings=ex.warnings,
        member=member,
    )
    return line, ex


def extract(
    name: str,
    data: bytes,
    kind: str,
    limits: Limits,
    progress: Progress | None,
    *,
    member: bool,
    depth: int = 0,
    zone: str | None = None,
) -> Extracted:
    """The records of one in-memory file, by the reader its format registers (``formats.FORMATS``);
    ``zone`` (an IANA name) is the wall clock of exports that record none (Strava's activities.csv)."""
    if kind == "gzip":
        if depth:
            raise ImportFailed("gzip inside gzip: refused")
        inner = archive.gunzip(data, limits)
        inner_name = archive.strip_gz(name)
        inner_kind = detect.sniff(inner[: detect.HEAD_BYTES], inner_name, limits)
        if inner_kind in ("zip", "gzip"):
            raise ImportFailed(f"a compressed {inner_kind} inside gzip: refused")
        return extract(inner_name, inner, inner_kind, limits, progress, member=member, depth=depth + 1, zone=zone)
    if kind == "json":
        try:
            doc = msgspec.json.decode(data)
        except msgspec.DecodeError as exc:
            raise ImportFailed(f"malformed or truncated JSON: {exc}") from exc
        kind = detect.json_kind(doc)
    fmt = formats.FORMATS.get(kind)
    if fmt is not None:
        item = Input(name=name, size=len(data), data=data, limits=limits, progress=progress, zone=zone)
        return fmt.reader()(item)
    raise not_read(name, kind, member)


def not_read(name: str, kind: str, member: bool) -> ImportFailed | NotAnActivity:
    """Why content of no registered format is not imported: a failure when its name promised a
    format or nothing at all is known of it, else a harmless skip."""
    if kind == "empty":
        return NotAnActivity("an empty file") if member else ImportFailed("empty file")
    what = kind.split(":", 1)[1] if ":" in kind else "content of no known type"
    described = f"XML with root <{what[4:]}>" if what.startswith("xml:") else what
    claimed = formats.claimed_by(name)
    if claimed is not None:
        known = "" if kind in ("unknown", "empty") else f"; the content is {described}"
        return ImportFailed(f"not {claimed.claim}{known}")
    if kind == "unknown" and not member:
        return ImportFailed("unknown file type")
    return NotAnActivity(f"not an activity file ({described})")


def poolable(kind: str) -> bool:
    """Whether a worker process decodes this kind exactly as the parent would: a format of the
    built-in registry (a worker imports it afresh, without later registrations) read from memory."""
    fmt = formats.builtin(kind)
    return fmt is not None and not fmt.streamed
