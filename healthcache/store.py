"""The guarded store: the one path by which the cache file is written.

Every write is a transaction: take the lock, read the file, let the caller
compute a new cache, check it with the guard, back up the current file, and
replace it atomically.  A save that changes nothing writes nothing.

Each saved state is also kept as the newest backup (a copy, so that an
editor or script rewriting the cache in place cannot touch it).  A file on
disk that is not the one healthcache last saved was changed outside
healthcache: a writing command compares it with that backup and refuses when
it lost an activity or its HR data, unless the loss is accepted.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import msgspec

from healthcache import GENERATOR, atomic, state
from healthcache.background import in_background
from healthcache.cacheindex import CacheIndex, lineage_of, new_lineage, newest_tombstones, read_index
from healthcache.config import Config, Paths
from healthcache.errors import CorruptInput, HealthcacheError, IntegrityRefused, StorageError
from healthcache.lock import write_lock
from healthcache.model import checks
from healthcache.model.records import Activity, Cache, Link, Tombstone, empty_cache, sort_key, unique_record_keys
from healthcache.timeutil import now_utc, utc_iso

if TYPE_CHECKING:  # a command that never saves (a day with nothing new) loads none of them
    from healthcache import backup, guard


class _Extras(msgspec.Struct, kw_only=True):
    tombstones: list[Tombstone]
    links: list[Link]


# What a save decodes is not yet healthcache's own: its string patterns are checked too.
_activity_decoder = checks.CheckedDecoder(Activity)
_extras_decoder = checks.CheckedDecoder(_Extras)


@dataclass(frozen=True)
class OutsideEdit:
    """The cache on disk is not the file healthcache last saved.

    ``last_saved`` is the backup that holds the state healthcache last saved
    (None when no readable backup exists); ``lost`` is what the file on disk
    no longer has of it; ``changed`` is False when the file is that very state
    and only the index is stale (a crash between the save and the index).
    """

    last_saved: Path | None
    since: str | None
    lost: tuple[guard.Violation, ...] = ()
    changed: bool = True

    def describe(self) -> str:
        when = f" since {self.since}" if self.since else ""
        if not self.lost:
            return f"the cache was changed outside healthcache{when}; nothing healthcache saved is missing"
        lines = [f"the cache was changed outside healthcache{when} and lost what healthcache had saved:"]
        lines += [f"  - {v.subject}: {what_was_lost(v)}" for v in self.lost[:LIST_LIMIT]]
        if len(self.lost) > LIST_LIMIT:
            lines.append(f"  ... and {len(self.lost) - LIST_LIMIT} more (use --json for the full list)")
        return "\n".join(lines)

    def hint(self, home: Path) -> str:
        if self.last_saved is None:
            return "No backup of the last saved state exists."
        return (
            f"Bring it back with: healthcache restore --home {home} --merge {self.last_saved.name}\n"
            "or accept the loss with --accept-outside-edits."
        )


LIST_LIMIT = 20


def what_was_lost(v: guard.Violation) -> str:
    """A guard violation told in the past: an outside edit already did it."""
    return v.detail.replace(" would disappear", " is gone").replace(" would be removed", " was removed")


class OutsideEditRefused(IntegrityRefused):
    """A writing command found the cache changed outside healthcache with data lost."""

    def __init__(self, edit: OutsideEdit, home: Path) -> None:
        super().__init__(edit.describe(), list(edit.lost), hint=edit.hint(home))
        self.edit = edit

    def json_fields(self) -> dict[str, Any]:
        return {
            **super().json_fields(),
            "lost": sorted({v.subject for v in self.edit.lost}),
            "last_saved": None if self.edit.last_saved is None else str(self.edit.last_saved),
        }


def outside_edit(paths: Paths, loaded: Loaded, index: CacheIndex | None) -> OutsideEdit | None:
    """Compare a file that is not the one last saved with the last saved state (its newest backup)."""
    from healthcache import backup, guard

    if not loaded.exists or loaded.sha256 is None or (index is not None and index.sha256 == loaded.sha256):
        return None
    since = index.updated_at if index is not None else None
    for info in backup.list_backups(paths.backups):
        if loaded.sha256.startswith(info.digest):
            return OutsideEdit(last_saved=info.path, since=since, changed=False)
        try:
            last = load_file(info.path).cache
        except (CorruptInput, OSError):
            continue  # an unreadable backup says nothing; the next older one does
        lost = tuple(v for v in guard.check(last, loaded.cache, None))
        return OutsideEdit(last_saved=info.path, since=since or last.updated_at, lost=lost)
    if index is None:
        return None  # never saved by healthcache here (or its index is gone): nothing to compare with
    return OutsideEdit(last_saved=None, since=since)


@dataclass
class Loaded:
    """A consistent snapshot of the cache file as read."""

    cache: Cache
    exists: bool
    sha256: str | None = None
    size: int = 0
    data: bytes = field(default=b"", repr=False)  # the file's bytes, but ``tail``
    index: CacheIndex | None = None  # the index as read beside the file
    tail: bytes = b""  # after a save: its final newline, written after ``data`` rather than copied onto it

    def content(self) -> atomic.Chunks:
        """The file's bytes, in their parts."""
        return (self.data, self.tail) if self.tail else self.data


