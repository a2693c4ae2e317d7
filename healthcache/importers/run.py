"""The import pipeline: find the files, decide from stat what is new, read only that, merge and save once.

Steps, each timed in the report:

1. **scan** – walk the given files and folders (hidden entries and the
   workspace's own folders are left out) and ``stat`` each file;
2. **decide** – a file whose size and mtime match its manifest entry, or a
   Polar session whose id is already imported, is skipped without being
   opened; everything else is opened.  The manifests are trusted as they are
   only when the cache is the one they were written for (its lineage, from
   the index and ``stat``); otherwise the cache is parsed once and an entry
   whose records it no longer holds is forgotten (``freshness.decide``), so
   a restore that dropped records never hides them from the next import.
   A file that failed is tried again on every run;
3. **read** – the type comes from the content (``detect.sniff``); each file
   is read by its importer, in isolation: a corrupt, hostile or unknown file
   becomes a ``failed`` line with its reason and the others go on;
4. **merge and save** – all records go through ``ingest`` (merge, guard,
   backup, atomic save) in one transaction; the manifests are written in its
   ``after_save``, so they never claim a file whose records were not saved.

A run with nothing new opens no file, takes no lock and writes nothing.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat as stat_mod
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Literal

import msgspec

from healthcache.freshness import held_keys
from healthcache.importers import archive, detect
from healthcache.importers.base import Extracted, ImportFailed, Limits, NotAnActivity
from healthcache.importers.manifest import (
    FileEntry,
    Manifests,
    MemberEntry,
    Reconciled,
    SessionEntry,
    head_tail_hash,
    member_unchanged,
    path_key,
    unchanged_stat,
)
from healthcache.ingest import ingest
from healthcache.merge import MergeReport
from healthcache.model.records import SourceRecord
from healthcache.store import SaveResult, Store, Transaction, trusted_lineage

Outcome = Literal["imported", "skipped", "unchanged", "failed"]
Progress = Callable[[str, int, int], None]

# Names that claim an activity format: such a file with other content is a failure, not a harmless skip.
CLAIMING_SUFFIXES = (".fit", ".gpx", ".tcx")
KIND_GROUP = {
    "fit": "fit",
    "gpx": "gpx",
    "tcx": "tcx",
    "polar": "polar",
    "apple_health": "apple_health",
    "garmin_export": "garmin_export",
    "strava_csv": "strava_export",
}


class FileResult(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One file's (or archive member's) line of the report."""

    path: str
    status: Outcome
    kind: str | None = None
    reason: str | None = None
    records: int = 0
    warnings: list[str] = []
    opened: bool = True
    member: bool = False


@dataclass
class ImportReport:
    files: list[FileResult] = field(default_factory=list)
    merge: MergeReport | None = None
    save: SaveResult | None = None
    dry_run: bool = False
    timings: dict[str, float] = field(default_factory=dict)
    manifests_written: list[str] = field(default_factory=list)
    reconciled: Reconciled | None = None  # the manifests were checked against the cache

    @property
    def reconcile_note(self) -> str | None:
        """What checking the manifests against the cache found, for the report."""
        r = self.reconciled
        if r is None:
            return None
        return (
            "the cache is not the one the import state describes (restored or changed since): "
            f"checked {r.checked} file(s) against it, {r.stale} to read again"
        )

    def counts(self) -> dict[str, int]:
        top = [f for f in self.files if not f.member]
        members = [f for f in self.files if f.member]
        out = {
            "seen": len(top),
            "opened": sum(1 for f in top if f.opened),
            "unopened": sum(1 for f in top if not f.opened and f.status == "unchanged"),
            "records": sum(f.records for f in self.files),
        }
        for s in ("imported", "skipped", "unchanged", "failed"):
            out[s] = sum(1 for f in top if f.status == s)
            out[f"members_{s}"] = sum(1 for f in members if f.status == s)
        return out

    @property
    def failures(self) -> list[FileResult]:
        return [f for f in self.files if f.status == "failed"]

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "counts": self.counts(),
            "merge": self.merge.summary() if self.merge is not None else None,
            "saved": bool(self.save and self.save.changed),
            "backup": str(self.save.backup) if self.save and self.save.backup else None,
            "timings_s": {k: round(v, 3) for k, v in self.timings.items()},
            "manifests_written": self.manifests_written,
            "reconciled": None
            if self.reconciled is None
            else {"checked": self.reconciled.checked, "stale": self.reconciled.stale, "note": self.reconcile_note},
            "files": msgspec.to_builtins(self.files),
        }


