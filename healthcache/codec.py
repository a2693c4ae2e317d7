"""Bytes <-> ``Cache``: the strict loader and the canonical serialiser.

Loading is one typed msgspec decode (parse and type-check in one pass), then a
byte comparison with the canonical re-encoding.  A file we wrote compares equal,
which proves it has no duplicate keys; anything else takes the slow path that
names the exact problem.  Every failure is ``CorruptInput`` naming the file.
"""

from __future__ import annotations

import contextlib
import gc
import json
import re
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec

from healthcache.errors import CorruptInput, NewerSchema
from healthcache.model import checks
from healthcache.model.records import SCHEMA_VERSION, Cache, unique_record_keys

_encoder = msgspec.json.Encoder()

# Deeper JSON than this is refused everywhere, whatever the decoder on this
# Python would tolerate: real payloads nest fewer than 15 levels.
MAX_DEPTH = 64
# In the canonical (2-space indented) form, nesting depth is indentation.
_TOO_DEEP = re.compile(rb"\n" + b" " * (2 * MAX_DEPTH))
# The model's decoder checks everything but the string patterns (``model.checks``): enough for bytes
# healthcache wrote and validated itself.  ``_checked`` adds them, for any other bytes.
_decoder = msgspec.json.Decoder(Cache)
_checked = checks.CheckedDecoder(Cache)


def _from_v1(doc: dict[str, Any]) -> dict[str, Any]:
    """Version 2 adds ``joins`` to activities (the join decisions); a v1 file recorded none,
    so ``dupes --explain`` re-derives them as it always did."""
    return {**doc, "schema_version": 2}


# Migrations from older schema versions, applied in memory to the generic document;
# the file is rewritten only by the next save, which backs the old file up first.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _from_v1}


def migrated(doc: Any) -> Any:
    """``doc`` brought to this version when it is an older one we can migrate; else as it is."""
    version = doc.get("schema_version") if isinstance(doc, dict) else None
    if not isinstance(version, int) or isinstance(version, bool):
        return doc
    while version < SCHEMA_VERSION and version in MIGRATIONS:
        doc = MIGRATIONS[version](doc)
        version = doc["schema_version"]
    return doc


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Decoding allocates millions of objects; the collector only slows that down."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


EOL = b"\n"  # the canonical form's final byte


def encode(cache: Cache) -> bytes:
    """The canonical form: 2-space indented JSON, one trailing newline."""
    return encode_body(cache) + EOL


def encode_body(cache: Cache) -> bytes:
    """The canonical form but its final newline (``EOL``), which a big file's writer writes after it:
    appending it would copy the whole file once more (250 MB at 100k activities, ~0.15 s of fresh
    memory here)."""
    return msgspec.json.format(_encoder.encode(cache), indent=2)


def is_canonical(data: bytes, body: bytes) -> bool:
    """Whether ``data`` is ``body`` and ``EOL``, compared in place."""
    return len(data) == len(body) + len(EOL) and data.endswith(EOL) and data.startswith(body)


def depth(value: Any) -> int:
    """Nesting depth of a JSON-like value (a scalar is 0), without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        level += 1
        deepest = max(deepest, level)
        if level > MAX_DEPTH:
            break
        stack.extend((child, level) for child in children)
    return deepest


def encode_compact(value: Any) -> bytes:
    return _encoder.encode(value)


def encode_json(value: Any) -> bytes:
    """Canonical bytes for small state documents (baseline, sync state)."""
    return msgspec.json.format(_encoder.encode(value), indent=2) + b"\n"


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"duplicate key {key!r}")
        seen[key] = value
    return seen


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def strict_json(data: bytes, path: Path) -> Any:
    """Slow, exact parse that rejects duplicate keys, NaN/Infinity and bad UTF-8."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorruptInput(path, f"not valid UTF-8 at byte {exc.start}") from exc
    try:
        return json.loads(text, object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant)
    except RecursionError as exc:
        raise CorruptInput(path, "JSON nested too deeply") from exc
    except ValueError as exc:
        raise CorruptInput(path, f"not valid JSON: {exc}") from exc


