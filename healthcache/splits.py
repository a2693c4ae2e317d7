"""Per-kilometre heart-rate splits from sample series: one pure function for every source.

API sources give parallel series of elapsed seconds, cumulative metres and
heart rate (Garmin's activity details, Strava's streams); file importers give
the same from their records (``from_samples``), so one workout gets the same
splits whichever way it arrived.  A split covers one
kilometre of distance; its duration is elapsed time (pauses included, as the
series are), and its average is time-weighted, because samples are irregular
(Strava's smart recording, Garmin's down-sampled charts).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from typing import Any

from healthcache.model.records import HRSplit

KM = 1000.0
MIN_LAST_SPLIT_M = 10.0  # a shorter tail after the last full kilometre is noise, not a split
MAX_HR = 300.0


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _heart_rate(value: Any) -> float | None:
    hr = _number(value)
    # 0 is a sensor dropout, not a heart rate; above MAX_HR is a glitch.
    return hr if hr is not None and 0 < hr <= MAX_HR else None


def per_km_splits(
    time_s: Sequence[Any],
    distance_m: Sequence[Any],
    heart_rate: Sequence[Any],
    *,
    min_last_m: float = MIN_LAST_SPLIT_M,
) -> list[HRSplit]:
    """Heart rate per kilometre from parallel sample series.

    Samples whose time or distance is missing are dropped; distance is made
    non-decreasing (GPS corrections), time must not go backwards.  Between two
    samples the heart rate is the mean of the two readings, and an interval
    that crosses a kilometre mark is divided in proportion to distance.
    Returns [] when there is no heart rate at all or no distance.
    """
    samples: list[tuple[float, float, float | None]] = []
    top = -math.inf
    last_t = -math.inf
    for t_raw, d_raw, h_raw in zip(time_s, distance_m, heart_rate, strict=False):
        t, d = _number(t_raw), _number(d_raw)
        if t is None or d is None or d < 0 or t < last_t:
            continue
        top = max(top, d)
        last_t = t
        samples.append((t, top, _heart_rate(h_raw)))
    if len(samples) < 2 or not any(h is not None for _, _, h in samples):
        return []
    total_m = samples[-1][1]
    if total_m <= 0:
        return []

    duration: dict[int, float] = {}
    hr_time: dict[int, float] = {}
    hr_sum: dict[int, float] = {}
    hr_max: dict[int, float] = {}

    def km_of(d: float) -> int:
        return int(d // KM) + 1

    def add(km: int, seconds: float, hr: float | None) -> None:
        duration[km] = duration.get(km, 0.0) + seconds
        if hr is not None and seconds > 0:
            hr_time[km] = hr_time.get(km, 0.0) + seconds
            hr_sum[km] = hr_sum.get(km, 0.0) + hr * seconds

    for _, d, h in samples:
        if h is not None:
            km = max(1, math.ceil(d / KM))  # a reading at a kilometre mark ends that kilometre
            hr_max[km] = max(hr_max.get(km, 0.0), h)

    for (t0, d0, h0), (t1, d1, h1) in itertools.pairwise(samples):
        dt = t1 - t0
        if dt <= 0:
            continue
        # A reading describes the interval that ends at it (as devices record);
        # the earlier one stands in when it is missing.
        hr = h1 if h1 is not None else h0
        if d1 <= d0:
            add(km_of(d0), dt, hr)
            continue
        pos = d0
        while pos < d1:
            km = km_of(pos)
            end = min(km * KM, d1)
            # The share first: dt * (end - pos) underflows for subnormal distances.
            add(km, dt * min(1.0, (end - pos) / (d1 - d0)), hr)
            pos = end

    last_km = km_of(total_m)
    if total_m - (last_km - 1) * KM < min_last_m:
        last_km -= 1  # the tail is too short to be a split
    out: list[HRSplit] = []
    for km in range(1, last_km + 1):
        if km not in duration:
            continue
        seconds = hr_time.get(km, 0.0)
        avg = round(hr_sum[km] / seconds, 1) if seconds > 0 else None
        out.append(HRSplit(km=km, duration_s=round(duration[km], 1), avg_hr=avg, max_hr=hr_max.get(km)))
    return out if any(s.avg_hr is not None for s in out) else []


def km_laps_to_splits(laps: Sequence[Any], *, tolerance_m: float = 20.0) -> list[HRSplit]:
    """Garmin laps as splits, only when they are kilometre laps (auto-lap at 1 km).

    Any other lap pattern (miles, manual laps, intervals) is not a per-km split
    and gives [].  Laps are Garmin ``lapDTOs`` dicts.
    """
    rows: list[tuple[float, float, float | None, float | None]] = []
    for lap in laps:
        if not isinstance(lap, dict):
            return []
        dist, dur = _number(lap.get("distance")), _number(lap.get("duration"))
        if dist is None or dur is None or dur < 0:
            return []
        rows.append((dist, dur, _heart_rate(lap.get("averageHR")), _heart_rate(lap.get("maxHR"))))
    if not rows:
        return []
    for dist, *_ in rows[:-1]:
        if abs(dist - KM) > tolerance_m:
            return []
    last = rows[-1][0]
    if last > KM + tolerance_m:
        return []
    if last < MIN_LAST_SPLIT_M:
        rows = rows[:-1]
    out = [
        HRSplit(km=i, duration_s=round(dur, 1), avg_hr=avg, max_hr=mx) for i, (_, dur, avg, mx) in enumerate(rows, 1)
    ]
    return out if any(s.avg_hr is not None for s in out) else []


def from_samples(
    samples: Iterable[tuple[float, float | None, float | None]], *, min_last_m: float = 50.0
) -> list[HRSplit] | None:
    """Splits from a recording's (seconds, metres or None, bpm or None) samples, or None.

    A heart-rate reading without a distance belongs where the athlete last
    was; a recording resumed mid-way starts its first kilometre where it starts.
    """
    times: list[float] = []
    dists: list[float] = []
    hrs: list[float | None] = []
    last_d: float | None = None
    for t, d, hr in samples:
        d = last_d if d is None else d
        if d is None:
            continue
        last_d = d
        times.append(t)
        dists.append(d)
        hrs.append(hr)
    if not dists:
        return None
    base = dists[0]
    splits = per_km_splits(times, [d - base for d in dists], hrs, min_last_m=min_last_m)
    return splits or None


def along_distance(
    start: float, heart_rate: Sequence[tuple[float, float]], intervals: Iterable[tuple[float, float, float]]
) -> list[HRSplit] | None:
    """Splits where distance comes as intervals (start s, end s, metres) apart from the heart rate
    readings (s, bpm), as Apple Health records them: each reading is placed on the distance
    timeline by linear interpolation, then split like any other samples.

    Intervals are of one recorder, in time order; one that overlaps the timeline so far is
    dropped (it would count its metres twice), a gap between two is time without distance.
    """
    if not heart_rate:
        return None
    times = [start]
    cum = [0.0]
    total = 0.0
    for ds, de, metres in intervals:
        if de < times[-1]:
            continue  # overlapping samples from one recorder: keep the timeline monotonic
        if ds > times[-1]:
            times.append(ds)
            cum.append(total)
        total += metres
        times.append(max(de, ds))
        cum.append(total)
    if len(times) == 1:
        return None
    # Both sequences are in time order: walk them together instead of a search per reading.
    points = []
    j = 1
    last = len(times) - 1
    for t, v in heart_rate:
        while j < last and times[j] < t:
            j += 1
        t0, t1 = times[j - 1], times[j]
        if t >= t1:
            d = cum[j]
        elif t <= t0 or t1 <= t0:
            d = cum[j - 1]
        else:
            d = cum[j - 1] + (cum[j] - cum[j - 1]) * (t - t0) / (t1 - t0)
        points.append((t - start, d, v))
    return from_samples(points)
