"""The import pipeline: find the files, decide from stat what is new, read only that, merge and save once.

Steps, each timed in the report:

1. **scan** – ``walk`` the given files and folders (hidden entries and the
   workspace's own folders are left out) and ``stat`` each file;
2. **decide** – one pure decision per file and archive member
   (``decide.decide``): a file whose size and mtime match its manifest entry,
   or one with no entry whose Polar session id is already imported (another
   copy of that session), is skipped without being opened; everything else,
   a Polar session's own file whose stat changed too, is opened.  The
   manifests are trusted as they are only when the cache is the one they were written for (its lineage, from
   the index and ``stat``); otherwise the cache is parsed once and an entry
   whose records it no longer holds is forgotten (``freshness.decide``), so
   a restore that dropped records never hides them from the next import.
   A file that failed is tried again on every run;
3. **read** – the type comes from the content (``detect.sniff``) and the
   reader from the format registry (``formats.FORMATS``); a file and an
   archive member take the same path, in isolation: a corrupt, hostile or
   unknown one becomes a ``failed`` line with its reason and the others go on.
   Each outcome is recorded once (``_Run.settle``): its report line and its
   manifest entry together;
4. **merge and save** – all records go through ``ingest`` (merge, guard,
   backup, atomic save) in one transaction; the manifests are written in its
   ``after_save``, so they never claim a file whose records were not saved,
   and with them the note of a listing they settle (``settled``: what lets the
   next day with nothing new be judged in one comparison).

A run with nothing new opens no file, takes no lock and writes nothing.
"""

from __future__ import annotations

import functools
import hashlib
import os
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import IO, TYPE_CHECKING

import msgspec

from healthcache import progress as prog
from healthcache.cacheindex import trusted_lineage
from healthcache.importers import formats, settled
from healthcache.importers.decide import Facts, Verdict, decide, stat_reason
from healthcache.importers.manifest import (
    FileEntry,
    Manifests,
    MemberEntry,
    SessionEntry,
    Status,
    head_tail_hash,
    path_key,
)
from healthcache.importers.pool import Decoder, usable_cores
from healthcache.importers.report import FileResult, ImportReport, Outcome
from healthcache.importers.walk import Item, file_item, members, walk, workspace_folders

if TYPE_CHECKING:  # a run with nothing new reads no file: reading, decoding, merge and the store load on use
    import zipfile

    from healthcache.importers import archive
    from healthcache.importers.base import Extracted, Limits, Progress
    from healthcache.importers.decode import Decoded
    from healthcache.model.records import SourceRecord
    from healthcache.store import SaveResult, Store, Transaction

__all__ = ["FileResult", "ImportReport", "run_import", "walk"]

_COUNTED = ("imported", "skipped", "unchanged", "failed")
_IMPORTED = stat_reason(None)


class _Archive(msgspec.Struct):
    """An archive being read: its top-level file, the member entries it had and gets, and its export kind."""

    path: str
    zf: zipfile.ZipFile
    export: formats.Format | None  # the format whose export it is, if any
    prior: dict[str, MemberEntry]
    own: dict[str, MemberEntry] = msgspec.field(default_factory=dict)  # the members of its own entry
    out: dict[str, MemberEntry] = msgspec.field(default_factory=dict)
    depth: int = 0
    counts: dict[str, int] = msgspec.field(default_factory=lambda: dict.fromkeys(_COUNTED, 0))

    @property
    def group(self) -> str:
        return self.export.group if self.export else formats.ARCHIVE_GROUP


class _Walked(msgspec.Struct, frozen=True):
    """What the walk found, for the note of a settled listing (``settled.note``)."""

    key: str  # ``settled.inputs_key``
    found: list[tuple[str, os.stat_result]]
    unreadable: bool  # an input missing, or not a regular file


