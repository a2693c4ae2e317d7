"""The guarded store: the only code that reads and writes the cache file.

Every write is a transaction: take the lock, read the file, let the caller
compute a new cache, check it with the guard, back up the current file, and
replace it atomically.  A save that changes nothing writes nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import msgspec

from healthcache import GENERATOR, atomic, backup, codec, guard, state
from healthcache.config import Config, Paths
from healthcache.errors import CorruptInput, HealthcacheError, IntegrityRefused
from healthcache.lock import write_lock
from healthcache.model.records import Activity, Cache, Link, Tombstone, empty_cache, sort_key
from healthcache.timeutil import now_utc, utc_iso


class _Extras(msgspec.Struct, kw_only=True):
    tombstones: list[Tombstone]
    links: list[Link]


_activity_decoder = msgspec.json.Decoder(Activity)
_extras_decoder = msgspec.json.Decoder(_Extras)


class CacheIndex(msgspec.Struct, kw_only=True):
    """What we know about the file we last wrote, so a load can trust its bytes
    and a run with nothing new can decide so without parsing the cache."""

    sha256: str
    size: int
    mtime_ns: int
    activities: int
    records: int
    per_source: dict[str, int]
    updated_at: str


@dataclass
class Loaded:
    """A consistent snapshot of the cache file as read."""

    cache: Cache
    exists: bool
    sha256: str | None = None
    size: int = 0
    data: bytes = field(default=b"", repr=False)


@dataclass(frozen=True)
class SaveResult:
    changed: bool
    backup: Path | None = None
    pruned: tuple[Path, ...] = ()
    sha256: str | None = None
    forced: str | None = None
    violations: tuple[guard.Violation, ...] = ()


def read_index(paths: Paths) -> CacheIndex | None:
    try:
        return msgspec.json.decode(paths.index.read_bytes(), type=CacheIndex)
    except (OSError, msgspec.DecodeError, msgspec.ValidationError):
        return None


def read_baseline(paths: Paths) -> guard.Baseline | None:
    try:
        data = paths.baseline.read_bytes()
    except FileNotFoundError:
        return None
    try:
        return msgspec.json.decode(data, type=guard.Baseline)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) as exc:
        raise CorruptInput(
            paths.baseline,
            f"baseline is unreadable: {exc}",
            hint="Record a new one with: healthcache verify --baseline",
        ) from exc


def load_file(path: Path, *, index: CacheIndex | None = None, clock: Callable[[], datetime] = now_utc) -> Loaded:
    """Read and validate a cache (or backup) file; a missing file is an empty cache."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return Loaded(cache=empty_cache(GENERATOR, utc_iso(clock())), exists=False)
    except IsADirectoryError as exc:
        raise CorruptInput(path, "is a folder, not a cache file") from exc
    sha = hashlib.sha256(data).hexdigest()
    trusted = index is not None and index.sha256 == sha
    with codec.gc_paused():
        cache = codec.decode(data, path, trusted=trusted)
    return Loaded(cache=cache, exists=True, sha256=sha, size=len(data), data=data)


class Store:
    """A workspace's cache, lock, backups and state files."""

    def __init__(self, paths: Paths, config: Config | None = None, *, clock: Callable[[], datetime] = now_utc):
        self.paths = paths
        self.config = config if config is not None else Config.load(paths)
        self.clock = clock

    def read(self) -> Loaded:
        """A consistent snapshot without the lock: saves replace the file by rename."""
        return load_file(self.paths.cache, index=read_index(self.paths), clock=self.clock)

    @contextlib.contextmanager
    def transaction(
        self,
        *,
        lock_timeout: float | None = 0.0,
        on_wait: Callable[[str | None], None] | None = None,
        allow_corrupt: bool = False,
    ) -> Iterator[Transaction]:
        """Hold the write lock around a read-modify-write of the cache.

        ``allow_corrupt`` is for restore only: the transaction opens even when
        the current file cannot be read (``tx.corrupt`` then holds the error).
        """
        # A loaded cache is millions of long-lived objects; letting the collector
        # walk them on every allocation would cost more than the work itself.
        with write_lock(self.paths.lock, timeout=lock_timeout, on_wait=on_wait), codec.gc_paused():
            for folder in (self.paths.tracking, self.paths.sync_state, self.paths.backups, self.paths.credentials):
                atomic.sweep_temp_files(folder)
            corrupt: CorruptInput | None = None
            try:
                loaded = self.read()
            except CorruptInput as exc:
                if not allow_corrupt:
                    raise
                corrupt = exc
                loaded = Loaded(cache=empty_cache(GENERATOR, utc_iso(self.clock())), exists=True)
            yield Transaction(self, loaded, corrupt)