@dataclass
class _Run:
    manifests: Manifests
    full: bool
    limits: Limits
    progress: Progress | None
    results: list[FileResult] = field(default_factory=list)
    records: list[SourceRecord] = field(default_factory=list)


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
) -> ImportReport:
    """Import files, folders and archives into the cache; never raises for one bad file."""
    report = ImportReport(dry_run=dry_run)
    t0 = time.perf_counter()
    paths = store.paths
    excluded = [str(p) for p in (paths.tracking, paths.backups, paths.credentials)]
    found, missing, odd = walk(inputs, excluded)
    report.timings["scan"] = time.perf_counter() - t0

    t1 = time.perf_counter()
    run = _Run(manifests=Manifests(paths), full=full, limits=limits or Limits(), progress=progress)
    if not full and run.manifests.stale(trusted_lineage(paths)):
        # The cache is not the one the manifests were written for: believe them only as far as it holds their records.
        report.reconciled = run.manifests.check_against(held_keys(store.read().cache))
        report.timings["reconcile"] = time.perf_counter() - t1
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
    for path, st in found:
        try:
            _one_file(run, path, st)
        except Exception as exc:  # a bug in one importer must cost one file, never the whole import
            run.results.append(
                FileResult(path=path, status="failed", reason=f"unexpected error: {type(exc).__name__}: {exc}")
            )
    report.timings["read"] = time.perf_counter() - t1
    report.files = run.results

    unique: dict[str, SourceRecord] = {}
    for rec in run.records:
        unique[rec.key] = rec  # the same record from two files (an export and its copy): one is enough
    records = list(unique.values())
    t2 = time.perf_counter()
    if dry_run:
        if records:
            report.merge = ingest(store, records, dry_run=True, lock_timeout=lock_timeout, on_wait=on_wait).report
    elif records or run.manifests.pending():

        def after_save(tx: Transaction, saved: SaveResult) -> None:
            report.manifests_written = run.manifests.write(tx, saved.lineage or tx.lineage, lambda: held_keys(tx.cache))

        result = ingest(store, records, lock_timeout=lock_timeout, on_wait=on_wait, after_save=after_save)
        report.merge, report.save = result.report, result.save
    report.timings["merge_save"] = time.perf_counter() - t2
    return report


def walk(
    inputs: Sequence[str | os.PathLike[str]], excluded: Sequence[str]
) -> tuple[list[tuple[str, os.stat_result]], list[str], list[tuple[str, str, bool]]]:
    """Every regular file under the inputs, with its stat; nothing is opened.

    Also what cannot be read, and what is not a regular file (a FIFO, such
    as ``<(zcat x.gz)``, a device, a socket: reading one could block or never
    end), with whether it was named on the command line.
    """
    found: dict[str, os.stat_result] = {}
    missing: list[str] = []
    odd: list[tuple[str, str, bool]] = []

    def skip_dir(p: str) -> bool:
        return any(p == x or p.startswith(x + os.sep) for x in excluded)

    for raw in inputs:
        p = os.path.abspath(os.fspath(raw))
        try:
            st = os.stat(p)
        except OSError:
            missing.append(p)
            continue
        if stat_mod.S_ISDIR(st.st_mode):
            for root, dirs, files in os.walk(p, onerror=lambda exc, top=p: missing.append(exc.filename or top)):
                dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not skip_dir(os.path.join(root, d)))
                for name in sorted(files):
                    if name.startswith("."):
                        continue
                    fp = os.path.join(root, name)
                    try:
                        fst = os.stat(fp)
                    except OSError:
                        continue
                    if stat_mod.S_ISREG(fst.st_mode):
                        found[fp] = fst
                    else:
                        odd.append((fp, _file_type(fst.st_mode), False))
        elif stat_mod.S_ISREG(st.st_mode):
            found[p] = st
        else:
            odd.append((p, _file_type(st.st_mode), True))
    return sorted(found.items()), missing, odd


def _file_type(mode: int) -> str:
    if stat_mod.S_ISFIFO(mode):
        return "a pipe (FIFO)"
    if stat_mod.S_ISSOCK(mode):
        return "a socket"
    if stat_mod.S_ISCHR(mode) or stat_mod.S_ISBLK(mode):
        return "a device"
    return "a special file"