class _Run(msgspec.Struct):
    manifests: Manifests
    full: bool
    given_limits: Limits | None  # the defaults (``limits``) when None
    progress: Progress | None
    decoder: Decoder = msgspec.field(default_factory=lambda: Decoder(1))
    tracker: prog.Progress = prog.SILENT
    results: list[FileResult] = msgspec.field(default_factory=list)
    records: list[SourceRecord] = msgspec.field(default_factory=list)
    decoding: dict[str, int] = msgspec.field(default_factory=dict)  # sha256 -> its files queued for decoding
    zone: Callable[[], str | None] = lambda: None  # the display zone's name: the wall clock of exports that record none

    @property
    def limits(self) -> Limits:
        """The limits files are read under (the readers' base is loaded with the first file opened)."""
        if self.given_limits is None:
            from healthcache.importers.base import Limits

            self.given_limits = Limits()
        return self.given_limits

    def settle(
        self,
        item: Item,
        line: FileResult | None,
        entry: FileEntry | MemberEntry | None = None,
        *,
        group: str | None = None,
        arc: _Archive | None = None,
        ex: Extracted | None = None,
        touch: bool = False,
    ) -> None:
        """Record an outcome (``record``) in input order: after every decode queued before it."""
        self.decoder.later(lambda: self.record(item, line, entry, group=group, arc=arc, ex=ex, touch=touch))

    def before(self, sha: str | None = None) -> None:
        """A decision is about to read what earlier outcomes recorded (a digest's twin, a Polar
        session, an export's head and tail): let every one queued before it be recorded first."""
        if sha is None or sha in self.decoding:
            self.decoder.drain()

    def record(
        self,
        item: Item,
        line: FileResult | None,
        entry: FileEntry | MemberEntry | None = None,
        *,
        group: str | None = None,
        arc: _Archive | None = None,
        ex: Extracted | None = None,
        touch: bool = False,
    ) -> None:
        """The one place an outcome is recorded: its report line, its records and its manifest entry.

        Called in input order only (``settle``, or a decode's continuation, which the decoder runs in order).

        A file's entry goes into its group's manifest, a member's into its archive's entry; a Polar
        session that gave records is remembered by id, so its next download (another file, with no
        entry of its own) is skipped unopened.
        """
        if line is not None:
            self.results.append(line)
        if ex is not None:
            self.records.extend(ex.records)
        if isinstance(entry, MemberEntry) and arc is not None:
            arc.out[item.key] = entry
        elif isinstance(entry, FileEntry):
            self.manifests.record(group or formats.OTHER_GROUP, item.label, entry)
        elif touch:  # same content, new stat: remembered so that next time needs no read
            self.manifests.touch(item.label, item.size, item.mtime_ns)
        if ex is not None and ex.kind == "polar" and ex.records:
            keys = [r.key for r in ex.records]
            self.manifests.record_session(
                ex.records[0].source_id, SessionEntry(file=item.label, status="imported", keys=keys)
            )


def run_import(
    store: Store,
    inputs: Sequence[str | os.PathLike[str]],
    *,
    full: bool = False,
    dry_run: bool = False,
    lock_timeout: float | None = 0.0,
    on_wait: Callable[[str | None], None] | None = None,
    progress: Progress | None = None,
    limits: Limits | None = None,
    jobs: int | None = None,
    on_pool: Callable[[int], None] | None = None,
    tracker: prog.Progress = prog.SILENT,
) -> ImportReport:
    """Import files, folders and archives into the cache; never raises for one bad file.

    ``jobs`` worker processes decode new files (default: the usable cores; 1: no pool at all);
    the outcome is the same as a serial run's, in the same order (``pool``).  ``on_pool`` is
    told when the workers start.  ``tracker`` hears of each file and archive member as its outcome is
    recorded (in input order, so after its decode): the files found, then an archive's members nested in it.
    """
    report = ImportReport(dry_run=dry_run)
    t0 = time.perf_counter()
    paths = store.paths
    excluded = workspace_folders(paths)
    found, missing, odd = walk(inputs, excluded)
    report.timings["scan"] = time.perf_counter() - t0

    t1 = time.perf_counter()
    decoder = Decoder(usable_cores() if jobs is None else jobs, on_start=on_pool)
    run = _Run(
        manifests=Manifests(paths),
        full=full,
        given_limits=limits,
        progress=progress,
        decoder=decoder,
        tracker=tracker,
        zone=_lazy_zone(store.config.display.timezone),
    )
    if not full and run.manifests.stale(trusted_lineage(paths)):
        # The cache is not the one the manifests were written for: believe them only as far as it holds their records.
        from healthcache.freshness import held_keys

        report.reconciled = run.manifests.check_against(held_keys(store.read().cache))
        report.timings["reconcile"] = time.perf_counter() - t1
    _unreadable(run, missing, odd)
    try:
        _read_all(run, found)
    except BaseException:  # Ctrl-C above all: the workers are stopped, nothing is saved
        decoder.close(interrupted=True)
        raise
    decoder.close()
    report.timings["read"] = time.perf_counter() - t1
    report.jobs = decoder.jobs if decoder.pooled else 1
    report.files = run.results

    unique = {rec.key: rec for rec in run.records}  # the same record from two files (an export and its copy)
    records = list(unique.values())
    t2 = time.perf_counter()
    if records or (run.manifests.pending() and not dry_run):
        walked = _Walked(key=settled.inputs_key(inputs, excluded), found=found, unreadable=bool(missing or odd))
        _merge_and_save(
            store, report, run, records, walked, dry_run=dry_run, lock_timeout=lock_timeout, on_wait=on_wait
        )
    report.timings["merge_save"] = time.perf_counter() - t2
    return report


