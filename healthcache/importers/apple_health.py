"""Apple Health export.xml (or the export.xml inside export.zip), streamed with lxml iterparse.

An export is one big document: every sample the phone and watch ever stored
(heart rate every few seconds during workouts), then the workouts.  Holding it,
or even every heart-rate sample, in memory grows with the file; so the parse
runs in two steps whose memory does not depend on the file's size:

1. find the first ``<Workout`` by a byte search, far cheaper than parsing
   (a file is read backwards from its end until the records begin, since
   Apple writes the workouts after every record; step 2 counts the workouts
   it passes and a file that breaks the rule is read again), then parse only
   from there to the end, collecting the workouts and their statistics: now
   every workout's time window is known;
2. stream the whole document once, clearing each element as soon as it is
   read, and keep only the heart-rate and distance samples that fall inside a
   workout's window (a date-and-hour prefix test rejects the others before
   any date is parsed).

Entity resolution and network access are off, and a document declaring
entities is refused before parsing.  Workouts become ``apple_health`` records:
statistics (``WorkoutStatistics``, or the older summary attributes) give the
distance, energy and heart rate; the samples give avg/max heart rate when the
statistics lack it, and per-km splits where distance samples exist.
"""

from __future__ import annotations

import bisect
import hashlib
import io
from array import array
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from typing import IO, Any

from healthcache.importers.base import (
    Extracted,
    ImportFailed,
    Limits,
    NotAnActivity,
    check_start,
    heart_rate,
    local_iso,
    nonneg,
    num,
    positive,
    refuse_entities,
    rounded,
    validated,
)
from healthcache.model.records import HRSplit, SourceRecord
from healthcache.model.sports import normalise_sport
from healthcache.splits import from_samples as hr_splits
from healthcache.timeutil import utc_iso

HR_TYPE = "HKQuantityTypeIdentifierHeartRate"
DISTANCE_TYPES = frozenset(
    {
        "HKQuantityTypeIdentifierDistanceWalkingRunning",
        "HKQuantityTypeIdentifierDistanceCycling",
        "HKQuantityTypeIdentifierDistanceSwimming",
        "HKQuantityTypeIdentifierDistanceWheelchair",
        "HKQuantityTypeIdentifierDistanceDownhillSnowSports",
        "HKQuantityTypeIdentifierDistanceCrossCountrySkiing",
        "HKQuantityTypeIdentifierDistanceRowing",
        "HKQuantityTypeIdentifierDistancePaddleSports",
    }
)
ENERGY_TYPES = ("HKQuantityTypeIdentifierActiveEnergyBurned",)
METRES = {"m": 1.0, "km": 1000.0, "mi": 1609.344, "yd": 0.9144, "ft": 0.3048, "cm": 0.01, "in": 0.0254}
KCAL = {"kcal": 1.0, "Cal": 1.0, "kJ": 1 / 4.184, "cal": 0.001, "J": 1 / 4184}
SECONDS = {"s": 1.0, "min": 60.0, "hr": 3600.0, "h": 3600.0, "ms": 0.001, "d": 86400.0}
CHUNK = 8 * 1024 * 1024
PROGRESS_STEP = 4 * 1024 * 1024

Progress = Callable[[str, int, int], None]
Opener = Callable[[], IO[bytes]]


# ---------------------------------------------------------------- dates

_hour_base: dict[str, int] = {}
_HOUR_CACHE_MAX = 200_000


def _offset_seconds(off: str) -> int:
    off = off.strip()
    if not off:
        return 0
    sign = -1 if off[0] == "-" else 1
    digits = off.lstrip("+-").replace(":", "")
    return sign * (int(digits[:2]) * 3600 + int(digits[2:4] or 0) * 60)


def _slow_hour_base(text: str) -> int:
    if text[4:5] == "-":
        y, mo, d, h, off = text[0:4], text[5:7], text[8:10], text[11:13], text[20:]
    else:
        y, mo, d, h, off = text[0:4], text[4:6], text[6:8], text[8:10], text[14:]
    days = date(int(y), int(mo), int(d)).toordinal() - 719163
    return days * 86400 + int(h) * 3600 - _offset_seconds(off)