@dataclass(frozen=True)
class SaveResult:
    changed: bool
    backup: Path | None = None
    sha256: str | None = None
    violations: tuple[guard.Violation, ...] = ()
    kept: Path | None = None  # the backup that keeps the state just saved
    lineage: str | None = None
    outside: OutsideEdit | None = None  # an outside edit this save accepted


def read_baseline(paths: Paths) -> guard.Baseline | None:
    from healthcache import guard

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


def _settle() -> None:
    """Move every object the collector tracks to its oldest generation, as surviving a collection would.

    A loaded cache is millions of long-lived objects allocated while the
    collector was paused: the first young collection after it resumes would
    walk all of them (about 0.1 s per 10k activities) to find no garbage.
    ``freeze`` then ``unfreeze`` moves them without a walk.  Skipped when the
    process froze objects of its own (``unfreeze`` would release them).
    """
    if gc.get_freeze_count() == 0:
        gc.freeze()
        gc.unfreeze()


def load_file(path: Path, *, index: CacheIndex | None = None, clock: Callable[[], datetime] = now_utc) -> Loaded:
    """Read and validate a cache (or backup, plain or compressed) file; a missing file is an empty cache."""
    from healthcache import backup, codec

    try:
        data = backup.read_bytes(path)
    except FileNotFoundError:
        return Loaded(cache=empty_cache(GENERATOR, utc_iso(clock())), exists=False)
    except IsADirectoryError as exc:
        raise CorruptInput(path, "is a folder, not a cache file") from exc
    # Hashed on a thread (hashlib releases the GIL) while the bytes are parsed; only then is it
    # known whether they are the ones last saved (the index's) or need the full proof.
    digest = in_background(partial(_sha256, data))
    with codec.gc_paused():
        cache = codec.parse(data, path)
        sha = digest()
        if index is None or index.sha256 != sha:
            codec.prove(cache, data, path)
        _settle()
    return Loaded(cache=cache, exists=True, sha256=sha, size=len(data), data=data, index=index)


def _sha256(*parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part)
    return digest.hexdigest()


def _written_before(path: Path, now: datetime) -> datetime:
    """When the file being replaced was written (its mtime), and in any case before ``now``.

    Its backup is named by that moment, so it sorts before the backup of the
    state the save writes, which is named ``now``.
    """
    latest = now - timedelta(microseconds=1)
    try:
        written = datetime.fromtimestamp(path.stat().st_mtime_ns / 1e9, tz=UTC)
    except OSError:
        return latest
    return min(written, latest)


