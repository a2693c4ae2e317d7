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

Modules: ``scan`` (the two streaming passes), ``samples`` (windows and the
samples kept), ``dates`` (the fast date parse), ``normalise`` (payload and record).
"""

from __future__ import annotations

from healthcache.importers.apple_health.normalise import normalise_raw, payload
from healthcache.importers.apple_health.samples import Windows
from healthcache.importers.apple_health.scan import Opener, Progress, read_samples, read_workouts
from healthcache.importers.base import Extracted, ImportFailed, Input, Limits, NotAnActivity, refuse_entities, validated

__all__ = ["normalise_raw", "read", "read_export"]


def read(item: Input) -> Extracted:
    """The format registry's entry point: the export is streamed, never held in memory."""
    return read_export(item.open, item.size, item.name, limits=item.limits, progress=item.progress)


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
    windows = Windows(workouts)
    kept, n_records = read_samples(open_stream, windows, size, name, progress)
    if kept.workouts_seen != len(workouts):
        # Workouts before the records (not how Apple writes exports): find them all, read again.
        workouts, _ = read_workouts(open_stream, from_end=False)
        windows = Windows(workouts)
        kept, n_records = read_samples(open_stream, windows, size, name, progress)
    if not workouts:
        raise NotAnActivity(f"no workouts in the export ({n_records} health records, none of them a workout)")
    kept.sort()
    out = Extracted(kind="apple_health")
    bad = 0
    for w in workouts:
        try:
            raw = payload(w, kept, name)
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
