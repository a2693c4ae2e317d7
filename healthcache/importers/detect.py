"""What a file is, from its first bytes (and, for JSON, its keys), never from its name alone.

``sniff`` needs only the head of a file, so a folder of unknown files costs
one small read each.  Names matter in two places only: a Polar session's id is
in its file name (so new sessions are found without opening old ones), and a
file named like an activity file whose content is something else is a failure
rather than a harmless skip.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from healthcache.importers import formats

if TYPE_CHECKING:  # the readers' base loads with the first file opened: a Polar name is read without it
    from healthcache.importers.base import Limits

HEAD_BYTES = 64 * 1024

_TAGS = re.compile(r"<[^>]*>")


def polar_session_id(name: str) -> str | None:
    """The training session id in a Polar Flow export file name."""
    m = formats.POLAR_NAME.match(name.rsplit("/", 1)[-1])
    return m.group(2) if m else None


def clean_labels(cells: list[str]) -> list[str]:
    """Header cells with Strava's untranslated-label markup removed."""
    return [_TAGS.sub("", c).strip() for c in cells]


def csv_header_cells(line: str) -> list[str]:
    import csv

    return clean_labels(next(csv.reader([line]), []))


def sniff(head: bytes, name: str, limits: Limits | None = None) -> str:
    """The kind of a file from its head: a format's kind (``formats.FORMATS``: by its first
    bytes or XML root), gzip, zip, xml:<root>, json (refined by ``json_kind`` once parsed),
    strava_csv, other:<what> (harmless, not an activity), empty or unknown."""
    from healthcache.importers.base import Limits, refuse_entities

    limits = limits or Limits()
    if not head:
        return "empty"
    kind = formats.by_head(head)
    if kind is not None:
        return kind
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08"):
        return "zip"
    for magic, what in _BINARY_MAGIC:
        if head.startswith(magic):
            return f"other:{what}"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"<"):
        root = refuse_entities(head, limits)
        if root is None:
            return "unknown"
        return formats.by_xml_root(root) or f"xml:{root}"
    if text[:1] in (b"{", b"["):
        return "json"
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A head may end inside a multi-byte character; only an early error means binary.
        if exc.start < len(text) - 4:
            return "unknown"
        decoded = text[: exc.start].decode("utf-8")
    lines = decoded.split("\n", 2)
    first_line = lines[0]
    if "," in first_line:
        cells = csv_header_cells(first_line)
        if cells and cells[0] == "Activity ID":
            return "strava_csv"
        # A Strava export in another language: its activities.csv starts every row with the numeric id.
        second = csv_header_cells(lines[1]) if len(lines) > 1 else []
        if name.rsplit("/", 1)[-1] == "activities.csv" and len(cells) >= 5 and second and second[0].isdigit():
            return "strava_csv"
        return "other:csv"
    if _printable(decoded):
        return "other:text"
    return "unknown"


def json_kind(data: Any) -> str:
    """Refine a parsed JSON document by the formats that recognise one (a Garmin export, a Polar session)."""
    return formats.by_json(data) or "other:json"


def _printable(text: str) -> bool:
    if not text:
        return False
    bad = sum(1 for c in text[:4096] if not (c.isprintable() or c in "\r\n\t"))
    return bad <= len(text[:4096]) // 100


_BINARY_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "image"),
    (b"\x89PNG", "image"),
    (b"GIF8", "image"),
    (b"%PDF", "pdf"),
    (b"RIFF", "media"),
    (b"\x00\x00\x00\x18ftyp", "media"),
    (b"\x00\x00\x00\x1cftyp", "media"),
    (b"\x00\x00\x00\x20ftyp", "media"),
    (b"SQLite format 3\x00", "database"),
)