# The canonical layout (``codec.encode``, 2-space indent) around and between activities.  JSON
# strings hold no raw newline, so a comma, a newline, four spaces and a brace can only start an
# object two levels deep: within the activities list, one activity.
_OPEN = b'\n  "activities": [\n'
_CLOSE = b'\n  ],\n  "tombstones": '
_NO_ACTIVITIES = b'\n  "activities": [],\n  "tombstones": '
_SEP = b",\n"


def _activities_region(data: bytes) -> tuple[int, int] | None:
    """Where the activities list's items are in canonical cache bytes: (start, end); None if not there."""
    start = data.find(_OPEN)
    end = data.rfind(_CLOSE)  # near the end: only the tombstones and links follow
    if start < 0 or end <= start + len(_OPEN):
        return None
    return start + len(_OPEN), end


def _element(act: Activity) -> bytes:
    """One activity's bytes in the canonical activities list (after its two bytes of separator)."""
    from healthcache import codec

    return b"    " + msgspec.json.format(codec.encode_compact(act), indent=2).replace(b"\n", b"\n    ")


def _same_but_header(data: bytes, old: Loaded, new: Cache) -> bool:
    """Whether ``data`` and ``codec.EOL`` (``new`` with this save's header) are the loaded file's bytes
    but for the header's time and generator: then the save changes nothing.  Compared in place, no copy."""
    from healthcache import codec

    body = _OPEN[:-2]  # the body starts at the activities key
    i, j = data.find(body), old.data.find(body)
    if i < 0 or j < 0 or len(data) + len(codec.EOL) - i != old.size - j:
        return False
    head = codec.encode(
        msgspec.structs.replace(
            new, updated_at=old.cache.updated_at, generator=old.cache.generator, activities=[], tombstones=[], links=[]
        )
    )
    rest = memoryview(data)[i:]
    ends = old.tail == codec.EOL if old.tail else old.data.endswith(codec.EOL)
    return head.find(body) == j and old.data.startswith(head[:j]) and old.data.startswith(rest, j) and ends


class _Removals:
    """Links to a replaced file's old bytes (``atomic.Prepared.commit``), removed on threads: freeing
    a big file's blocks is mostly waiting on the file system (~80 ms for 250 MB, 12 ms of it CPU)."""

    def __init__(self) -> None:
        self._waits: list[Callable[[], None]] = []

    def start(self, path: Path) -> None:
        self._waits.append(in_background(partial(_unlink, path)))

    def wait(self, *, quiet: bool = False) -> None:
        """Until every link is gone; ``quiet`` while another error is being raised."""
        for done in self._waits:
            try:
                done()
            except OSError:
                if not quiet:
                    raise


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _discard(ahead: Callable[[], atomic.Prepared | Path]) -> None:
    """Wait for the writing ahead and remove its temp file: the save will not happen.  (A path is
    a file that was there already: nothing was written for it.)"""
    try:
        prepared = ahead()
    except BaseException:
        return  # it failed, and left no temp file
    if not isinstance(prepared, Path):
        prepared.discard()


class _KeepAhead:
    """The copy of a state being saved that is kept as the newest backup (``Transaction._keep``), written
    and fsynced on a thread beside the save's checks and its own write; put in place only after the cache
    (``commit``), so a crash leaves the order it always had.  A failure to write it is raised by ``commit``,
    after the cache is saved, as ``backup.backup_failed`` says."""

    def __init__(
        self, tx: Transaction, data: atomic.Chunks, sha: Callable[[], str], when: datetime, *, background: bool = True
    ) -> None:
        self._folder, self._sha, self._when = tx.paths.backups, sha, when

        def prepare() -> Path | atomic.Prepared:
            return tx._prepare_keep(data, sha(), when)

        self._ready = in_background(prepare) if background else prepare

    def commit(self) -> Path:
        from healthcache import backup

        try:
            ready = self._ready()
            if isinstance(ready, Path):
                return ready
            ready.commit()
        except OSError as exc:
            err = backup.backup_failed(self._folder / backup.backup_name(self._when, self._sha()), exc)
            raise err from err.cause
        return ready.path

    def discard(self) -> None:
        """The save will not happen: wait for the copy and remove it."""
        _discard(self._ready)