# ---------------------------------------------------------------- one file


def _one_file(run: _Run, real: str, st: os.stat_result) -> None:
    path = path_key(real)  # the name in reports, manifests and records; ``real`` is what is opened
    name = os.path.basename(path)
    m = run.manifests
    session = detect.polar_session_id(name)
    if session and not run.full:
        known = m.polar_session(session)
        if known is not None and known.status != "failed":
            run.results.append(
                FileResult(
                    path=path,
                    status="unchanged",
                    kind="polar",
                    opened=False,
                    reason=f"Polar session {session} already imported",
                )
            )
            return
    entry = m.lookup(path)
    if not run.full and entry is not None and unchanged_stat(entry, st.st_size, st.st_mtime_ns) and not _failed(entry):
        run.results.append(
            FileResult(path=path, status="unchanged", kind=entry.kind, opened=False, reason=_unchanged_reason(entry))
        )
        return
    try:
        with open(real, "rb") as f:
            head = f.read(detect.HEAD_BYTES)
            kind = detect.sniff(head, name, run.limits)
            if kind in ("zip", "apple_health"):
                _streamed_file(run, path, real, st, f, kind, entry)
                return
            if st.st_size > run.limits.max_file_bytes:
                raise ImportFailed(f"{st.st_size >> 20} MiB is more than one activity file may be")
            data = head + f.read(run.limits.max_file_bytes + 1 - len(head))
    except ImportFailed as exc:
        _fail(run, path, st, None, exc.reason)
        return
    except OSError as exc:
        run.results.append(
            FileResult(path=path, status="failed", reason=f"cannot read: {exc.strerror or exc}", opened=True)
        )
        return
    sha = hashlib.sha256(data).hexdigest()
    if not run.full and entry is not None and entry.sha256 == sha and not _failed(entry):
        m.touch(path, st.st_size, st.st_mtime_ns)
        run.results.append(
            FileResult(
                path=path, status="unchanged", kind=entry.kind, reason="content unchanged (only its time stamp moved)"
            )
        )
        return
    twin = m.by_sha.get(sha)
    if not run.full and twin is not None and twin != path:
        twin_entry = m.lookup(twin)
        group = m.by_path[twin][0]
        m.record(
            group,
            path,
            FileEntry(
                size=st.st_size,
                mtime_ns=st.st_mtime_ns,
                status="imported",
                kind=twin_entry.kind if twin_entry else kind,
                sha256=sha,
                keys=list(twin_entry.keys) if twin_entry else [],
            ),
        )
        run.results.append(
            FileResult(path=path, status="unchanged", kind=kind, reason=f"same content as {twin}, already imported")
        )
        return
    result, ex = _read_bytes(run, path, name, data, kind, member=False)
    group = KIND_GROUP.get(ex.kind if ex else result.kind or "", "other")
    keys = [r.key for r in ex.records] if ex else []
    m.record(
        group,
        path,
        FileEntry(
            size=st.st_size,
            mtime_ns=st.st_mtime_ns,
            status="failed"
            if result.status == "failed"
            else ("imported" if result.status == "imported" else "skipped"),
            kind=result.kind,
            sha256=sha,
            reason=result.reason,
            keys=keys,
        ),
    )
    if ex is not None and ex.kind == "polar" and ex.records:
        m.record_session(ex.records[0].source_id, SessionEntry(file=path, status="imported", keys=keys))


def _failed(entry: FileEntry) -> bool:
    """A file that failed, or an archive with a member that failed, is tried again on every run."""
    return entry.status == "failed" or any(me.status == "failed" for me in entry.members.values())


def _unchanged_reason(entry: FileEntry) -> str:
    if entry.status == "skipped":
        return f"unchanged since it was skipped: {entry.reason}"
    return "unchanged since it was imported"


def _fail(run: _Run, path: str, st: os.stat_result, kind: str | None, reason: str) -> None:
    run.results.append(FileResult(path=path, status="failed", kind=kind, reason=reason))
    run.manifests.record(
        "other", path, FileEntry(size=st.st_size, mtime_ns=st.st_mtime_ns, status="failed", kind=kind, reason=reason)
    )