def _migrate(data: bytes, path: Path, error: msgspec.ValidationError) -> Cache:
    try:
        doc = msgspec.json.decode(data)
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError):
        raise CorruptInput(path, f"does not match the cache schema: {error}") from error
    version = doc.get("schema_version") if isinstance(doc, dict) else None
    if isinstance(version, int) and not isinstance(version, bool):
        if version > SCHEMA_VERSION:
            raise NewerSchema(
                path,
                f"schema_version {version} was written by a newer healthcache (this one reads up to {SCHEMA_VERSION})",
                hint="Upgrade healthcache; nothing was changed.",
            )
        if version < SCHEMA_VERSION and version in MIGRATIONS:
            doc = migrated(doc)
            try:
                return checks.convert_checked(doc, Cache)
            except msgspec.ValidationError as exc:
                raise CorruptInput(path, f"migrated file does not match the schema: {exc}") from exc
    raise CorruptInput(path, f"does not match the cache schema: {error}") from error


def decode(data: bytes, path: Path, *, trusted: bool = False, invariants: bool = True) -> Cache:
    """Parse and validate a cache file's bytes; ``CorruptInput`` on any defect.

    Callers pause the garbage collector around this (``gc_paused``): the
    decoded cache is millions of long-lived objects.

    ``trusted`` means the caller knows these are bytes we wrote (their hash is the
    one recorded at our last save), so the duplicate-key proof can be skipped.
    """
    cache = parse(data, path)
    if not trusted:
        prove(cache, data, path, invariants=invariants)
    return cache


def parse(data: bytes, path: Path) -> Cache:
    """The typed parse alone (older schemas migrated): ``decode`` without ``prove``."""
    if not data or data.isspace():
        raise CorruptInput(path, "file is empty")
    try:
        return _decoder.decode(data)
    except msgspec.ValidationError as exc:
        return _migrate(data, path, exc)
    except msgspec.DecodeError as exc:
        raise CorruptInput(path, f"not valid JSON: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise CorruptInput(path, f"not valid UTF-8 at byte {exc.start}") from exc
    except RecursionError as exc:
        raise CorruptInput(path, "JSON nested too deeply") from exc


def prove(cache: Cache, data: bytes, path: Path, *, invariants: bool = True) -> None:
    """What a parse does not prove of bytes not known as healthcache's own: the string patterns,
    no key given twice, no nesting deeper than ``MAX_DEPTH`` and (``invariants``) the hard
    invariants.  Trusted bytes are exactly what a save validated, invariants included."""
    try:
        checks.check_patterns(data, Cache)
    except msgspec.ValidationError as exc:
        raise CorruptInput(path, f"does not match the cache schema: {exc}") from exc
    canonical = encode_body(cache)
    if not is_canonical(data, canonical):
        # Not our canonical bytes: hand-edited or written by another tool.  Only
        # the exact parser can tell whether a key was given twice.
        strict_json(data, path)
    if _TOO_DEEP.search(canonical):
        raise CorruptInput(path, f"JSON nested more than {MAX_DEPTH} levels deep")
    problems = hard_invariants(cache) if invariants else []
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise CorruptInput(path, problems[0] + more)


def hard_invariants(cache: Cache) -> list[str]:
    """Defects that make the file unusable as a store: duplicate ids, bad times."""
    problems: list[str] = []
    if unique_record_keys(cache.activities) is None:
        problems.extend(_duplicate_keys(cache))
    check_time = datetime.fromisoformat
    for act in cache.activities:
        for name in ("start_time", "first_seen_at", "updated_at"):
            value = getattr(act, name)
            try:
                # The schema pattern already fixed the form; this catches month 13 and the like.
                check_time(value)
            except ValueError:
                problems.append(f"activity {act.id!r}: {name} {value!r} is not a valid time")
    return problems


def _duplicate_keys(cache: Cache) -> list[str]:
    problems: list[str] = []
    owner: dict[str, int] = {}
    for pos, act in enumerate(cache.activities):
        for key in act.record_keys():
            other = owner.setdefault(key, pos)
            if other != pos:
                problems.append(f"id {key!r} belongs to two activities ({cache.activities[other].id!r} and {act.id!r})")
    return problems