class _Placed(NamedTuple):
    """Where each activity a save writes was in the loaded cache: that very object's position, or None."""

    at: list[int | None]
    fresh: list[int]  # where, in the list saved, the activities not taken from the loaded cache are
    gone: list[int]  # the loaded activities not in the list saved, by position


class Store:
    """A workspace's cache, lock, backups and state files."""

    def __init__(
        self,
        paths: Paths,
        config: Config | None = None,
        *,
        clock: Callable[[], datetime] = now_utc,
        accept_outside_edits: bool = False,
        on_outside: Callable[[OutsideEdit], None] | None = None,
    ):
        self.paths = paths
        self.config = config if config is not None else Config.load(paths)
        self.clock = clock
        # The user's explicit word that a loss made outside healthcache is to be kept.
        self.accept_outside_edits = accept_outside_edits
        self.on_outside = on_outside  # told of an outside edit a transaction goes on with

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
        check_outside: bool = True,
    ) -> Iterator[Transaction]:
        """Hold the write lock around a read-modify-write of the cache.

        ``allow_corrupt`` and ``check_outside=False`` are for restore only: the
        transaction opens even when the current file cannot be read
        (``tx.corrupt`` then holds the error) or lost data outside healthcache
        (restoring is how that loss is undone).
        """
        # A loaded cache is millions of long-lived objects; letting the collector
        # walk them on every allocation would cost more than the work itself.
        from healthcache import codec

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
                loaded = Loaded(
                    cache=empty_cache(GENERATOR, utc_iso(self.clock())), exists=True, index=read_index(self.paths)
                )
            outside = outside_edit(self.paths, loaded, loaded.index) if corrupt is None else None
            if outside is not None and outside.lost and check_outside and not self.accept_outside_edits:
                raise OutsideEditRefused(outside, self.paths.home)
            if outside is not None and outside.changed and self.on_outside is not None:
                self.on_outside(outside)
            try:
                yield Transaction(self, loaded, corrupt, outside)
            finally:
                _settle()  # what the save built, before the collector resumes