def epoch(text: str) -> int:
    """Seconds since 1970 of an export date: ``2019-06-11 15:00:42 -0700`` or (iOS 8/9) ``20150915113529+0200``.

    Runs for every sample inside a workout, so it is hand-sliced with the
    (date, hour, offset) part cached: two small int() calls per sample.
    """
    if text[4:5] == "-":
        key = text[:13] + text[19:]
        base = _hour_base.get(key)
        if base is None:
            base = _cache_base(key, text)
        return base + int(text[14:16]) * 60 + int(text[17:19])
    key = text[:10] + text[14:]
    base = _hour_base.get(key)
    if base is None:
        base = _cache_base(key, text)
    return base + int(text[10:12]) * 60 + int(text[12:14])


def _cache_base(key: str, text: str) -> int:
    if len(_hour_base) > _HOUR_CACHE_MAX:
        _hour_base.clear()  # bounded: a decade of hours fits, a hostile file cannot grow it
    base = _slow_hour_base(text)
    _hour_base[key] = base
    return base


def aware(text: str) -> datetime:
    """An export date as an aware datetime in the offset it was written with."""
    seconds = _offset_seconds(text[20:] if text[4:5] == "-" else text[14:])
    return datetime.fromtimestamp(epoch(text), tz=timezone(timedelta(seconds=seconds)))


def _quantity(text: str | None) -> tuple[float, str] | None:
    """``"2500 cm"`` -> (2500.0, "cm")."""
    if not text:
        return None
    parts = text.strip().split()
    if not parts:
        return None
    value = num(parts[0])
    if value is None:
        return None
    return value, (parts[1] if len(parts) > 1 else "")


# ---------------------------------------------------------------- streams


class _Chain:
    """A read()-able prefix followed by a stream: lets iterparse start mid-document."""

    def __init__(self, prefix: bytes, stream: IO[bytes]) -> None:
        self.prefix = prefix
        self.stream = stream

    def read(self, n: int = -1) -> bytes:
        if self.prefix:
            out, self.prefix = self.prefix[:n] if n >= 0 else self.prefix, self.prefix[n:] if n >= 0 else b""
            return out
        return self.stream.read(n)


class _Counting:
    """Counts bytes as lxml pulls them, for the progress bar."""

    def __init__(self, stream: IO[bytes], total: int, label: str, progress: Progress | None) -> None:
        self.stream = stream
        self.total = total
        self.label = label
        self.progress = progress
        self.done = 0
        self.next_report = PROGRESS_STEP

    def read(self, n: int = -1) -> bytes:
        data = self.stream.read(n)
        self.done += len(data)
        if self.progress is not None and self.done >= self.next_report:
            self.next_report = self.done + PROGRESS_STEP
            self.progress(self.label, min(self.done, self.total), self.total)
        return data


def find_first_workout(stream: IO[bytes]) -> int | None:
    """Byte offset of the first ``<Workout`` start tag (a literal '<' cannot occur in attribute values).

    Searched through one reused 8 MiB buffer (``readinto``): memchr speed, and
    memory that does not grow with the file (an mmap of it would count the
    whole file into the process's resident size).
    """
    buf = bytearray(CHUNK + 16)
    view = memoryview(buf)
    carry = 0
    pos = 0  # file offset of buf[0]
    reader = getattr(stream, "readinto", None)
    while True:
        if reader is not None:
            n = reader(view[carry : carry + CHUNK]) or 0
        else:
            data = stream.read(CHUNK)
            n = len(data)
            buf[carry : carry + n] = data
        if not n:
            return None
        end = carry + n
        i = buf.find(b"<Workout", 0, end)
        while i >= 0 and i + 8 < end:
            if buf[i + 8] in (0x20, 0x0A, 0x09, 0x0D, 0x3E):  # space, newline, tab, CR, '>'
                return pos + i
            i = buf.find(b"<Workout", i + 1, end)  # <WorkoutEvent, <WorkoutRoute, ...
        keep = min(end, 16)
        buf[:keep] = buf[end - keep : end]
        pos += end - keep
        carry = keep


def _iterparse(source: Any, tags: tuple[str, ...]) -> Any:
    from lxml import etree

    return etree.iterparse(
        source,
        events=("end",),
        tag=tags,
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=True,
        remove_comments=True,
        remove_pis=True,
    )


def _release(el: Any) -> None:
    """Free what has been read: the element's content and the siblings before it."""
    el.clear()
    parent = el.getparent()
    if parent is not None:
        while el.getprevious() is not None:
            del parent[0]


# ---------------------------------------------------------------- parsing


