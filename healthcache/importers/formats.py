"""Every import format, once (in the order an archive's export kind is decided): how it is recognised, who reads it, which manifest keeps it, what re-derives it.

Adding a format is one ``Format`` entry (``register``): detection
(``detect.sniff``), the reading (``run``), the manifest group, an archive's
export kind (``export_format``), the names that promise it, and the normaliser
that ``rebuild`` and ``unlink`` use (``normalise.NORMALISERS``) all come from
here.  Readers and normalisers are named as ``"module:function"`` and imported
on use, so this table costs nothing at start-up and depends on no importer.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:  # the table names its readers; the readers' base loads with the first file read
    from healthcache.importers.base import Extracted, Input

Reader = Callable[["Input"], "Extracted"]

POLAR_NAME = re.compile(r"^training-session-(\d{4}-\d{2}-\d{2})-(\d+)(?:[-_][\w\-]*)?\.json$", re.IGNORECASE)


class Format(msgspec.Struct, frozen=True):
    """One import format."""

    kind: str  # what detection calls its content
    group: str  # its manifest: tracking/sync_state/import_<group>.json
    read: str | Reader  # "module:function" (or the function) taking an Input
    source: str | None = None  # the source its records carry, when they are its own
    normalise: str | None = None  # "module:function" re-deriving a record from its stored raw payload
    streamed: bool = False  # read as a stream and digested by head and tail: too big to hold or hash
    head: Callable[[bytes], bool] | None = None  # recognises the first bytes
    xml_root: str | None = None  # or the XML root element
    json: Callable[[Any], bool] | None = None  # or the parsed JSON document
    suffixes: tuple[str, ...] = ()  # a file so named must be this format: anything else is a failure
    claim: str = ""  # what such a name promises, for that failure
    export_member: re.Pattern[str] | None = None  # a member (base name) that makes an archive this format's export
    # Inside this format's export: members read with another one (path fragment, their kind, why not alone).
    companions: tuple[tuple[str, str, str], ...] = ()

    def reader(self) -> Reader:
        return _resolve(self.read) if isinstance(self.read, str) else self.read


def _resolve(target: str) -> Any:
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)


def _fit_head(head: bytes) -> bool:
    return len(head) >= 12 and head[8:12] == b".FIT"


def _garmin_json(doc: Any) -> bool:
    if isinstance(doc, list) and doc and isinstance(doc[0], dict):
        doc = doc[0]
    return isinstance(doc, dict) and "summarizedActivitiesExport" in doc


def _polar_json(doc: Any) -> bool:
    return isinstance(doc, dict) and isinstance(doc.get("exercises"), list) and "startTime" in doc


_I = "healthcache.importers"
FORMATS: dict[str, Format] = {
    f.kind: f
    for f in (
        Format(
            kind="fit",
            group="fit",
            read=f"{_I}.fit:read",
            source="fit",
            normalise=f"{_I}.fit:normalise_raw",
            head=_fit_head,
            suffixes=(".fit",),
            claim="a FIT file (no .FIT signature)",
        ),
        Format(
            kind="gpx",
            group="gpx",
            read=f"{_I}.gpx:read",
            source="gpx",
            normalise=f"{_I}.gpx:normalise_raw",
            xml_root="gpx",
            suffixes=(".gpx",),
            claim="a GPX document",
        ),
        Format(
            kind="tcx",
            group="tcx",
            read=f"{_I}.tcx:read",
            source="tcx",
            normalise=f"{_I}.tcx:normalise_raw",
            xml_root="TrainingCenterDatabase",
            suffixes=(".tcx",),
            claim="a TCX document",
        ),
        # Account exports: their records are the API sources' (garmin, strava), re-derived by those normalisers.
        Format(
            kind="garmin_export",
            group="garmin_export",
            read=f"{_I}.garmin_export:read",
            json=_garmin_json,
            export_member=re.compile(r"summarizedActivities\.json$"),
        ),
        Format(
            kind="strava_csv",
            group="strava_export",
            read=f"{_I}.strava_export:read",
            export_member=re.compile(r"^activities\.csv$"),
        ),
        Format(
            kind="apple_health",
            group="apple_health",
            read=f"{_I}.apple_health:read",
            source="apple_health",
            normalise=f"{_I}.apple_health.normalise:normalise_raw",
            streamed=True,
            xml_root="HealthData",
            export_member=re.compile(r"^export\.xml$"),
            companions=(
                (
                    "/workout-routes/",
                    "gpx",
                    "an Apple Health workout route: imported with the workout in its export.xml",
                ),
            ),
        ),
        Format(
            kind="polar",
            group="polar",
            read=f"{_I}.polar:read",
            source="polar",
            normalise=f"{_I}.polar:normalise_raw",
            json=_polar_json,
            export_member=POLAR_NAME,
        ),
    )
}
_BUILTIN = dict(FORMATS)  # the table as every fresh process (a worker) imports it
ARCHIVE_GROUP = "archive"  # an archive that is no known export
OTHER_GROUP = "other"  # what failed before its format was known


def register(fmt: Format) -> Format:
    """Add (or replace) a format; everything that reads the table sees it from then on."""
    FORMATS[fmt.kind] = fmt
    return fmt


def builtin(kind: str) -> Format | None:
    """The format of this kind if it is the table's own, not one registered (or replaced) later:
    only those are read the same in a worker process."""
    fmt = FORMATS.get(kind)
    return fmt if fmt is not None and fmt is _BUILTIN.get(kind) else None


def groups() -> tuple[str, ...]:
    """Every manifest group, in the table's order."""
    return (*dict.fromkeys(f.group for f in FORMATS.values()), ARCHIVE_GROUP, OTHER_GROUP)


def group_of(kind: str | None) -> str:
    fmt = FORMATS.get(kind or "")
    return fmt.group if fmt else OTHER_GROUP


def by_head(head: bytes) -> str | None:
    return next((f.kind for f in FORMATS.values() if f.head is not None and f.head(head)), None)


def by_xml_root(root: str) -> str | None:
    return next((f.kind for f in FORMATS.values() if f.xml_root == root), None)


def by_json(doc: Any) -> str | None:
    return next((f.kind for f in FORMATS.values() if f.json is not None and f.json(doc)), None)


def claimed_by(name: str) -> Format | None:
    """The format a file name promises (``run.fit``), if any."""
    lower = name.lower()
    return next((f for f in FORMATS.values() if f.suffixes and lower.endswith(f.suffixes)), None)


def export_format(member_names: Iterable[str]) -> Format | None:
    """The format whose export an archive is, from its members' base names."""
    names = list(member_names)
    for f in FORMATS.values():
        if f.export_member is not None and any(f.export_member.search(n) for n in names):
            return f
    return None


def normalisers() -> dict[str, str]:
    """source -> "module:function" for every format whose records are its own."""
    return {f.source: f.normalise for f in FORMATS.values() if f.source and f.normalise}