def _read_bytes(
    run: _Run, path: str, name: str, data: bytes, kind: str, *, member: bool
) -> tuple[FileResult, Extracted | None]:
    """Read one in-memory file by its kind; the result line is appended to the report."""
    try:
        ex = _extract(run, name, data, kind, member=member)
    except ImportFailed as exc:
        res = FileResult(path=path, status="failed", kind=_kind_label(kind), reason=exc.reason, member=member)
        run.results.append(res)
        return res, None
    except NotAnActivity as exc:
        res = FileResult(path=path, status="skipped", kind=_kind_label(kind), reason=exc.reason, member=member)
        run.results.append(res)
        return res, None
    except Exception as exc:  # a parser bug must cost one file, never the import
        res = FileResult(
            path=path,
            status="failed",
            kind=_kind_label(kind),
            reason=f"unexpected error: {type(exc).__name__}: {exc}",
            member=member,
        )
        run.results.append(res)
        return res, None
    res = FileResult(
        path=path, status="imported", kind=ex.kind or kind, records=len(ex.records), warnings=ex.warnings, member=member
    )
    run.results.append(res)
    run.records.extend(ex.records)
    return res, ex


def _kind_label(kind: str) -> str | None:
    return None if kind in ("unknown", "empty") else kind


def _extract(run: _Run, name: str, data: bytes, kind: str, *, member: bool, depth: int = 0) -> Extracted:
    from healthcache.importers import apple_health, fit, garmin_export, gpx, polar, strava_export, tcx

    if kind == "gzip":
        if depth:
            raise ImportFailed("gzip inside gzip: refused")
        inner = archive.gunzip(data, run.limits)
        inner_name = archive.strip_gz(name)
        inner_kind = detect.sniff(inner[: detect.HEAD_BYTES], inner_name, run.limits)
        if inner_kind in ("zip", "gzip"):
            raise ImportFailed(f"a compressed {inner_kind} inside gzip: refused")
        return _extract(run, inner_name, inner, inner_kind, member=member, depth=depth + 1)
    if kind == "fit":
        return fit.read_fit(data, name)
    if kind == "gpx":
        return gpx.read_gpx(data, name, run.limits)
    if kind == "tcx":
        return tcx.read_tcx(data, name, run.limits)
    if kind == "apple_health":
        return apple_health.read_export(
            lambda: io.BytesIO(data), len(data), name, limits=run.limits, progress=run.progress
        )
    if kind == "strava_csv":
        return strava_export.read_activities_csv(data, name)
    if kind == "json":
        try:
            doc = msgspec.json.decode(data)
        except msgspec.DecodeError as exc:
            raise ImportFailed(f"malformed or truncated JSON: {exc}") from exc
        jk = detect.json_kind(doc)
        if jk == "garmin_export":
            return garmin_export.read_summarized(data, name)
        if jk == "polar":
            return polar.read_polar(data, name)
        kind = "other:json"
    if kind == "empty":
        if member:
            raise NotAnActivity("an empty file")
        raise ImportFailed("empty file")
    what = kind.split(":", 1)[1] if ":" in kind else "content of no known type"
    suffix = "." + name.lower().rsplit(".", 1)[-1] if "." in name else ""
    if suffix in CLAIMING_SUFFIXES:
        claimed = {".fit": "a FIT file (no .FIT signature)", ".gpx": "a GPX document", ".tcx": "a TCX document"}[suffix]
        known = "" if kind in ("unknown", "empty") else f"; the content is {_what(what)}"
        raise ImportFailed(f"not {claimed}{known}")
    if kind == "unknown" and not member:
        raise ImportFailed("unknown file type")
    raise NotAnActivity(f"not an activity file ({_what(what)})")


def _what(what: str) -> str:
    return f"XML with root <{what[4:]}>" if what.startswith("xml:") else what


# ---------------------------------------------------------------- exports and archives


def _streamed_file(
    run: _Run, path: str, real: str, st: os.stat_result, f: IO[bytes], kind: str, entry: FileEntry | None
) -> None:
    """Apple Health exports and archives: too big to hash on every change, so size + first/last MiB."""
    m = run.manifests
    digest = head_tail_hash(f, st.st_size)
    if not run.full and entry is not None and entry.head_tail == digest and not _failed(entry):
        m.touch(path, st.st_size, st.st_mtime_ns)
        run.results.append(
            FileResult(
                path=path,
                status="unchanged",
                kind=entry.kind,
                reason="unchanged export (same size, first and last MiB): not parsed",
            )
        )
        return
    twin = None if run.full else m.same_head_tail(st.st_size, digest)
    if twin is not None and twin != path:
        old = m.lookup(twin)
        group = m.by_path[twin][0]
        copy = msgspec.structs.replace(old, mtime_ns=st.st_mtime_ns, at=None) if old else None
        if copy is not None:
            m.record(group, path, copy)
        run.results.append(
            FileResult(path=path, status="unchanged", kind=kind, reason=f"the same export as {twin}: not parsed")
        )
        return
    if kind == "apple_health":
        _apple_file(run, path, real, st, digest)
    else:
        _zip_file(run, path, st, f, digest, entry)


