"""What every importer shares: per-file outcomes, input limits, hardened XML and value sanitising.

Importers are pure functions of bytes (or a stream) to normalised records; a
problem with one file is an ``ImportFailed`` (corrupt, refused) or a
``NotAnActivity`` (valid, but nothing to import), which the orchestrator turns
into that file's line of the report while the other files go on.
"""

from __future__ import annotations

import builtins
import io
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import IO, Any

import msgspec

from healthcache.model import checks
from healthcache.model.records import SourceRecord
from healthcache.timeutil import utc_iso

# Activities before this are a broken clock (1901 dates, relative FIT timestamps), not workouts.
EARLIEST = datetime(1985, 1, 1, tzinfo=UTC)
MIB = 1024 * 1024


class ImportFailed(ValueError):
    """The file is corrupt, truncated, hostile or of no known type: reported, skipped, exit status 1.

    A ValueError, so ``normalise.from_raw`` reports a bad stored payload as it does any other.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NotAnActivity(ValueError):
    """The file is valid but holds no workout (settings, a planned route, a records-only export)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Limits:
    """Bounds on what an input may make us read; generous for real exports, fatal for bombs."""

    max_file_bytes: int = 512 * MIB  # one activity file or archive member read into memory
    # What a compressed input (gzip data, a deflated archive member) may inflate to in memory:
    # the largest real activity files are tens of MiB; a bomb must not cost more than this.
    max_inflated_bytes: int = 64 * MIB
    max_archive_bytes: int = 64 * 1024 * MIB  # declared uncompressed total of one archive
    max_ratio: float = 200.0  # uncompressed/compressed, for members larger than ratio_floor
    ratio_floor: int = 4 * MIB
    max_members: int = 500_000
    max_nesting: int = 1  # Garmin exports hold zips of FIT files; deeper nesting is refused
    max_prolog_bytes: int = 1 * MIB  # XML bytes allowed before the root element


@dataclass
class Extracted:
    """What one file gave: its records and anything worth telling the user."""

    records: list[SourceRecord] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    kind: str = ""


Progress = Callable[[str, int, int], None]  # (label, bytes done, bytes in all)


@dataclass(frozen=True)
class Input:
    """One file or archive member as every reader takes it: its name and size, its bytes
    when they are held (``data``), else a way to open it as a stream (streamed formats)."""

    name: str
    size: int
    data: bytes | None = None
    opener: Callable[[], IO[bytes]] | None = None
    limits: Limits = field(default_factory=Limits)
    progress: Progress | None = None
    zone: str | None = None  # IANA name of [display] timezone: the wall clock of exports that record none

    def bytes(self) -> bytes:
        if self.data is None:
            raise ImportFailed("this format is read from memory, but the input was only streamed")
        return self.data

    def open(self) -> IO[builtins.bytes]:
        if self.opener is not None:
            return self.opener()
        return io.BytesIO(self.bytes())


# ---------------------------------------------------------------- values


def num(value: Any) -> float | None:
    """A finite float, or None for missing, NaN, infinite and unparseable values."""
    if value is None or isinstance(value, bool):
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def nonneg(value: Any) -> float | None:
    f = num(value)
    return f if f is not None and f >= 0 else None


def positive(value: Any) -> float | None:
    f = num(value)
    return f if f is not None and f > 0 else None


def heart_rate(value: Any) -> float | None:
    """A plausible heart rate; devices write 0 or 255 for 'no reading'."""
    f = num(value)
    return f if f is not None and 20 <= f <= 250 else None


def rounded(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def plausible_start(dt: datetime, now: datetime | None = None) -> bool:
    now = now or datetime.now(UTC)
    return EARLIEST <= dt <= now + timedelta(days=2)


def check_start(dt: datetime) -> datetime:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    if not plausible_start(dt):
        raise NotAnActivity(f"start time {utc_iso(dt)} is not plausible (a device clock that was never set)")
    return dt


def local_iso(dt: datetime) -> str:
    """Wall-clock time without an offset, as start_time_local holds it."""
    return dt.replace(tzinfo=None, microsecond=0).isoformat()


_record_decoder = checks.CheckedDecoder(SourceRecord)  # an importer's record is checked in full


def validated(record: SourceRecord) -> SourceRecord:
    """Round-trip through the schema so a bad value fails this file, not the whole save."""
    try:
        return _record_decoder.decode(msgspec.json.encode(record))
    except msgspec.ValidationError as exc:
        raise ImportFailed(f"produced an invalid record: {exc}") from exc


# ---------------------------------------------------------------- XML

_ENTITY_DECL = re.compile(rb"<!ENTITY", re.IGNORECASE)
_ROOT_TAG = re.compile(rb"<([A-Za-z_][\w.\-]*:)?([A-Za-z_][\w.\-]*)")


def xml_prolog(head: bytes) -> tuple[bytes, str | None]:
    """The bytes before the root element and the root's local name (None if not reached)."""
    i = 0
    n = len(head)
    while i < n:
        j = head.find(b"<", i)
        if j < 0 or j + 1 >= n:
            return head, None
        nxt = head[j + 1 : j + 2]
        if nxt == b"?":
            k = head.find(b"?>", j)
            if k < 0:
                return head, None
            i = k + 2
        elif head.startswith(b"<!--", j):
            k = head.find(b"-->", j)
            if k < 0:
                return head, None
            i = k + 3
        elif nxt == b"!":
            # DOCTYPE, possibly with an internal subset in brackets.
            k = _doctype_end(head, j)
            if k < 0:
                return head, None
            i = k
        else:
            m = _ROOT_TAG.match(head, j)
            return head[:j], (m.group(2).decode("ascii", "replace") if m else None)
    return head, None


def _doctype_end(data: bytes, start: int) -> int:
    depth = 0
    quote = 0
    for k in range(start + 2, len(data)):
        c = data[k]
        if quote:
            if c == quote:
                quote = 0
        elif c in (0x22, 0x27):
            quote = c
        elif c == 0x5B:  # [
            depth += 1
        elif c == 0x5D:  # ]
            depth -= 1
        elif c == 0x3E and depth <= 0:  # >
            return k + 1
    return -1


def refuse_entities(head: bytes, limits: Limits) -> str | None:
    """Refuse documents that declare entities (billion laughs, external entities); return the root name."""
    prolog, root = xml_prolog(head[: limits.max_prolog_bytes])
    if _ENTITY_DECL.search(prolog):
        raise ImportFailed("the XML declares entities (an entity-expansion or external-entity attack); refused")
    if root is None and len(head) >= limits.max_prolog_bytes:
        raise ImportFailed("no XML root element within the first MiB; refused")
    return root


def parse_xml(data: bytes, limits: Limits) -> Any:
    """Parse a whole (small) XML document with entity resolution and network access off."""
    from lxml import etree

    refuse_entities(data, limits)
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise ImportFailed(f"malformed or truncated XML: {exc}") from exc
    if root is None:
        raise ImportFailed("empty XML document")
    return root


def local_name(tag: Any) -> str:
    """The tag without its {namespace}; comments and entities have no string tag."""
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1]