def _merge_and_save(
    store: Store,
    report: ImportReport,
    run: _Run,
    records: list[SourceRecord],
    walked: _Walked,
    *,
    dry_run: bool,
    lock_timeout: float | None,
    on_wait: Callable[[str | None], None] | None,
) -> None:
    """Everything read goes through ``ingest`` (merge, guard, save), and the manifests after the save
    (then the note of a listing they settle: ``settled``)."""
    from healthcache.freshness import held_keys
    from healthcache.ingest import ingest

    if dry_run:
        if records:
            report.merge = ingest(store, records, dry_run=True, lock_timeout=lock_timeout, on_wait=on_wait).report
    elif records or run.manifests.pending():

        def after_save(tx: Transaction, saved: SaveResult) -> None:
            lineage = saved.lineage or tx.lineage
            report.manifests_written = run.manifests.write(tx, lineage, lambda: held_keys(tx.cache))
            settled.note(tx, store.paths, walked.key, walked.found, walked.unreadable, lineage)

        result = ingest(store, records, lock_timeout=lock_timeout, on_wait=on_wait, after_save=after_save)
        report.merge, report.save = result.report, result.save


def _lazy_zone(name: str | None) -> Callable[[], str | None]:
    """The display zone's IANA name, found at the first call and remembered: what an import hands its
    decode workers. An import that decodes nothing never looks up the machine's zone, nor loads the
    zone module."""

    @functools.cache
    def key() -> str | None:
        from healthcache.zone import display_zone, zone_key

        return zone_key(display_zone(name))

    return key


def _read_all(run: _Run, found: list[tuple[str, os.stat_result]]) -> None:
    listening = run.tracker is not prog.SILENT
    with prog.step(run.tracker, len(found), "importing files"):
        for path, st in found:
            line = None if run.full else _unchanged(run, path, st)
            if line is not None:  # the common case of a day with nothing new: nothing else to record
                if run.decoder.busy:
                    run.decoder.later(partial(run.results.append, line))
                else:
                    run.results.append(line)
                if listening:
                    _advance(run, line.path)
                continue
            item = file_item(path, st)
            try:
                _one_file(run, item)
            except Exception as exc:  # a bug in one importer must cost one file, never the whole import
                why = f"unexpected error: {type(exc).__name__}: {exc}"
                run.settle(item, FileResult(path=item.label, status="failed", reason=why))
            _advance(run, item.label)
        run.decoder.drain()


def _advance(run: _Run, label: str) -> None:
    """One more file or member finished: told once its outcome is recorded (after its decode)."""
    if run.tracker is not prog.SILENT:  # nobody listens under --quiet, --json or in the daily job
        run.decoder.later(lambda: run.tracker.advance(1, label))