class Transaction:
    """One locked read-modify-write; ``save`` may be called more than once."""

    def __init__(
        self, store: Store, loaded: Loaded, corrupt: CorruptInput | None, outside: OutsideEdit | None = None
    ) -> None:
        self.store = store
        self.loaded = loaded
        self.corrupt = corrupt
        self.outside = outside  # the file is not the one last saved (see OutsideEdit)
        self._untrusted = f"untrusted-{new_lineage()}"
        self._positions_of: Loaded | None = None
        self._position: dict[int, int] = {}
        self._placed = _Placed(at=[], fresh=[], gone=[])  # the save's (``_place``), for ``_fresh_activities``

    @property
    def lineage(self) -> str:
        """What state written under this lock should record.

        The index's lineage when the loaded file is the one healthcache last
        saved; otherwise a token no later lineage equals, so that state is
        checked against the cache next time.
        """
        index = self.loaded.index
        if self.corrupt is None and index is not None and index.sha256 == self.loaded.sha256:
            return lineage_of(index)
        return self._untrusted

    @property
    def cache(self) -> Cache:
        return self.loaded.cache

    @property
    def paths(self) -> Paths:
        return self.store.paths

    def check(self, new: Cache) -> list[guard.Violation]:
        """What the guard would say about saving ``new`` (for dry runs)."""
        from healthcache import guard

        old = None if self.corrupt is not None else self.loaded.cache
        return guard.check(old, new, read_baseline(self.paths))

    def save(self, new: Cache, *, force_reason: str | None = None) -> SaveResult:
        """Guard, back up, and atomically replace the cache with ``new``.

        ``force_reason`` lets ``restore --force`` past the drop checks; the
        current file is still backed up first, so even that is reversible.
        """
        from healthcache import backup, codec, guard

        paths = self.paths
        old = self.loaded
        new = msgspec.structs.replace(new, activities=sorted(new.activities, key=sort_key))
        self._placed = placed = self._place(new.activities)
        new = self._canonical(new, placed)
        if not old.exists and self.corrupt is None and not (new.activities or new.tombstones or new.links):
            return SaveResult(changed=False)
        now = self.store.clock()
        final = msgspec.structs.replace(new, updated_at=utc_iso(now), generator=GENERATOR)
        data = codec.encode_body(final)  # the file is ``data`` and then ``codec.EOL``
        if self.corrupt is None and old.exists and _same_but_header(data, old, new):
            if self.outside is None and old.index is not None:
                return SaveResult(changed=False, sha256=old.sha256, lineage=self.lineage)
            return self._adopt()
        # The state being replaced becomes the second newest backup, stored compressed: compress it
        # from memory on a thread (zstd releases the GIL), the longest of the save's background work,
        # started first.  The hash of what will be written too, beside the checks.
        replaced = old.sha256 if old.exists and self.corrupt is None and old.data else None
        compressed = backup.compress_in_background(old.content()) if replaced else None
        digest = in_background(partial(_sha256, data, codec.EOL))
        violations = self._guard(new, placed)
        if violations and force_reason is None:
            raise IntegrityRefused(guard.describe(violations), violations)
        # The new file is written and fsynced to a temp file on a thread while its bytes are
        # validated (``atomic.prepare``); it is put in place only after.
        ahead = in_background(partial(atomic.prepare, paths.cache, (data, codec.EOL)))
        # So is the copy kept as the newest backup, on a thread of its own; it is put in place after the cache.
        keep = _KeepAhead(self, (data, codec.EOL), digest, now)
        try:
            live = self._validate(data, final)
            backup_path = self._back_up_replaced(now)
        except BaseException:
            _discard(ahead)
            keep.discard()
            raise
        lineage = self._next_lineage(dropped=bool(violations))
        removals = _Removals()
        try:
            try:
                ahead().commit(release=removals.start)  # the temp file's write failing is raised here: nothing changed
            except BaseException:
                keep.discard()
                raise
            sha = digest()
            try:
                kept: Path | None = keep.commit()
                unkept: StorageError | None = None
            except StorageError as exc:  # the cache is saved: the index must still say so (below)
                kept, unkept = None, exc
            size = len(data) + len(codec.EOL)
            index = self._write_index(final, size, sha, lineage, live)
            outside = self.outside
            # What was validated is what was written: ``final`` is what those bytes decode to.
            self.loaded = Loaded(
                cache=final, exists=True, sha256=sha, size=size, data=data, index=index, tail=codec.EOL
            )
            self.corrupt = None
            self.outside = None
            if unkept is not None:
                # Told after the index vouches for the file saved, so that no later command takes
                # healthcache's own save for an edit from outside; the next save keeps a copy again.
                raise unkept
            self._prune(replaced, compressed)
        except BaseException:
            removals.wait(quiet=True)
            raise
        removals.wait()
        if backup_path is not None:
            backup_path = backup.where_now(backup_path)
        return SaveResult(
            changed=True,
            backup=backup_path,
            sha256=sha,
            violations=tuple(violations),
            kept=kept,
            lineage=lineage,
            outside=outside,
        )

    def _back_up_replaced(self, now: datetime) -> Path | None:
        """The backup of the file this save replaces, made now (a link) if it is not kept yet."""
        from healthcache import backup

        old, paths = self.loaded, self.paths
        if not old.exists or not paths.cache.exists():
            return None
        sha = old.sha256 or backup.file_sha256(paths.cache)
        found = backup.find(paths.backups, sha) if self.corrupt is None else None
        if found is not None:
            return found
        # Not kept yet (written by an older version, changed outside, or a crash
        # before its copy): the file is about to be replaced, so a link is safe.
        return backup.make_backup(
            paths.cache, paths.backups, sha, _written_before(paths.cache, now), corrupt=self.corrupt is not None
        )

    def _next_lineage(self, *, dropped: bool) -> str:
        """Carry the lineage through a save that keeps every record key; renew it otherwise."""
        index = self.loaded.index
        if dropped or self.corrupt is not None or self.outside is not None or index is None:
            return new_lineage()
        if self.loaded.exists and index.sha256 != self.loaded.sha256:
            return new_lineage()
        return lineage_of(index)

    def _keep(self, data: atomic.Chunks, sha: str, when: datetime) -> Path:
        """Keep the state just saved as the newest backup: the reference for outside edits.

        A copy, not a link: a script that rewrites the cache in place must not
        rewrite its backup too.
        """
        return _KeepAhead(self, data, lambda: sha, when, background=False).commit()

    def _prepare_keep(self, data: atomic.Chunks, sha: str, when: datetime) -> Path | atomic.Prepared:
        """``_keep`` up to its commit: the newest backup when it holds this state already, else the copy
        written and fsynced beside its place."""
        from healthcache import backup

        newest = backup.list_backups(self.paths.backups)[:1]
        if newest and sha.startswith(newest[0].digest):
            return newest[0].path
        # An older backup of the same content (a restore, an undo) does not serve: the
        # newest backup must be this state, so it is kept again under this moment.
        mode = atomic.existing_mode(self.paths.cache)
        return backup.prepare_backup(self.paths.backups, data, sha, when, mode)

    def _adopt(self) -> SaveResult:
        """Nothing to save, but the file is not the one last saved: make it the reference.

        The loss (if any) was accepted or there was none; from now on the file
        is kept as the newest backup and described by the index, under a new
        lineage, so state written before is checked against it.
        """
        old = self.loaded
        assert old.sha256 is not None
        kept = self._keep(old.content(), old.sha256, self.store.clock())
        lineage = new_lineage()
        index = self._write_index(old.cache, old.size, old.sha256, lineage)
        outside = self.outside
        self.loaded = dataclasses.replace(old, index=index)
        self.outside = None
        return SaveResult(changed=False, sha256=old.sha256, kept=kept, lineage=lineage, outside=outside)

    def _positions(self) -> dict[int, int]:
        """Each loaded activity object's position in the loaded cache, by identity (computed once per state)."""
        if self._positions_of is not self.loaded:
            self._positions_of = self.loaded
            self._position = {id(a): i for i, a in enumerate(self.loaded.cache.activities)}
        return self._position

    def _place(self, activities: list[Activity]) -> _Placed:
        """Where each activity about to be saved was in the loaded cache (one pass, by identity)."""
        where = self._positions()
        at = [where.get(id(a)) for a in activities]
        fresh = [i for i, j in enumerate(at) if j is None]
        kept = set(at)
        kept.discard(None)
        count = len(self.loaded.cache.activities)
        gone = [] if len(kept) == count else [j for j in range(count) if j not in kept]
        return _Placed(at=at, fresh=fresh, gone=gone)

    def _canonical(self, new: Cache, placed: _Placed) -> Cache:
        """Give values built in code (an int where a float belongs) their decoded form.

        Activities taken unchanged from the loaded file are canonical already;
        only the others take the round trip, which also validates them early.
        """
        from healthcache import codec

        for i in placed.fresh:
            # The cache root, its list and the activity itself sit above the raw payloads.
            if codec.depth(new.activities[i].raw) + 3 > codec.MAX_DEPTH:
                raise HealthcacheError(
                    f"refusing to save: activity {new.activities[i].id} holds JSON nested more than"
                    f" {codec.MAX_DEPTH} levels deep"
                )
        try:
            activities = list(new.activities)
            for i in placed.fresh:
                activities[i] = _activity_decoder.decode(codec.encode_compact(activities[i]))
            extras = _extras_decoder.decode(codec.encode_compact(_Extras(tombstones=new.tombstones, links=new.links)))
        except msgspec.ValidationError as exc:
            raise HealthcacheError(f"refusing to save: the new cache does not match the schema: {exc}") from exc
        return msgspec.structs.replace(new, activities=activities, tombstones=extras.tombstones, links=extras.links)

    def _guard(self, new: Cache, placed: _Placed) -> list[guard.Violation]:
        """``check``'s verdict, without walking the activities this save keeps as they were loaded.

        An activity object taken unchanged from the loaded cache loses nothing,
        and cannot hold a key of another loaded activity (keys are unique in a
        loaded file): so the other loaded activities, checked against the other
        new ones, give exactly the violations the whole check gives.  When a
        tombstone's key leaves the tombstones, any activity may answer for it:
        then the whole check runs.
        """
        from healthcache import guard

        old = self.loaded.cache
        if self.corrupt is not None:
            return self.check(new)
        dropped = {k for t in old.tombstones for k in t.record_keys()} - {
            k for t in new.tombstones for k in t.record_keys()
        }
        if dropped:
            return self.check(new)
        gone = msgspec.structs.replace(old, activities=[old.activities[j] for j in placed.gone])
        fresh = msgspec.structs.replace(new, activities=[new.activities[i] for i in placed.fresh])
        violations = guard.check(gone, fresh, None)
        baseline = read_baseline(self.paths)
        if baseline is not None:
            violations += guard.check_baseline(new, baseline)
        return violations

    def _validate(self, data: bytes, final: Cache) -> set[str] | None:
        """Prove that the bytes about to be written decode to a valid cache (``final``) holding the invariants.

        An activity whose bytes equal its bytes in the loaded file (healthcache's
        own canonical bytes, validated by the save that wrote them) is proven
        already; every other activity, and the file around the activities, is
        decoded and type-checked now.  Together that is the whole file: one
        decode of it would say no more.  A loaded file not known to be
        healthcache's own is not relied on: then the whole file is decoded.
        Returns every record key the activities hold, when it collected them.
        """
        from healthcache import codec

        live = None
        try:
            fresh = self._fresh_activities(data, final)
            if fresh is None:
                with codec.gc_paused():
                    decoded = codec._checked.decode(data)
                problems = codec.hard_invariants(decoded)
            else:
                problems = codec.hard_invariants(msgspec.structs.replace(final, activities=fresh))
                if not problems and (live := unique_record_keys(final.activities)) is None:
                    problems = codec.hard_invariants(final)
        except msgspec.ValidationError as exc:
            raise HealthcacheError(f"refusing to save: the new cache does not match the schema: {exc}") from exc
        if problems:
            raise HealthcacheError(f"refusing to save: {problems[0]}")
        return live

    def _fresh_activities(self, data: bytes, final: Cache) -> list[Activity] | None:
        """The activities of ``data`` not byte-identical to their loaded bytes, each decoded (type-checked).

        The activities lists of ``data`` and of the loaded file are walked side
        by side, in place.  Every element is two bytes of separator (``[`` or
        ``,`` and a newline) and the activity.  An activity not taken from the
        loaded file is located by its own bytes (encoded alone: a long, unique
        needle, so the search is quick) and decoded; one loaded but gone from
        ``data`` is passed over in the loaded bytes the same way; between them,
        runs of activities kept from the loaded file must be byte-identical to
        the loaded bytes (one comparison per run).  An activity edited in
        place, or anything unexpected, breaks a run: then None, and the caller
        decodes the whole file.  None too when the loaded file cannot vouch for
        its bytes (not known to be healthcache's own).  The file without its
        activities (header, tombstones, links) is decoded as well.
        """
        from healthcache import codec

        old = self.loaded
        if self.corrupt is not None or old.index is None or old.index.sha256 != old.sha256:
            return None
        new_region, old_region = _activities_region(data), _activities_region(old.data)
        if new_region is None or old_region is None:
            return None
        (first, end), (old_first, old_end) = new_region, old_region
        placed_at, old_acts, before = self._placed.at, old.cache.activities, old.data

        def run(stop: int) -> bool:
            """``data[p:stop]`` (whole elements) equals the loaded bytes at ``q``."""
            if stop == p:
                return True
            sep = _OPEN[-2:] if p == first - 2 else _SEP
            return stop > p and data.startswith(sep, p) and before.startswith(memoryview(data)[p + 2 : stop], q + 2)

        fresh: list[Activity] = []
        p, q = first - 2, old_first - 2  # the pending run of kept activities starts here, in each
        k = 0  # the next loaded activity the walk has not passed
        with codec.gc_paused():
            codec._checked.decode(data[: first - len(_OPEN)] + _NO_ACTIVITIES + data[end + len(_CLOSE) :])
            for act, j in zip(final.activities, placed_at, strict=True):
                if j is not None and j == k:
                    k += 1  # the run goes on
                    continue
                if j is not None and j < k:
                    return None  # out of the loaded order
                if j is None:  # not from the loaded file: the run ends where it is
                    element = _element(act)
                    # Past the last loaded activity (an addition of the latest) the run ends where the
                    # loaded list did: look there first, then search.
                    at = p + old_end - q if k == len(old_acts) else p
                    if not data.startswith(element, at + 2):
                        at = data.find(element, p + 2, end) - 2
                    if at < p or not run(at) or not data.startswith(_OPEN[-2:] if at == first - 2 else _SEP, at):
                        return None
                    q += at - p
                    p = at + 2 + len(element)
                    fresh.append(_activity_decoder.decode(element))
                    continue
                # loaded activities k..j-1 are gone (or changed): the run ends where the first of them is
                at = before.find(_element(old_acts[k]), q + 2, old_end) - 2
                if at < q or not run(p + at - q):
                    return None
                p, q = p + at - q, at
                for g in range(k, j):
                    element = _element(old_acts[g])
                    if not before.startswith(element, q + 2):
                        return None
                    q += 2 + len(element)
                k = j + 1
            # the last run, then the loaded activities gone at the end
            tail = [_element(a) for a in old_acts[k:]]
            if old_end - q != end - p + sum(2 + len(e) for e in tail) or not run(end):
                return None
            q += end - p
            for element in tail:
                if not before.startswith(element, q + 2):
                    return None
                q += 2 + len(element)
        return fresh

    def _write_index(self, cache: Cache, size: int, sha: str, lineage: str, keys: set[str] | None = None) -> CacheIndex:
        from healthcache import guard

        st = self.paths.cache.stat()
        live, per_source = guard.live_and_known_counts(cache, keys)
        total = sum(per_source.values())
        index = CacheIndex(
            sha256=sha,
            size=size,
            mtime_ns=st.st_mtime_ns,
            activities=len(cache.activities),
            records=total,
            per_source=dict(sorted(per_source.items())),
            updated_at=cache.updated_at,
            lineage=lineage,
            live_per_source=dict(sorted(live.items())),
            tombstones=len(cache.tombstones),
            recent_tombstones=newest_tombstones(cache.tombstones),
        )
        self.write_state(self.paths.index, index)
        return index

    def write_state(self, path: Path, value: object) -> None:
        """Write a state document (sync cursor, manifest, baseline) under this lock."""
        state.save(path, value)

    def _prune(self, replaced: str | None = None, compressed: Callable[[], bytes | None] | None = None) -> None:
        """Apply retention and compress all but the newest backup; ``compressed`` is the replaced state's."""

        from healthcache import backup

        def blob_for(info: backup.BackupInfo) -> bytes | None:
            if compressed is not None and replaced is not None and replaced.startswith(info.digest):
                return compressed()
            return None

        backup.prune(self.paths.backups, self.store.config.retention, blob_for=blob_for)
