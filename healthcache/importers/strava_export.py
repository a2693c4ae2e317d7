"""Strava bulk export ``activities.csv`` as ``strava`` records (the activity files are imported on their own).

What real exports look like, and how each quirk is met:

* Columns repeat under one name: the first ``Distance`` is in the athlete's
  display unit (km or miles), the second in metres; the two ``Elapsed Time``
  columns agree; of the two ``Max Heart Rate`` columns only one is filled.
  ``Distance`` is read from its last occurrence (metres); every other repeated
  column from its first non-empty occurrence.
* Untranslated labels arrive as HTML (``<span class="translation_missing"
  ...>Start Time</span>``): tags are stripped.  Headers in another language
  fall back to the column positions Strava has kept since its first exports.
* ``Activity Date`` is UTC, written like ``Oct 5, 2014, 4:15:21 PM``, and no
  column says where the workout was.  ``start_date`` stays that UTC moment;
  ``start_date_local`` (the API's field for the athlete's wall clock) is filled
  from ``[display] timezone`` (else the machine's zone), handed in by the
  import, so an evening ride is not counted in the next day's week.  Which
  zone it assumed is kept as ``start_date_local_zone``: the wall clock is
  derived, and a source that recorded one (FIT, Garmin) ranks before Strava.
* ``Filename`` names Strava's own copy of the upload (``activities/<id>.fit.gz``):
  it never carries the Garmin activity id, so it is kept in the payload but not
  offered as an external id.
* Every non-empty cell of the row is kept, under its (cleaned) label, in the
  payload's ``export_csv``: gear, relative effort, private notes and the dozens
  of columns no field of ours reads stay in ``raw``.  A repeated label keeps each
  occurrence (``Distance``, ``Distance (2)``), so nothing is lost to a duplicate.

Each row is shaped like the Strava API's activity JSON (``id``, ``sport_type``,
``start_date``, ``distance`` in metres, ...) so that ``sync`` later merges onto
the same ``strava:<id>``.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from healthcache.importers.base import (
    Extracted,
    ImportFailed,
    Input,
    NotAnActivity,
    num,
    validated,
)
from healthcache.importers.detect import clean_labels
from healthcache.model.records import SourceRecord
from healthcache.normalise import normaliser
from healthcache.timeutil import utc_iso
from healthcache.zone import ASSUMED_ZONE_KEY, wall_clock

DATE_FORMATS = (
    "%b %d, %Y, %I:%M:%S %p",
    "%b %d, %Y %I:%M:%S %p",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%SZ",
    "%d %b %Y, %H:%M:%S",
    "%d.%m.%Y, %H:%M:%S",
    "%d/%m/%Y, %H:%M:%S",
)
# Columns Strava has kept at the same place in every export seen; used when the labels are translated.
POSITIONS = {"Activity ID": 0, "Activity Date": 1, "Activity Name": 2, "Activity Type": 3, "Elapsed Time": 5}
# CSV labels whose API sport_type is not the label without spaces.
SPORT_TYPES = {"Canoe": "Canoeing", "Rock Climb": "RockClimbing", "E-Bike Ride": "EBikeRide"}


def _date(text: str) -> datetime | None:
    text = text.strip()
    for fmt in DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


class _Columns:
    """Lookup by label over repeated, translated or marked-up headers."""

    def __init__(self, header: list[str]) -> None:
        self.cells = clean_labels(header)
        self.index: dict[str, list[int]] = {}
        for i, label in enumerate(self.cells):
            self.index.setdefault(label, []).append(i)
        self.english = bool(self.cells) and self.cells[0] == "Activity ID"
        self.single_distance = len(self.index.get("Distance", [])) == 1
        self.keys = _unique_keys(self.cells)

    def cells_of(self, row: list[str]) -> dict[str, str]:
        """Every non-empty cell of ``row`` by column key; cells beyond the header too."""
        out: dict[str, str] = {}
        for i, value in enumerate(row):
            if value.strip():
                out[self.keys[i] if i < len(self.keys) else f"column {i + 1}"] = value
        return out

    def get(self, row: list[str], label: str, *, last: bool = False) -> str | None:
        idx = self.index.get(label)
        if not idx and not self.english and label in POSITIONS:
            idx = [POSITIONS[label]]
        if not idx:
            return None
        order = reversed(idx) if last else idx
        for i in order:
            if i < len(row) and row[i].strip():
                return row[i].strip()
        return None


def _unique_keys(labels: list[str]) -> list[str]:
    """Labels made unique in column order: a repeat becomes ``Label (2)``, ``Label (3)``..."""
    seen: dict[str, int] = {}
    keys: list[str] = []
    for i, label in enumerate(labels):
        base = label or f"column {i + 1}"
        seen[base] = seen.get(base, 0) + 1
        keys.append(base if seen[base] == 1 else f"{base} ({seen[base]})")
    return keys


def sport_type(label: str | None) -> str | None:
    if not label:
        return None
    return SPORT_TYPES.get(label, label.replace(" ", "").replace("-", ""))


def row_to_api(cols: _Columns, row: list[str], zone: tzinfo | None = None) -> dict[str, Any]:
    """One CSV row in the shape of the Strava API's activity JSON; ``start_date_local`` is the
    wall clock in ``zone`` (none without one: the row itself does not say)."""
    ident = cols.get(row, "Activity ID")
    if not ident or not ident.strip().isdigit():
        raise ImportFailed(f"row without a numeric Activity ID ({ident!r})")
    when = cols.get(row, "Activity Date")
    start = _date(when or "")
    if start is None:
        raise ImportFailed(f"activity {ident}: unreadable Activity Date {when!r}")
    distance = num(cols.get(row, "Distance", last=True))
    if distance is not None and cols.single_distance:
        distance *= 1000.0  # an export with one Distance column writes kilometres
    stype = sport_type(cols.get(row, "Sport Type") or cols.get(row, "Activity Type"))

    def f(label: str) -> float | None:
        return num(cols.get(row, label))

    api: dict[str, Any] = {
        "id": int(ident),
        "name": cols.get(row, "Activity Name"),
        "type": sport_type(cols.get(row, "Activity Type")),
        "sport_type": stype,
        "start_date": utc_iso(start),
        "start_date_local": wall_clock(start, zone) if zone is not None else None,
        ASSUMED_ZONE_KEY: getattr(zone, "key", None),
        "description": cols.get(row, "Activity Description"),
        "distance": distance,
        "elapsed_time": f("Elapsed Time"),
        "moving_time": f("Moving Time"),
        "total_elevation_gain": f("Elevation Gain"),
        "elev_high": f("Elevation High"),
        "elev_low": f("Elevation Low"),
        "max_speed": f("Max Speed"),
        "average_speed": f("Average Speed"),
        "average_heartrate": f("Average Heart Rate"),
        "max_heartrate": f("Max Heart Rate"),
        "average_cadence": f("Average Cadence"),
        "average_watts": f("Average Watts"),
        "weighted_average_watts": f("Weighted Average Power"),
        "calories": f("Calories"),
        "commute": (cols.get(row, "Commute") or "").lower() in ("true", "1", "1.0"),
        "export_filename": cols.get(row, "Filename"),
        "export_csv": cols.cells_of(row),
    }
    for key in ("elapsed_time", "moving_time"):
        if api[key] is not None:
            api[key] = round(api[key])
    return {k: v for k, v in api.items() if v is not None}


def read(item: Input) -> Extracted:
    """The format registry's entry point (``formats.FORMATS``)."""
    return read_activities_csv(item.bytes(), item.name, zone=item.zone)