def _apple_file(run: _Run, path: str, real: str, st: os.stat_result, digest: str) -> None:
    from healthcache.importers import apple_health

    name = os.path.basename(path)
    try:
        ex = apple_health.read_export(
            lambda: open(real, "rb"),  # noqa: SIM115 - the reader opens and closes it with `with`
            st.st_size,
            name,
            limits=run.limits,
            progress=run.progress,
        )
    except (ImportFailed, NotAnActivity) as exc:
        status: Outcome = "failed" if isinstance(exc, ImportFailed) else "skipped"
        run.results.append(FileResult(path=path, status=status, kind="apple_health", reason=exc.reason))
        run.manifests.record(
            "apple_health",
            path,
            FileEntry(
                size=st.st_size,
                mtime_ns=st.st_mtime_ns,
                status=status,
                kind="apple_health",
                head_tail=digest,
                reason=exc.reason,
            ),  # type: ignore[arg-type]
        )
        return
    run.results.append(
        FileResult(path=path, status="imported", kind="apple_health", records=len(ex.records), warnings=ex.warnings)
    )
    run.records.extend(ex.records)
    run.manifests.record(
        "apple_health",
        path,
        FileEntry(
            size=st.st_size,
            mtime_ns=st.st_mtime_ns,
            status="imported",
            kind="apple_health",
            head_tail=digest,
            keys=[r.key for r in ex.records],
        ),
    )


def archive_group(members: Sequence[archive.Member]) -> str:
    names = [m.basename for m in members]
    if any(n.endswith("summarizedActivities.json") for n in names):
        return "garmin_export"
    if "activities.csv" in names:
        return "strava_export"
    if "export.xml" in names:
        return "apple_health"
    if any(detect.polar_session_id(n) for n in names):
        return "polar"
    return "archive"


def _zip_file(run: _Run, path: str, st: os.stat_result, f: IO[bytes], digest: str, entry: FileEntry | None) -> None:
    prior: dict[str, MemberEntry] = {}
    if not run.full:
        prior = {**run.manifests.members, **(entry.members if entry is not None else {})}
    new_members: dict[str, MemberEntry] = {}
    top = FileResult(path=path, status="imported", kind="zip")
    run.results.append(top)
    try:
        zf = archive.open_zip(f)
        with zf:
            members = archive.checked_members(zf, run.limits)
            group = archive_group(members)
            top.kind = f"zip:{group}" if group != "archive" else "zip"
            counts = _members(run, path, zf, members, prior, new_members, depth=0, group=group)
    except ImportFailed as exc:
        top.status, top.reason = "failed", exc.reason
        run.manifests.record(
            "archive",
            path,
            FileEntry(
                size=st.st_size,
                mtime_ns=st.st_mtime_ns,
                status="failed",
                kind="zip",
                head_tail=digest,
                reason=exc.reason,
            ),
        )
        return
    keys = sorted({k for me in new_members.values() for k in me.keys})
    top.records = 0  # the members' lines carry the records
    parts = [f"{n} {s}" for s, n in counts.items() if n]
    top.reason = "members: " + ", ".join(parts) if parts else "no members"
    if not counts.get("imported") and not counts.get("unchanged"):
        top.status = "failed" if counts.get("failed") else "skipped"
    run.manifests.record(
        group,
        path,
        FileEntry(
            size=st.st_size,
            mtime_ns=st.st_mtime_ns,
            status="imported" if top.status == "imported" else ("failed" if top.status == "failed" else "skipped"),
            kind=top.kind,
            head_tail=digest,
            reason=top.reason,
            keys=keys,
            members=new_members,
        ),
    )