def _unreadable(run: _Run, missing: list[str], odd: list[tuple[str, str, bool]]) -> None:
    run.results.extend(
        FileResult(path=path_key(m), status="failed", reason="no such file or folder (or not readable)", opened=False)
        for m in missing
    )
    for path, what, named in odd:
        reason = f"{what}, not a regular file: not read"
        if named:  # asked for by name: the user expects it imported, so it is a failure
            reason += " (save it to a file first, e.g. zcat run.gpx.gz > run.gpx, and import that)"
        run.results.append(
            FileResult(path=path_key(path), status="failed" if named else "skipped", reason=reason, opened=False)
        )


# ---------------------------------------------------------------- one file


def _facts(run: _Run, item: Item, entry: FileEntry | None) -> Facts:
    from healthcache.importers import detect

    # A file with an entry of its own is judged by it: its session is not looked up (nor waited for).
    session = detect.polar_session_id(item.name) if entry is None else None
    if session:
        run.before()
    known = run.manifests.polar_session(session) if session else None
    return Facts(
        full=run.full,
        own=entry is not None,
        session=session if known is not None and known.status != "failed" else None,
        unchanged=entry is not None and entry.same_stat(item.size, item.mtime_ns),
        failed_before=entry is not None and entry.failed(),
        skipped_because=f"{entry.reason}" if entry is not None and entry.status == "skipped" else None,
    )


def _unchanged(run: _Run, path: str, st: os.stat_result) -> FileResult | None:
    """The report line of a file whose size and mtime are its manifest entry's: the verdict ``decide``
    gives it (``stat``), reached without the Item, Facts and queued record of a file that may be read.

    None sends the file the full way (``_one_file``): no entry, another stat or a failure before (a
    Polar session's file with an entry of its own is judged by it alone); so the line is the same either way.
    """
    if not path.isascii():  # its label is path_key's: the full way
        return None
    hit = run.manifests.by_path.get(path)
    if hit is None:
        return None
    entry = hit[1]
    if not entry.same_stat(st.st_size, st.st_mtime_ns) or entry.failed():
        return None
    reason = _IMPORTED if entry.status != "skipped" else stat_reason(f"{entry.reason}")
    return FileResult(path=path, status="unchanged", kind=entry.kind, opened=False, reason=reason)


def _one_file(run: _Run, item: Item) -> None:
    from healthcache.importers import detect
    from healthcache.importers.base import ImportFailed

    entry = run.manifests.lookup(item.label)
    facts = _facts(run, item, entry)
    verdict = decide(facts)
    if verdict.why == "session":
        _another_copy(run, item, facts, verdict)
        return
    if not verdict.open:
        line = FileResult(
            path=item.label, status="unchanged", kind=entry.kind if entry else None, opened=False, reason=verdict.reason
        )
        run.settle(item, line)
        return
    try:
        with item.open() as f:
            head = f.read(detect.HEAD_BYTES)
            kind = detect.sniff(head, item.name, run.limits)
            fmt = formats.FORMATS.get(kind)
            if kind == "zip" or (fmt is not None and fmt.streamed):
                _streamed_file(run, item, f, kind, entry, facts)
                return
            if item.size > run.limits.max_file_bytes:
                raise ImportFailed(f"{item.size >> 20} MiB is more than one activity file may be")
            data = head + f.read(run.limits.max_file_bytes + 1 - len(head))
    except ImportFailed as exc:
        failed = FileEntry(size=item.size, mtime_ns=item.mtime_ns, status="failed", reason=exc.reason)
        run.settle(item, FileResult(path=item.label, status="failed", reason=exc.reason), failed)
        return
    except OSError as exc:
        run.settle(item, FileResult(path=item.label, status="failed", reason=f"cannot read: {exc.strerror or exc}"))
        return
    sha = hashlib.sha256(data).hexdigest()
    run.before(sha)
    twin = run.manifests.by_sha.get(sha)
    same = entry is not None and entry.sha256 == sha
    verdict = decide(msgspec.structs.replace(facts, same_digest=same, twin=twin if twin != item.label else None))
    if not verdict.open:
        _seen_content(run, item, verdict, entry, kind, twin)
        return
    from healthcache.importers.decode import Task, poolable  # only a file that must be read needs the decoders

    run.decoding[sha] = run.decoding.get(sha, 0) + 1

    def then(decoded: Decoded) -> None:
        line, ex = decoded
        run.decoding[sha] -= 1
        if not run.decoding[sha]:
            del run.decoding[sha]
        keys = [r.key for r in ex.records] if ex else []
        status = line.status if line.status != "unchanged" else "skipped"
        read = FileEntry(
            size=item.size,
            mtime_ns=item.mtime_ns,
            status=status,
            kind=line.kind,
            sha256=sha,
            reason=line.reason,
            keys=keys,
        )
        run.record(item, line, read, group=formats.group_of(ex.kind if ex else line.kind), ex=ex)

    task = Task(item.label, item.name, data, kind, member=False, limits=run.limits, zone=run.zone())
    run.decoder.decode(task, then, poolable=poolable(kind))