class Transaction:
    """One locked read-modify-write; ``save`` may be called more than once."""

    def __init__(self, store: Store, loaded: Loaded, corrupt: CorruptInput | None) -> None:
        self.store = store
        self.loaded = loaded
        self.corrupt = corrupt

    @property
    def cache(self) -> Cache:
        return self.loaded.cache

    @property
    def paths(self) -> Paths:
        return self.store.paths

    def check(self, new: Cache) -> list[guard.Violation]:
        """What the guard would say about saving ``new`` (for dry runs)."""
        old = None if self.corrupt is not None else self.loaded.cache
        return guard.check(old, new, read_baseline(self.paths))

    def save(self, new: Cache, *, force_reason: str | None = None) -> SaveResult:
        """Guard, back up, and atomically replace the cache with ``new``.

        ``force_reason`` lets ``restore --force`` past the drop checks; the
        current file is still backed up first, so even that is reversible.
        """
        paths = self.paths
        old = self.loaded
        new = self._canonical(msgspec.structs.replace(new, activities=sorted(new.activities, key=sort_key)))
        if not old.exists and self.corrupt is None and not (new.activities or new.tombstones or new.links):
            return SaveResult(changed=False)
        now = self.store.clock()
        final = msgspec.structs.replace(new, updated_at=utc_iso(now), generator=GENERATOR)
        if self.corrupt is None and old.exists:
            # Serialised with the old header, unchanged data gives the very same bytes.
            data = codec.encode(
                msgspec.structs.replace(new, updated_at=old.cache.updated_at, generator=old.cache.generator)
            )
            if data == old.data:
                return SaveResult(changed=False, sha256=old.sha256)
            data = codec.reheader(data, final)
        else:
            data = codec.encode(final)
        violations = self.check(new)
        if violations and force_reason is None:
            raise IntegrityRefused(guard.describe(violations), violations)
        decoded = self._validate(data)
        backup_path = None
        if old.exists and paths.cache.exists():
            sha = old.sha256 or backup.file_sha256(paths.cache)
            backup_path = backup.make_backup(paths.cache, paths.backups, sha, now, corrupt=self.corrupt is not None)
        atomic.save_atomic(paths.cache, data)
        sha = hashlib.sha256(data).hexdigest()
        self._write_index(decoded, data, sha)
        self.loaded = Loaded(cache=decoded, exists=True, sha256=sha, size=len(data), data=data)
        self.corrupt = None
        pruned = self._prune()
        return SaveResult(
            changed=True,
            backup=backup_path,
            pruned=tuple(pruned),
            sha256=sha,
            forced=force_reason if violations else None,
            violations=tuple(violations),
        )

    def _canonical(self, new: Cache) -> Cache:
        """Give values built in code (an int where a float belongs) their decoded form.

        Activities taken unchanged from the loaded file are canonical already;
        only the others take the round trip, which also validates them early.
        """
        loaded = {id(a) for a in self.loaded.cache.activities}
        for act in new.activities:
            # The cache root, its list and the activity itself sit above the raw payloads.
            if id(act) not in loaded and codec.depth(act.raw) + 3 > codec.MAX_DEPTH:
                raise HealthcacheError(
                    f"refusing to save: activity {act.id} holds JSON nested more than {codec.MAX_DEPTH} levels deep"
                )
        try:
            activities = [
                a if id(a) in loaded else _activity_decoder.decode(codec.encode_compact(a)) for a in new.activities
            ]
            extras = _extras_decoder.decode(codec.encode_compact(_Extras(tombstones=new.tombstones, links=new.links)))
        except msgspec.ValidationError as exc:
            raise HealthcacheError(f"refusing to save: the new cache does not match the schema: {exc}") from exc
        return msgspec.structs.replace(new, activities=activities, tombstones=extras.tombstones, links=extras.links)

    def _validate(self, data: bytes) -> Cache:
        """Re-parse and validate exactly the bytes that will be written."""
        try:
            with codec.gc_paused():
                decoded = codec._decoder.decode(data)
        except msgspec.ValidationError as exc:
            raise HealthcacheError(f"refusing to save: the new cache does not match the schema: {exc}") from exc
        problems = codec.hard_invariants(decoded)
        if problems:
            raise HealthcacheError(f"refusing to save: {problems[0]}")
        return decoded

    def _write_index(self, cache: Cache, data: bytes, sha: str) -> None:
        st = self.paths.cache.stat()
        total, per_source = guard.record_counts(cache)
        index = CacheIndex(
            sha256=sha,
            size=len(data),
            mtime_ns=st.st_mtime_ns,
            activities=len(cache.activities),
            records=total,
            per_source=dict(sorted(per_source.items())),
            updated_at=cache.updated_at,
        )
        self.write_state(self.paths.index, index)

    def write_state(self, path: Path, value: object) -> None:
        """Write a state document (sync cursor, manifest, baseline) under this lock."""
        state.save(path, value)

    def _prune(self) -> list[Path]:
        return backup.prune(self.paths.backups, self.store.config.retention)[1]