def read_activities_csv(data: bytes, name: str, *, zone: str | None = None) -> Extracted:
    """activities.csv of a Strava export: one ``strava`` record per row; ``zone`` (an IANA name)
    gives each its local start."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFailed(f"activities.csv is not UTF-8: {exc}") from exc
    rows = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(rows)
    except StopIteration as exc:
        raise NotAnActivity("an empty activities.csv") from exc
    except csv.Error as exc:
        raise ImportFailed(f"malformed CSV: {exc}") from exc
    cols = _Columns(header)
    where = _zone(zone)
    out = Extracted(kind="strava_csv")
    if not cols.english:
        out.warnings.append("column labels are not English: read by position (id, date, name, type, elapsed time)")
    if cols.single_distance:
        out.warnings.append("one Distance column only: read as kilometres")
    bad = 0
    try:
        for row in rows:
            if not row or not any(c.strip() for c in row):
                continue
            try:
                out.records.append(validated(to_record(row_to_api(cols, row, where))))
            except (ImportFailed, NotAnActivity) as exc:
                bad += 1
                if bad <= 5:
                    out.warnings.append(f"row skipped: {exc}")
    except csv.Error as exc:
        raise ImportFailed(f"malformed CSV at line {rows.line_num}: {exc}") from exc
    if bad > 5:
        out.warnings.append(f"... {bad - 5} more rows skipped")
    if not out.records:
        if bad:
            raise ImportFailed(f"none of the {bad} rows could be read")
        raise NotAnActivity("activities.csv lists no activities")
    return out


def _zone(name: str | None) -> tzinfo | None:
    """The zone of ``name``; None without one (the parent checked it: a worker never fails a file on it)."""
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def to_record(api: dict[str, Any]) -> SourceRecord:
    try:
        return normaliser("strava")(api)
    except (KeyError, TypeError, ValueError) as exc:
        raise ImportFailed(str(exc)) from exc