def _workout_from_element(el: Any) -> dict[str, Any]:
    w: dict[str, Any] = dict(el.attrib)
    meta: dict[str, str] = {}
    stats: dict[str, dict[str, str]] = {}
    routes: list[str] = []
    for child in el:
        tag = child.tag
        if tag == "MetadataEntry":
            k = child.get("key")
            if k:
                meta[k] = child.get("value", "")
        elif tag == "WorkoutStatistics":
            t = child.get("type")
            if t:
                stats[t] = {k: v for k, v in child.attrib.items() if k != "type"}
        elif tag == "WorkoutRoute":
            for ref in child:
                if ref.tag == "FileReference" and ref.get("path"):
                    routes.append(ref.get("path"))
    if meta:
        w["metadata"] = meta
    if stats:
        w["statistics"] = stats
    if routes:
        w["routes"] = routes
    return w


def find_workouts_from_end(stream: IO[bytes]) -> int | None:
    """The first ``<Workout`` found by reading backwards from the end, for files Apple wrote.

    Apple writes every Record before the first Workout, so the scan stops at
    the first ``<Record`` below the lowest workout seen: it reads the tail
    (workouts and activity summaries), not the file.  ``read_samples`` checks
    the assumption by counting the workouts it passes.
    """
    size = stream.seek(0, io.SEEK_END)
    block = 1024 * 1024
    end = size
    first: int | None = None
    while end > 0:
        start = max(0, end - block)
        stream.seek(start)
        buf = stream.read(end - start + 16)  # overlap: a tag split by the block boundary
        i = buf.rfind(b"<Workout")
        while i >= 0:
            if buf[i + 8 : i + 9] in (b" ", b"\n", b"\t", b"\r", b">"):
                first = start + i
            i = buf.rfind(b"<Workout", 0, i)
        low = (first - start) if first is not None and first >= start else len(buf)
        r = buf.rfind(b"<Record", 0, low)
        if r >= 0 and buf[r + 7 : r + 8] in (b" ", b"\n", b"\t", b"\r", b">"):
            return first
        end = start
    return first


def read_workouts(open_stream: Opener, *, from_end: bool = True) -> tuple[list[dict[str, Any]], int | None]:
    """Step 1: every Workout element, parsed from the first one to the end of the document."""
    from lxml import etree

    with open_stream() as stream:
        if from_end and isinstance(stream, (io.BufferedReader, io.BytesIO)):
            offset = find_workouts_from_end(stream)
        else:
            offset = find_first_workout(stream)
    if offset is None:
        return [], None
    workouts: list[dict[str, Any]] = []
    with open_stream() as stream:
        _skip(stream, offset)
        try:
            for _, el in _iterparse(_Chain(b"<HealthData>", stream), ("Workout",)):
                workouts.append(_workout_from_element(el))
                _release(el)
        except etree.XMLSyntaxError as exc:
            raise ImportFailed(f"malformed or truncated XML in the workouts: {exc}") from exc
    return workouts, offset


def _skip(stream: IO[bytes], n: int) -> None:
    try:
        stream.seek(n)
        return
    except (OSError, ValueError, AttributeError):
        pass
    while n > 0:
        got = stream.read(min(n, CHUNK))
        if not got:
            return
        n -= len(got)


class _Windows:
    """Workout time windows, and the (date, hour) prefixes a sample inside one must start with."""

    def __init__(self, workouts: list[dict[str, Any]]) -> None:
        spans = []
        self.prefixes: set[str] = set()
        self.prefix_len = 13
        for w in workouts:
            try:
                ds, de = aware(w["startDate"]), aware(w["endDate"])
            except (KeyError, ValueError, IndexError):
                continue
            s, e = ds.timestamp(), max(ds.timestamp(), de.timestamp())
            spans.append((s, e))
            compact = w["startDate"][4:5] != "-"
            self.prefix_len = 10 if compact else 13
            # Samples are written in the offset in force at their instant; an hour either
            # side covers a daylight-saving change inside or next to the workout.
            hour = ds.replace(minute=0, second=0) - timedelta(hours=1)
            while hour <= de + timedelta(hours=1):
                self.prefixes.add(hour.strftime("%Y%m%d%H" if compact else "%Y-%m-%d %H"))
                hour += timedelta(hours=1)
        spans.sort()
        self.starts = [s for s, _ in spans]
        self.spans = spans
        # Windows may overlap; the running maximum of ends lets one bisect answer "inside any".
        self.max_end: list[float] = []
        m = float("-inf")
        for _, e in spans:
            m = max(m, e)
            self.max_end.append(m)

    def inside(self, t: float) -> bool:
        i = bisect.bisect_right(self.starts, t) - 1
        return i >= 0 and self.max_end[i] >= t