def _another_copy(run: _Run, item: Item, facts: Facts, verdict: Verdict) -> None:
    """Another file of a Polar session already imported: not opened, and given an entry of its own
    (its stat, the session's keys), as a member is, so that a later change of it is read."""
    line = FileResult(path=item.label, status="unchanged", kind="polar", opened=False, reason=verdict.reason)
    known = run.manifests.polar_session(facts.session or "")
    keys = list(known.keys) if known is not None else []
    copy = FileEntry(size=item.size, mtime_ns=item.mtime_ns, status="imported", kind="polar", keys=keys)
    run.settle(item, line, copy, group=formats.group_of("polar"))


def _seen_content(
    run: _Run, item: Item, verdict: Verdict, entry: FileEntry | None, kind: str, twin: str | None
) -> None:
    """Opened, and found to hold content already imported: its stat (or a copy of its twin's entry)
    is remembered, so that next time it needs no read."""
    if verdict.why == "content":
        line = FileResult(
            path=item.label, status="unchanged", kind=entry.kind if entry else None, reason=verdict.reason
        )
        run.settle(item, line, touch=True)
        return
    line = FileResult(path=item.label, status="unchanged", kind=kind, reason=verdict.reason)
    hit = run.manifests.by_path.get(twin or "")
    if hit is None:
        run.settle(item, line)
        return
    group, old = hit
    copy = msgspec.structs.replace(old, size=item.size, mtime_ns=item.mtime_ns, at=None)
    run.settle(item, line, copy, group=group)


# ---------------------------------------------------------------- exports and archives


def _streamed_file(run: _Run, item: Item, f: IO[bytes], kind: str, entry: FileEntry | None, facts: Facts) -> None:
    """Exports and archives: too big to hash on every change, so size + first/last MiB."""
    from healthcache.importers.base import ImportFailed, NotAnActivity

    run.before()
    digest = head_tail_hash(f, item.size)
    twin = None if run.full else run.manifests.same_head_tail(item.size, digest)
    same = entry is not None and entry.head_tail == digest
    verdict = decide(
        msgspec.structs.replace(facts, streamed=True, same_digest=same, twin=twin if twin != item.label else None)
    )
    if not verdict.open:
        _seen_content(run, item, verdict, entry, kind, twin)
        return
    if kind == "zip":
        _zip_file(run, item, f, digest, entry)
        return
    fmt = formats.FORMATS[kind]
    stamp = {"size": item.size, "mtime_ns": item.mtime_ns, "kind": fmt.kind, "head_tail": digest}
    try:
        ex = _stream(run, item, fmt)
    except (ImportFailed, NotAnActivity) as exc:
        status: Outcome = "failed" if isinstance(exc, ImportFailed) else "skipped"
        line = FileResult(path=item.label, status=status, kind=fmt.kind, reason=exc.reason)
        run.settle(item, line, FileEntry(status=status, reason=exc.reason, **stamp), group=fmt.group)  # type: ignore[arg-type]
        return
    line = FileResult(path=item.label, status="imported", kind=fmt.kind, records=len(ex.records), warnings=ex.warnings)
    read = FileEntry(status="imported", keys=[r.key for r in ex.records], **stamp)  # type: ignore[arg-type]
    run.settle(item, line, read, group=fmt.group, ex=ex)