def _members(
    run: _Run,
    path: str,
    zf: zipfile.ZipFile,
    members: Sequence[archive.Member],
    prior: dict[str, MemberEntry],
    out: dict[str, MemberEntry],
    *,
    depth: int,
    group: str,
    prefix: str = "",
) -> dict[str, int]:
    counts = {"imported": 0, "skipped": 0, "unchanged": 0, "failed": 0}
    for mem in members:
        name = prefix + mem.name
        label = f"{path}!{name}"
        base = mem.basename
        if base.startswith(".") or "__MACOSX/" in mem.name:
            continue
        old = prior.get(name)
        session = detect.polar_session_id(base)
        known = run.manifests.polar_session(session) if session and not run.full else None
        if member_unchanged(old, mem.crc, mem.size) or (known is not None and known.status != "failed"):
            out[name] = old or MemberEntry(
                crc=mem.crc, size=mem.size, status="imported", keys=list(known.keys) if known else []
            )
            for inner_name, inner in prior.items():  # an unchanged nested archive keeps its members' entries
                if inner_name.startswith(name + "/"):
                    out[inner_name] = inner
            counts["unchanged"] += 1
            continue
        if group == "apple_health" and "/workout-routes/" in f"/{mem.name}":
            why = "an Apple Health workout route: imported with the workout in its export.xml"
            out[name] = MemberEntry(crc=mem.crc, size=mem.size, status="skipped", reason=why)
            run.results.append(
                FileResult(path=label, status="skipped", kind="gpx", reason=why, opened=False, member=True)
            )
            counts["skipped"] += 1
            continue
        status, reason, keys = _member(run, path, label, zf, mem, prior, out, depth=depth, name=name)
        if status is None:
            continue  # a nested archive recorded its own members
        out[name] = MemberEntry(crc=mem.crc, size=mem.size, status=status, reason=reason, keys=keys)
        counts["imported" if status == "imported" else status] += 1
    return counts


def _member(
    run: _Run,
    path: str,
    label: str,
    zf: zipfile.ZipFile,
    mem: archive.Member,
    prior: dict[str, MemberEntry],
    out: dict[str, MemberEntry],
    *,
    depth: int,
    name: str,
) -> tuple[Any, str | None, list[str]]:
    from healthcache.importers import apple_health

    try:
        with zf.open(mem.info) as fh:
            head = fh.read(detect.HEAD_BYTES)
        kind = detect.sniff(head, mem.basename, run.limits)
        if kind == "zip":
            if depth >= run.limits.max_nesting:
                raise ImportFailed("an archive nested deeper than allowed")
            with zf.open(mem.info) as fh:
                inner = archive.open_zip(fh)
                with inner:
                    members = archive.checked_members(inner, run.limits)
                    counts = _members(
                        run,
                        path,
                        inner,
                        members,
                        prior,
                        out,
                        depth=depth + 1,
                        group=archive_group(members),
                        prefix=name + "/",
                    )
            out[name] = MemberEntry(
                crc=mem.crc,
                size=mem.size,
                status="imported" if counts["imported"] or counts["unchanged"] else "skipped",
                reason=", ".join(f"{n} {s}" for s, n in counts.items() if n),
            )
            return None, None, []
        if kind == "apple_health":
            ex = apple_health.read_export(
                lambda: zf.open(mem.info), mem.size, mem.basename, limits=run.limits, progress=run.progress
            )
            run.results.append(
                FileResult(
                    path=label, status="imported", kind=kind, records=len(ex.records), warnings=ex.warnings, member=True
                )
            )
            run.records.extend(ex.records)
            return "imported", None, [r.key for r in ex.records]
        data = archive.read_member(zf, mem, run.limits)
    except ImportFailed as exc:
        run.results.append(FileResult(path=label, status="failed", reason=exc.reason, member=True))
        return "failed", exc.reason, []
    except NotAnActivity as exc:
        run.results.append(FileResult(path=label, status="skipped", reason=exc.reason, member=True))
        return "skipped", exc.reason, []
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError) as exc:
        run.results.append(
            FileResult(path=label, status="failed", reason=f"corrupt archive member: {exc}", member=True)
        )
        return "failed", str(exc), []
    result, ex = _read_bytes(run, label, mem.basename, data, kind, member=True)
    keys = [r.key for r in ex.records] if ex else []
    if ex is not None and ex.kind == "polar" and ex.records:
        run.manifests.record_session(ex.records[0].source_id, SessionEntry(file=label, status="imported", keys=keys))
    return ("imported" if result.status == "imported" else result.status), result.reason, keys