class Samples:
    """Heart-rate and distance samples inside workouts, in flat arrays (16 and 26 bytes a sample)."""

    def __init__(self) -> None:
        self.hr_t = array("d")
        self.hr_v = array("d")
        self.d_start = array("d")
        self.d_end = array("d")
        self.d_m = array("d")
        self.d_src = array("H")
        self.sources: dict[str, int] = {}
        self.source_names: list[str] = []
        self.workouts_seen = 0

    def add_distance(self, start: float, end: float, metres: float, source: str) -> None:
        idx = self.sources.get(source)
        if idx is None:
            idx = self.sources[source] = len(self.source_names)
            self.source_names.append(source)
        self.d_start.append(start)
        self.d_end.append(end)
        self.d_m.append(metres)
        self.d_src.append(idx)

    def sort(self) -> None:
        """Order by time (a no-op for Apple's exports, which write each type in time order)."""
        if any(b < a for a, b in zip(self.hr_t, self.hr_t[1:], strict=False)):
            order = sorted(range(len(self.hr_t)), key=self.hr_t.__getitem__)
            self.hr_t = array("d", (self.hr_t[i] for i in order))
            self.hr_v = array("d", (self.hr_v[i] for i in order))
        if any(b < a for a, b in zip(self.d_start, self.d_start[1:], strict=False)):
            order = sorted(range(len(self.d_start)), key=self.d_start.__getitem__)
            for name in ("d_start", "d_end", "d_m", "d_src"):
                col = getattr(self, name)
                setattr(self, name, array(col.typecode, (col[i] for i in order)))

    def heart_rate(self, s: float, e: float) -> list[tuple[float, float]]:
        lo, hi = bisect.bisect_left(self.hr_t, s), bisect.bisect_right(self.hr_t, e)
        return list(zip(self.hr_t[lo:hi], self.hr_v[lo:hi], strict=True))

    def distance(self, s: float, e: float) -> list[tuple[float, float, float, str]]:
        lo, hi = bisect.bisect_left(self.d_start, s), bisect.bisect_right(self.d_start, e)
        names = self.source_names
        return [
            (self.d_start[i], self.d_end[i], self.d_m[i], names[self.d_src[i]])
            for i in range(lo, hi)
            if self.d_end[i] <= e
        ]


def read_samples(
    open_stream: Opener, windows: _Windows, size: int, label: str, progress: Progress | None
) -> tuple[Samples, int]:
    """Step 2: stream every Record once, keeping the HR and distance samples inside workouts.

    The loop body is the cost that matters on a multi-GB export: a record that
    is not heart rate or distance, or whose start hour holds no workout, costs
    two attribute reads and is released.
    """
    from lxml import etree

    kept = Samples()
    hr_t, hr_v = kept.hr_t, kept.hr_v
    records = 0
    workouts = 0
    prefixes = windows.prefixes
    plen = windows.prefix_len
    inside = windows.inside
    starts, max_end, bisect_right = windows.starts, windows.max_end, bisect.bisect_right
    distance_types = DISTANCE_TYPES
    with open_stream() as raw_stream:
        stream = _Counting(raw_stream, size, label, progress)
        try:
            for _, el in _iterparse(stream, ("Record", "Workout")):
                if el.tag == "Workout":
                    workouts += 1
                    _release(el)
                    continue
                records += 1
                t = el.get("type")
                if t == HR_TYPE or t in distance_types:
                    sd = el.get("startDate")
                    if sd is not None and sd[:plen] in prefixes:
                        try:
                            start = epoch(sd)
                            value = float(el.get("value"))
                        except (TypeError, ValueError, IndexError):
                            start = None
                        if start is not None:
                            if t == HR_TYPE:
                                # Apple writes heart rate in count/min; no unit lookup on the hot path.
                                i = bisect_right(starts, start) - 1
                                if i >= 0 and max_end[i] >= start:
                                    hr_t.append(start)
                                    hr_v.append(value)
                            else:
                                _keep_distance(el, start, value, inside, kept)
                el.clear()
                parent = el.getparent()
                while el.getprevious() is not None:
                    del parent[0]
        except etree.XMLSyntaxError as exc:
            raise ImportFailed(f"malformed or truncated XML: {exc}") from exc
        if progress is not None:
            progress(label, size, size)
    kept.workouts_seen = workouts
    return kept, records