def _stream(run: _Run, item: Item, fmt: formats.Format) -> Extracted:
    from healthcache.importers.base import Input

    return fmt.reader()(
        Input(name=item.name, size=item.size, opener=item.open, limits=run.limits, progress=run.progress)
    )


def _zip_file(run: _Run, item: Item, f: IO[bytes], digest: str, entry: FileEntry | None) -> None:
    from healthcache.importers import archive
    from healthcache.importers.base import ImportFailed

    own = {} if run.full or entry is None else entry.members
    prior = {} if run.full else {**run.manifests.members, **own}
    top = FileResult(path=item.label, status="imported", kind="zip")
    run.settle(item, top)  # its line before its members'; completed below
    stamp = {"size": item.size, "mtime_ns": item.mtime_ns, "head_tail": digest}
    try:
        zf = archive.open_zip(f)
        with zf:
            found = archive.checked_members(zf, run.limits)
            export = formats.export_format(m.basename for m in found)
            arc = _Archive(path=item.label, zf=zf, export=export, prior=prior, own=own)
            top.kind = f"zip:{arc.group}" if arc.export else "zip"
            with prog.step(run.tracker, len(found), f"members of {item.name}"):
                _members(run, arc, found)
                run.decoder.drain()  # its members' outcomes, before they are counted
    except ImportFailed as exc:
        top.status, top.reason = "failed", exc.reason
        failed = FileEntry(status="failed", kind="zip", reason=exc.reason, **stamp)  # type: ignore[arg-type]
        run.settle(item, None, failed, group=formats.ARCHIVE_GROUP)
        return
    counts = arc.counts
    parts = [f"{n} {s}" for s, n in counts.items() if n]
    top.reason = "members: " + ", ".join(parts) if parts else "no members"
    if not counts["imported"] and not counts["unchanged"]:
        top.status = "failed" if counts["failed"] else "skipped"
    keys = sorted({k for me in arc.out.values() for k in me.keys})
    status = top.status if top.status != "unchanged" else "skipped"
    read = FileEntry(status=status, kind=top.kind, reason=top.reason, keys=keys, members=arc.out, **stamp)  # type: ignore[arg-type]
    run.settle(item, None, read, group=arc.group)


def _members(run: _Run, arc: _Archive, found: Sequence[archive.Member], prefix: str = "") -> None:
    from healthcache.importers import detect

    for item in members(arc.zf, arc.path, found, prefix):
        mem = item.member
        assert mem is not None
        old = arc.prior.get(item.key)
        own = item.key in arc.own  # judged by its own entry: its session is not looked up
        session = None if own else detect.polar_session_id(item.name)
        if session:
            run.before()
        known = run.manifests.polar_session(session) if session and not run.full else None
        companion = next((c for c in (arc.export.companions if arc.export else ()) if c[0] in f"/{mem.name}"), None)
        facts = Facts(
            full=run.full,
            own=own,
            companion=companion[2] if companion else None,
            session=session if known is not None and known.status != "failed" else None,
            unchanged=old is not None and old.crc == mem.crc and old.size == mem.size and old.status != "failed",
        )
        verdict = decide(facts)
        if verdict.why in ("stat", "session"):
            kept = old or MemberEntry(
                crc=mem.crc, size=mem.size, status="imported", keys=list(known.keys) if known else []
            )
            # its line too, so that the members seen add up (imported + skipped + unchanged + failed)
            line = FileResult(path=item.label, status="unchanged", reason=verdict.reason, opened=False, member=True)
            run.settle(item, line, kept, arc=arc)
            # an unchanged nested archive keeps its members' entries (in order, as settle records)
            nested = {n: e for n, e in arc.prior.items() if n.startswith(item.key + "/")}
            run.decoder.later(partial(arc.out.update, nested))
            arc.counts["unchanged"] += 1
        elif verdict.why == "companion":
            line = FileResult(
                path=item.label,
                status="skipped",
                kind=companion[1] if companion else None,
                reason=verdict.reason,
                opened=False,
                member=True,
            )
            run.settle(
                item, line, MemberEntry(crc=mem.crc, size=mem.size, status="skipped", reason=verdict.reason), arc=arc
            )
            arc.counts["skipped"] += 1
        else:
            _read_member(run, arc, item, mem)
        _advance(run, item.label)


