"""Streaming the export with lxml iterparse: the workouts from their first byte, then the samples in one pass.

Memory does not depend on the file's size: every element is cleared as soon
as it is read, and the byte searches reuse one buffer.
"""

from __future__ import annotations

import bisect
import io
from collections.abc import Callable
from typing import IO, Any

from healthcache.importers.apple_health.dates import epoch
from healthcache.importers.apple_health.samples import DISTANCE_TYPES, HR_TYPE, METRES, Samples, Windows
from healthcache.importers.base import ImportFailed

CHUNK = 8 * 1024 * 1024
PROGRESS_STEP = 4 * 1024 * 1024

Progress = Callable[[str, int, int], None]
Opener = Callable[[], IO[bytes]]


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


def read_samples(
    open_stream: Opener, windows: Windows, size: int, label: str, progress: Progress | None
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