def _keep_distance(el: Any, start: float, value: float, inside: Callable[[float], bool], kept: Samples) -> None:
    ed = el.get("endDate")
    try:
        end = epoch(ed) if ed else start
    except (ValueError, IndexError):
        end = start
    if inside(start) or inside(end):
        kept.add_distance(start, end, value * METRES.get(el.get("unit", "m"), 1.0), el.get("sourceName", ""))


def read_export(
    open_stream: Opener,
    size: int,
    name: str,
    *,
    limits: Limits | None = None,
    progress: Progress | None = None,
) -> Extracted:
    """Workouts of one export.xml as records, in memory that does not grow with the file."""
    limits = limits or Limits()
    with open_stream() as stream:
        head = stream.read(64 * 1024)
    root = refuse_entities(head, limits)
    if root != "HealthData":
        raise ImportFailed(f"not an Apple Health export (root element {root})")
    workouts, _ = read_workouts(open_stream)
    windows = _Windows(workouts)
    kept, n_records = read_samples(open_stream, windows, size, name, progress)
    if kept.workouts_seen != len(workouts):
        # Workouts before the records (not how Apple writes exports): find them all, read again.
        workouts, _ = read_workouts(open_stream, from_end=False)
        windows = _Windows(workouts)
        kept, n_records = read_samples(open_stream, windows, size, name, progress)
    if not workouts:
        raise NotAnActivity(f"no workouts in the export ({n_records} health records, none of them a workout)")
    kept.sort()
    out = Extracted(kind="apple_health")
    bad = 0
    for w in workouts:
        try:
            raw = _raw(w, kept, name)
            out.records.append(validated(normalise_raw(raw)))
        except (ImportFailed, NotAnActivity, KeyError, ValueError, IndexError) as exc:
            bad += 1
            if bad <= 5:
                out.warnings.append(f"workout {w.get('workoutActivityType')} at {w.get('startDate')} skipped: {exc}")
    if bad > 5:
        out.warnings.append(f"... {bad - 5} more workouts skipped")
    if not out.records:
        raise ImportFailed(f"none of the {len(workouts)} workouts could be read")
    return out


def workout_id(w: dict[str, Any]) -> str:
    """Stable across re-exports: type, UTC start and recording app, not the export's date format."""
    start = utc_iso(datetime.fromtimestamp(epoch(w["startDate"]), tz=UTC))
    key = f"{w.get('workoutActivityType')}|{start}|{w.get('sourceName', '')}"
    return hashlib.sha256(key.encode()).hexdigest()[:20]


def _raw(w: dict[str, Any], kept: Samples, export_name: str) -> dict[str, Any]:
    s, e = epoch(w["startDate"]), epoch(w["endDate"])
    window_hr = [(t, v) for t, v in kept.heart_rate(s, e) if 20.0 <= v <= 250.0]
    raw: dict[str, Any] = {"format": "apple_health", "id": workout_id(w), "export": export_name}
    raw.update({k: v for k, v in w.items() if isinstance(v, (str, dict, list))})
    if window_hr:
        values = [v for _, v in window_hr]
        raw["heart_rate_samples"] = {"n": len(values), "avg": round(sum(values) / len(values), 1), "max": max(values)}
    splits = _splits(w, s, e, window_hr, kept.distance(s - 1, e + 1))
    if splits:
        raw["hr_splits"] = [
            {"km": x.km, "duration_s": x.duration_s, "avg_hr": x.avg_hr, "max_hr": x.max_hr} for x in splits
        ]
    return raw


