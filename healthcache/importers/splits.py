"""Per-kilometre heart-rate splits from a recording's samples: a pure function.

A sample is (seconds, cumulative metres or None, bpm or None).  Each
kilometre's duration runs between the interpolated times at which the
distance crossed its boundaries; its heart rate is the mean and maximum of the
readings taken inside it.  The last kilometre may be partial, and is kept when
it covers at least ``min_last_m`` metres.
"""

from __future__ import annotations

from collections.abc import Iterable

from healthcache.model.records import HRSplit

Sample = tuple[float, float | None, float | None]


def hr_splits(samples: Iterable[Sample], *, min_last_m: float = 50.0) -> list[HRSplit] | None:
    """Per-km splits, or None when the samples lack distance or heart rate."""
    pts: list[tuple[float, float, float | None]] = []
    best = -1.0
    any_hr = False
    last_d: float | None = None
    for t, d, hr in samples:
        if d is None:
            d = last_d  # HR without a distance reading: it belongs where the runner last was
            if d is None:
                continue
        last_d = d
        best = max(best, d)  # distance never goes back; a reset or a glitch would fake new kilometres
        if hr is not None:
            any_hr = True
        pts.append((t, best, hr))
    if not any_hr or len(pts) < 2 or pts[-1][1] - pts[0][1] < min_last_m:
        return None

    out: list[HRSplit] = []
    km = 1
    base = pts[0][1]  # a recording resumed mid-way starts its first kilometre where it starts
    boundary = base + 1000.0
    t_start = pts[0][0]
    hr_sum = 0.0
    hr_n = 0
    hr_max = 0.0
    prev_t, prev_d = pts[0][0], pts[0][1]

    def close(km: int, t_end: float) -> None:
        out.append(
            HRSplit(
                km=km,
                duration_s=round(max(t_end - t_start, 0.0), 1),
                avg_hr=round(hr_sum / hr_n, 1) if hr_n else None,
                max_hr=hr_max if hr_n else None,
            )
        )

    for t, d, hr in pts:
        while d >= boundary and d > prev_d:
            # Interpolate the moment the boundary was crossed between the previous and this sample.
            frac = (boundary - prev_d) / (d - prev_d)
            t_cross = prev_t + frac * (t - prev_t)
            if d == boundary and hr is not None:
                # A reading exactly on the boundary closes the kilometre it ends.
                hr_sum += hr
                hr_n += 1
                hr_max = max(hr_max, hr)
                hr = None
            close(km, t_cross)
            km += 1
            boundary += 1000.0
            t_start = t_cross
            hr_sum, hr_n, hr_max = 0.0, 0, 0.0
        if hr is not None:
            hr_sum += hr
            hr_n += 1
            hr_max = max(hr_max, hr)
        prev_t, prev_d = t, d
    partial = pts[-1][1] - (boundary - 1000.0)
    if partial >= min_last_m:
        close(km, pts[-1][0])
    return out or None
