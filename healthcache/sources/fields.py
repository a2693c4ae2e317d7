"""Typed readers of API payload fields, and the schema check of the record built from them.

A wrong type is an error naming the key, so one malformed payload is reported
and skipped instead of half-imported.
"""

from __future__ import annotations

import math
from typing import Any

import msgspec

from healthcache.model import checks
from healthcache.model.records import SourceRecord


def payload_number(raw: dict[str, Any], key: str) -> float | None:
    """A numeric field: absent/null is None; anything but a finite number is an error."""
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{key}: expected a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{key}: not a finite number: {value!r}")
    return value


def payload_text(raw: dict[str, Any], key: str) -> str | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{key}: expected text, got {value!r}")
    return value


def validate(record: SourceRecord) -> SourceRecord:
    """Check a record against the cache schema's constraints (HR range, no negatives...).

    A record that would fail the save's schema check must be rejected here, one
    record at a time, instead of failing the whole save later.
    """
    try:
        checked = checks.convert_checked(msgspec.to_builtins(msgspec.structs.replace(record, raw=None)), SourceRecord)
    except msgspec.ValidationError as exc:
        raise ValueError(str(exc)) from exc
    return msgspec.structs.replace(checked, raw=record.raw)