def _splits(
    w: dict[str, Any],
    s: float,
    e: float,
    window_hr: list[tuple[float, float]],
    dist: list[tuple[float, float, float, str]],
) -> list[HRSplit] | None:
    """Per-km splits: the recorder's distance samples give a distance timeline, the HR samples its readings."""
    if not window_hr or not dist:
        return None
    own = [d for d in dist if d[3] == w.get("sourceName")]
    # iPhone and watch both count distance; summing both would double it, so keep one recorder.
    if own:
        chosen = own
    else:
        by_source: dict[str, float] = {}
        for d in dist:
            by_source[d[3]] = by_source.get(d[3], 0.0) + d[2]
        best = max(by_source, key=lambda k: by_source[k])
        chosen = [d for d in dist if d[3] == best]
    times = [s]
    cum = [0.0]
    total = 0.0
    for ds, de, meters, _ in chosen:
        if de < times[-1]:
            continue  # overlapping samples from one recorder: keep the timeline monotonic
        if ds > times[-1]:
            times.append(ds)
            cum.append(total)
        total += meters
        times.append(max(de, ds))
        cum.append(total)
    # Both sequences are in time order: walk them together instead of a search per reading.
    points = []
    j = 1
    last = len(times) - 1
    for t, v in window_hr:
        while j < last and times[j] < t:
            j += 1
        t0, t1 = times[j - 1], times[j]
        if t >= t1:
            d = cum[j]
        elif t <= t0 or t1 <= t0:
            d = cum[j - 1]
        else:
            d = cum[j - 1] + (cum[j] - cum[j - 1]) * (t - t0) / (t1 - t0)
        points.append((t - s, d, v))
    return hr_splits(points)


def _stat(raw: dict[str, Any], type_name: str) -> dict[str, str]:
    stats = raw.get("statistics") or {}
    return stats.get(type_name) or {}


def _with_unit(value: Any, unit: Any, table: dict[str, float]) -> float | None:
    v = num(value)
    if v is None:
        return None
    return v * table.get(str(unit or ""), 1.0)


def normalise_raw(raw: dict[str, Any]) -> SourceRecord:
    """The Apple Health record from its stored workout (pure: also used by unlink and rebuild)."""
    start_dt, end_dt = aware(raw["startDate"]), aware(raw["endDate"])
    start = check_start(start_dt.astimezone(UTC))
    meta = raw.get("metadata") or {}
    tz_name = meta.get("HKTimeZone")
    local = start_dt
    if tz_name:
        try:
            from zoneinfo import ZoneInfo

            local = start.astimezone(ZoneInfo(tz_name))
        except (KeyError, ValueError, OSError):
            tz_name = None
    distance = None
    for t in DISTANCE_TYPES:
        st = _stat(raw, t)
        if st.get("sum"):
            distance = _with_unit(st["sum"], st.get("unit"), METRES)
            break
    if distance is None:
        distance = _with_unit(raw.get("totalDistance"), raw.get("totalDistanceUnit"), METRES)
    energy = None
    for t in ENERGY_TYPES:
        st = _stat(raw, t)
        if st.get("sum"):
            energy = _with_unit(st["sum"], st.get("unit"), KCAL)
    if energy is None:
        energy = _with_unit(raw.get("totalEnergyBurned"), raw.get("totalEnergyBurnedUnit"), KCAL)
    hr_stat = _stat(raw, HR_TYPE)
    samples = raw.get("heart_rate_samples") or {}
    avg_hr = heart_rate(hr_stat.get("average")) or heart_rate(samples.get("avg"))
    max_hr = heart_rate(hr_stat.get("maximum")) or heart_rate(samples.get("max"))
    active = _with_unit(raw.get("duration"), raw.get("durationUnit") or "min", SECONDS)
    ascent = _quantity(meta.get("HKElevationAscended"))
    gain = ascent[0] * METRES.get(ascent[1], 1.0) if ascent else None
    activity_type = raw.get("workoutActivityType")
    splits = raw.get("hr_splits")
    return SourceRecord(
        source="apple_health",
        source_id=raw["id"],
        start_time=utc_iso(start),
        sport=normalise_sport("apple_health", activity_type),
        sport_raw=activity_type,
        start_time_local=local_iso(local),
        timezone=tz_name,
        distance_m=rounded(positive(distance), 1),
        duration_s=rounded(nonneg((end_dt - start_dt).total_seconds()), 1),
        moving_time_s=rounded(positive(active), 1),
        elevation_gain_m=rounded(nonneg(gain), 1),
        calories=rounded(positive(energy), 1),
        avg_hr=rounded(avg_hr, 1),
        max_hr=rounded(max_hr, 1),
        device=raw.get("sourceName") or None,
        hr_splits=[HRSplit(**x) for x in splits] if splits else None,
        raw=raw,
    )
