"""Apple Health export dates, parsed fast: the hot path of the sample scan runs this per sample."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

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
