"""What has been imported, so a second import decides from ``stat`` alone and opens nothing.

One state file per importer in ``tracking/sync_state/`` (``import_fit.json``,
``import_apple_health.json``, ...), each mapping a file's absolute path to its
size, mtime (ns), content hash, outcome and the records it gave.  An archive's
entry also lists its members (name, CRC-32, size) so a re-downloaded export
decompresses only what is new; Polar's lists the session ids already imported.

The decisions are pure functions of (entry, stat) so they are tested without
files; the manifests are written by the orchestrator inside the store's
transaction, after the save succeeded.

A manifest is a hint, the cache is the truth: each records the cache lineage
it was written under (``cacheindex.trusted_lineage``).  Under another lineage (after
``restore --force``, a restore over a corrupt file, an edit outside
healthcache) its entries are checked against the records the cache holds
(``freshness.decide``) and an entry whose records are gone is forgotten, so its
file is read again and its records come back.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator, Set
from pathlib import Path
from typing import IO, Literal, Protocol

import msgspec

from healthcache import notices, state
from healthcache.config import Paths
from healthcache.errors import CorruptInput
from healthcache.freshness import decide, needs_check
from healthcache.importers import formats
from healthcache.timeutil import now_utc, utc_iso

# Recorded in each entry: the importer version that read the file.
IMPORTER_VERSION = 1
Status = Literal["imported", "skipped", "failed"]
HEAD_TAIL_BYTES = 1024 * 1024
POLAR_GROUP = "polar"  # the manifest that also lists imported Polar sessions by id


class StateWriter(Protocol):
    """Where manifests are written: a store transaction, under its lock, after its save."""

    def write_state(self, path: Path, value: object) -> None: ...


class MemberEntry(msgspec.Struct, kw_only=True, omit_defaults=True):
    crc: int
    size: int
    status: Status
    reason: str | None = None
    keys: list[str] = []


class FileEntry(msgspec.Struct, kw_only=True, omit_defaults=True):
    size: int
    mtime_ns: int
    status: Status
    kind: str | None = None
    sha256: str | None = None  # whole content (files read into memory)
    head_tail: str | None = None  # first and last MiB (exports too big to hash on every change)
    reason: str | None = None
    keys: list[str] = []
    members: dict[str, MemberEntry] = {}
    version: int = IMPORTER_VERSION
    at: str | None = None

    def same_stat(self, size: int, mtime_ns: int) -> bool:
        """Whether the file still has the size and mtime it had when it was judged."""
        return self.size == size and self.mtime_ns == mtime_ns

    def failed(self) -> bool:
        """It failed, or a member of it did: such a file is tried again on every run."""
        return self.status == "failed" or any(me.status == "failed" for me in self.members.values())


class SessionEntry(msgspec.Struct, kw_only=True, omit_defaults=True):
    file: str
    status: Status
    keys: list[str] = []


class Manifest(msgspec.Struct, kw_only=True, omit_defaults=True):
    version: int = 1
    lineage: str | None = None  # the cache lineage these entries were checked against
    files: dict[str, FileEntry] = {}
    sessions: dict[str, SessionEntry] = {}


class Reconciled(msgspec.Struct, frozen=True):
    """What checking a manifest against the cache found: entries checked, and those forgotten."""

    checked: int = 0
    stale: int = 0

    def __add__(self, other: Reconciled) -> Reconciled:
        return Reconciled(self.checked + other.checked, self.stale + other.stale)


def reconcile(manifest: Manifest, held: Set[str]) -> Reconciled:
    """Forget (in place) every entry whose records the cache no longer holds.

    A stale file entry keeps its members that are still held but loses its
    stat and digests, so the file is opened again and only what is missing is
    read; a nested archive whose inner members went stale is read again too.
    """
    checked = stale = 0
    for path, entry in list(manifest.files.items()):
        checked += 1
        gone = [n for n, me in entry.members.items() if decide(True, me.keys, held).open]
        for name in list(entry.members):
            if any(g.startswith(name + "/") for g in gone):
                gone.append(name)  # the nested archive holding a stale member
        if not gone and not decide(True, entry.keys, held).open:
            continue
        stale += 1
        if not entry.members:
            del manifest.files[path]
            continue
        members = {n: me for n, me in entry.members.items() if n not in gone}
        manifest.files[path] = msgspec.structs.replace(
            entry,
            size=-1,
            mtime_ns=-1,
            sha256=None,
            head_tail=None,
            keys=sorted({k for me in members.values() for k in me.keys}),
            members=members,
        )
    for sid, session in list(manifest.sessions.items()):
        checked += 1
        if decide(True, session.keys, held).open:
            stale += 1
            del manifest.sessions[sid]
    return Reconciled(checked, stale)


def path_key(path: str) -> str:
    """A path as text that can be stored and shown: bytes of a file name that are
    not UTF-8 (which Python carries as lone surrogates) are written as ``\\xNN``."""
    if path.isascii():  # the common case, and UTF-8 as it is
        return path
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(path).decode("utf-8", "backslashreplace")
    return path


def state_name(group: str) -> str:
    return f"import_{group}"


def unreadable_notice(paths: Paths, group: str, why: str) -> str:
    """What a person is told of a manifest that cannot be read: a hint lost, so work done again, not data."""
    where = state.shown(paths, paths.state_file(state_name(group)))
    return (
        f"{where} could not be read ({why}): the files it described are read again "
        "(the merge finds them in the cache); it is rewritten at the end of this import (a dry run writes nothing)"
    )


def head_tail_hash(stream: IO[bytes], size: int) -> str:
    """sha256 of the size, the first MiB and the last MiB: an export changes in both."""
    h = hashlib.sha256(str(size).encode())
    stream.seek(0)
    h.update(stream.read(HEAD_TAIL_BYTES))
    if size > HEAD_TAIL_BYTES:
        stream.seek(max(HEAD_TAIL_BYTES, size - HEAD_TAIL_BYTES))
        h.update(stream.read(HEAD_TAIL_BYTES))
    stream.seek(0)
    return h.hexdigest()


class Manifests:
    """Every importer's manifest, loaded once per run, with the indexes the decisions need."""

    def __init__(self, paths: Paths) -> None:
        self.paths = paths
        self.groups: dict[str, Manifest] = {}
        # A group's encoding as loaded, taken just before this run first changes it: what ``changed``
        # compares with (a group never changed needs no encoding, which a day with nothing new spares).
        self._loaded: dict[str, bytes] = {}
        self.group_names = formats.groups()  # the format registry's, as it is when the run starts
        self._touched: dict[str, set[str]] = {g: set() for g in self.group_names}  # paths changed by this run
        self._moved: dict[str, set[str]] = {g: set() for g in self.group_names}  # paths that left a group
        self._sessions: set[str] = set()
        self.unreadable: set[str] = set()  # groups whose manifest could not be read: rewritten by ``write``
        for g in self.group_names:
            self.groups[g], why = state.load_hint(paths, state_name(g), Manifest, Manifest())
            if why is not None:
                self.unreadable.add(g)
                notices.notice(unreadable_notice(paths, g, why))
        self.reconciled: Reconciled | None = None  # set when the manifests were checked against the cache
        self._index()

    def _index(self) -> None:
        self.by_path: dict[str, tuple[str, FileEntry]] = {}
        for g, m in self.groups.items():
            for p, e in m.files.items():
                self.by_path[p] = (g, e)
        self._by_sha: dict[str, str] | None = None  # built when a file is first opened (``by_sha``)
        self._members: dict[str, MemberEntry] | None = None

    @property
    def by_sha(self) -> dict[str, str]:
        """The first imported file of each content digest: a copy of it needs no reading."""
        if self._by_sha is None:
            self._digests()
        assert self._by_sha is not None
        return self._by_sha

    @property
    def members(self) -> dict[str, MemberEntry]:
        """Archive members by name across every archive: a newer download of the same export
        repeats old members byte for byte (same name, CRC-32 and size), so they need no reading."""
        if self._members is None:
            self._digests()
        assert self._members is not None
        return self._members

    def _digests(self) -> None:
        """``by_sha`` and ``members`` of the manifests as loaded (or as checked against the cache):
        built at the first file opened, or before the first change (``_changing``), whichever is first."""
        self._by_sha, self._members = {}, {}
        for m in self.groups.values():
            for p, e in m.files.items():
                if e.sha256 and e.status == "imported":
                    self._by_sha.setdefault(e.sha256, p)
                for name, me in e.members.items():
                    if me.status != "failed":
                        self._members[name] = me

    def _changing(self, group: str) -> None:
        """Before this run changes ``group``: its encoding as loaded is kept (what ``changed`` compares
        with), and the digests' lookups are built from the entries as they were loaded."""
        if self._by_sha is None:
            self._digests()
        if group not in self._loaded:
            self._loaded[group] = msgspec.json.encode(self.groups[group])

    def stale(self, trusted: str | None) -> bool:
        """Whether any manifest holding entries was written under another lineage than ``trusted``."""
        return any((m.files or m.sessions) and needs_check(m.lineage, trusted) for m in self.groups.values())

    def check_against(self, held: Set[str]) -> Reconciled:
        """Forget the entries whose records the cache (``held``: its record keys) no longer holds."""
        found = Reconciled()
        for g, m in self.groups.items():
            self._changing(g)
            found += reconcile(m, held)
        self._index()
        self.reconciled = found
        return found

    def lookup(self, path: str) -> FileEntry | None:
        hit = self.by_path.get(path)
        return hit[1] if hit else None

    def same_head_tail(self, size: int, digest: str) -> str | None:
        """A recorded export with this size and head/tail hash (the same export, moved or touched)."""
        for p, (_, e) in self.by_path.items():
            failed = e.status == "failed" or any(me.status == "failed" for me in e.members.values())
            if e.size == size and e.head_tail == digest and not failed:
                return p
        return None

    def polar_session(self, session_id: str) -> SessionEntry | None:
        return self.groups[POLAR_GROUP].sessions.get(session_id)

    def record(self, group: str, path: str, entry: FileEntry) -> None:
        old = self.by_path.get(path)
        if old is not None and old[0] == group and msgspec.structs.replace(old[1], at=None) == entry:
            return  # the same outcome as last time (a file that fails again): nothing to write
        self._changing(group)
        if old is not None and old[0] != group:
            self._changing(old[0])
            self.groups[old[0]].files.pop(path, None)
            self._moved[old[0]].add(path)
        self._touched[group].add(path)
        entry.at = entry.at or utc_iso(now_utc())
        self.groups[group].files[path] = entry
        self.by_path[path] = (group, entry)
        if entry.sha256 and entry.status == "imported":
            self.by_sha.setdefault(entry.sha256, path)

    def touch(self, path: str, size: int, mtime_ns: int) -> None:
        """Same content, new stat (copied or touched): remember the stat so next time needs no read."""
        hit = self.by_path.get(path)
        if hit is not None:
            self._changing(hit[0])
            hit[1].size, hit[1].mtime_ns = size, mtime_ns
            self._touched[hit[0]].add(path)

    def record_session(self, session_id: str, entry: SessionEntry) -> None:
        self._changing(POLAR_GROUP)
        self.groups[POLAR_GROUP].sessions[session_id] = entry
        self._sessions.add(session_id)

    def changed(self) -> Iterator[tuple[str, Manifest]]:
        """The groups this run changed: only one it began to change (``_changing``) can differ."""
        for g, m in self.groups.items():
            before = self._loaded.get(g)
            if before is not None and msgspec.json.encode(m) != before:
                yield g, m

    def pending(self) -> bool:
        """Something to write: an entry changed, or the manifests were checked against the cache."""
        return self.reconciled is not None or bool(self.unreadable) or any(True for _ in self.changed())

    def write(self, tx: StateWriter, lineage: str, held: Callable[[], Set[str]]) -> list[str]:
        """Write the manifests that changed, through the transaction (under the lock, after the save).

        Each file is read again under the lock and only this run's entries are
        laid over it, so an import that ran meanwhile keeps its entries.  Each
        is stamped with ``lineage``, the lineage of the cache just saved; one
        that was written under another lineage (on disk, or as this run read
        it) is first checked against that cache (``held``: its record keys).
        """
        written = []
        changed = {g for g, _ in self.changed()}
        for g in self.group_names:
            m = self.groups[g]
            if g not in changed and m.lineage == lineage and g not in self.unreadable:
                continue  # nothing of ours, and as this run read it, written for this very cache
            current, why = state.load_hint(self.paths, state_name(g), Manifest, Manifest())
            check = current.lineage != lineage or m.lineage != lineage
            if g not in changed and why is None and not (check and (current.files or current.sessions)):
                continue
            for p in self._moved[g]:
                current.files.pop(p, None)
            for p in self._touched[g]:
                if p in m.files:
                    current.files[p] = m.files[p]
            if g == POLAR_GROUP:
                for sid in self._sessions:
                    if sid in m.sessions:
                        current.sessions[sid] = m.sessions[sid]
            if check:  # the in-memory check (if any) was against a read outside the lock: redo it here
                reconcile(current, held())
            current.lineage = lineage
            tx.write_state(self.paths.state_file(state_name(g)), current)
            self.groups[g] = current
            self._loaded[g] = msgspec.json.encode(current)
            self.unreadable.discard(g)
            written.append(g)
        return written


def failing(paths: Paths) -> list[tuple[str, str]]:
    """Files still there (and archive members) whose last import failed, with the reason: for ``status``.

    A failure is never remembered as done (the next import tries the file
    again); this is where it stays visible between imports.
    """
    out: list[tuple[str, str]] = []
    for g in formats.groups():
        try:
            m = state.load(paths, state_name(g), Manifest, Manifest())
        except CorruptInput:
            continue  # status reports the unreadable state file itself
        for path, entry in m.files.items():
            if not os.path.exists(path):
                continue
            if entry.status == "failed":
                out.append((path, entry.reason or "failed"))
            out.extend(
                (f"{path}!{name}", me.reason or "failed") for name, me in entry.members.items() if me.status == "failed"
            )
    return sorted(out)