def _read_member(run: _Run, arc: _Archive, item: Item, mem: archive.Member) -> None:
    import zipfile  # loaded already: an archive is open

    from healthcache.importers import archive, detect
    from healthcache.importers.base import ImportFailed, NotAnActivity
    from healthcache.importers.decode import Task, poolable

    # Member read errors that mean a damaged archive rather than a bad file inside it.
    corrupt = (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError)

    def done(line: FileResult, reason: str | None = None, ex: Extracted | None = None, *, now: bool = False) -> None:
        status = line.status if line.status != "unchanged" else "skipped"
        keys = [r.key for r in ex.records] if ex else []
        entry = MemberEntry(crc=mem.crc, size=mem.size, status=status, reason=reason, keys=keys)
        if now:  # a decode's continuation, already in input order
            run.record(item, line, entry, arc=arc, ex=ex)
        else:
            run.settle(item, line, entry, arc=arc, ex=ex)
        arc.counts[status] += 1

    try:
        with item.open() as fh:
            head = fh.read(detect.HEAD_BYTES)
        kind = detect.sniff(head, item.name, run.limits)
        if kind == "zip":
            _nested(run, arc, item, mem)
            return
        fmt = formats.FORMATS.get(kind)
        if fmt is not None and fmt.streamed:
            ex = _stream(run, item, fmt)
            line = FileResult(
                path=item.label,
                status="imported",
                kind=kind,
                records=len(ex.records),
                warnings=ex.warnings,
                member=True,
            )
            done(line, ex=ex)
            return
        data = archive.read_member(arc.zf, mem, run.limits)
    except ImportFailed as exc:
        done(FileResult(path=item.label, status="failed", reason=exc.reason, member=True), exc.reason)
        return
    except NotAnActivity as exc:
        done(FileResult(path=item.label, status="skipped", reason=exc.reason, member=True), exc.reason)
        return
    except corrupt as exc:
        line = FileResult(path=item.label, status="failed", reason=f"corrupt archive member: {exc}", member=True)
        done(line, str(exc))
        return
    task = Task(item.label, item.name, data, kind, member=True, limits=run.limits, zone=run.zone())
    run.decoder.decode(task, lambda d: done(d[0], d[0].reason, d[1], now=True), poolable=poolable(kind))


def _nested(run: _Run, arc: _Archive, item: Item, mem: archive.Member) -> None:
    """An archive inside an archive (Garmin exports hold zips of FIT files): its members join the outer entry."""
    from healthcache.importers import archive
    from healthcache.importers.base import ImportFailed

    if arc.depth >= run.limits.max_nesting:
        raise ImportFailed("an archive nested deeper than allowed")
    with item.open() as fh:
        zf = archive.open_zip(fh)
        with zf:
            found = archive.checked_members(zf, run.limits)
            export = formats.export_format(m.basename for m in found)
            inner = _Archive(
                path=arc.path, zf=zf, export=export, prior=arc.prior, own=arc.own, out=arc.out, depth=arc.depth + 1
            )
            with prog.step(run.tracker, len(found), f"members of {item.name}"):
                _members(run, inner, found, prefix=item.key + "/")
                run.decoder.drain()  # its members' outcomes, before they are counted
    counts = inner.counts
    for outcome, n in counts.items():  # the outer archive's tally (its line, its status) covers its nested members
        arc.counts[outcome] += n
    status: Status = "imported" if counts["imported"] or counts["unchanged"] else "skipped"
    why = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    run.settle(item, None, MemberEntry(crc=mem.crc, size=mem.size, status=status, reason=why), arc=arc)
