"""One walker for files and archive members alike: what there is to decide on, with its stat; nothing is read.

``walk`` finds the files under the inputs (hidden entries and the workspace's
own folders left out) and what cannot be read; ``members`` lists an opened
archive's members as the same ``Item``, so the pipeline treats a file and a
member by one path: decide, open, detect, read, record.
"""

from __future__ import annotations

import os
import stat as stat_mod
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import IO, TYPE_CHECKING

import msgspec

from healthcache.importers.manifest import path_key

if TYPE_CHECKING:  # an archive's members are listed once one is open
    import zipfile

    from healthcache.config import Paths
    from healthcache.importers import archive


class Item(msgspec.Struct, frozen=True, kw_only=True):
    """A file or an archive member to decide on and maybe read."""

    label: str  # its name in reports and manifests: a path, or ``path!member``
    name: str  # its base name, for detection and Polar session ids
    size: int
    open: Callable[[], IO[bytes]]
    mtime_ns: int = 0  # a file's
    member: archive.Member | None = None  # an archive member's directory entry
    key: str = ""  # a member's name inside the outermost archive (nested names joined by /)


def file_item(real: str, st: os.stat_result) -> Item:
    path = path_key(real)  # the name in reports, manifests and records; ``real`` is what is opened
    return Item(
        label=path,
        name=os.path.basename(path),
        size=st.st_size,
        mtime_ns=st.st_mtime_ns,
        open=lambda: open(real, "rb"),
    )


def members(zf: zipfile.ZipFile, path: str, found: Sequence[archive.Member], prefix: str = "") -> Iterator[Item]:
    """An archive's members as items (hidden files and macOS resource forks left out)."""
    for mem in found:
        if mem.basename.startswith(".") or "__MACOSX/" in mem.name:
            continue
        key = prefix + mem.name
        yield Item(
            label=f"{path}!{key}",
            name=mem.basename,
            size=mem.size,
            open=partial(zf.open, mem.info),
            member=mem,
            key=key,
        )


def workspace_folders(paths: Paths) -> list[str]:
    """The workspace's own folders, never imported from: what ``walk`` leaves out."""
    return [str(p) for p in (paths.tracking, paths.backups, paths.credentials)]


def require_paths(inputs: Sequence[str | os.PathLike[str]]) -> None:
    """Refuse an empty path (a UsageError): ``os.path.abspath("")`` is the current folder, so an empty
    argument, as ``"$(...)"`` gives when the command inside prints nothing, would import all of it."""
    if any(os.fspath(p) == "" for p in inputs):
        from healthcache.errors import UsageError
        from healthcache.samples import path as samples

        raise UsageError(
            'an empty path was given (""): a command substitution such as "$(python -m healthcache.samples)" '
            "gives one when the command inside prints nothing; name a file or folder",
            hint=f"The bundled sample files are at {samples()}",
        )


def walk(
    inputs: Sequence[str | os.PathLike[str]], excluded: Sequence[str]
) -> tuple[list[tuple[str, os.stat_result]], list[str], list[tuple[str, str, bool]]]:
    """Every regular file under the inputs, with its stat; nothing is opened.

    Also what cannot be read, and what is not a regular file (a FIFO, such
    as ``<(zcat x.gz)``, a device, a socket: reading one could block or never
    end), with whether it was named on the command line.
    An empty input is refused (``require_paths``).
    """
    require_paths(inputs)
    found: dict[str, os.stat_result] = {}
    missing: list[str] = []
    odd: list[tuple[str, str, bool]] = []

    for raw in inputs:
        p = os.path.abspath(os.fspath(raw))
        try:
            st = os.stat(p)
        except OSError:
            missing.append(p)
            continue
        if stat_mod.S_ISDIR(st.st_mode):
            _walk_folder(p, excluded, found, missing, odd)
        elif stat_mod.S_ISREG(st.st_mode):
            found[p] = st
        else:
            odd.append((p, _file_type(st.st_mode), True))
    # Sorted by path alone: comparing the (path, stat) pairs as tuples costs three times as much.
    return [(path, found[path]) for path in sorted(found)], missing, odd


def _walk_folder(
    top: str,
    excluded: Sequence[str],
    found: dict[str, os.stat_result],
    missing: list[str],
    odd: list[tuple[str, str, bool]],
) -> None:
    """Every file under ``top`` (hidden names, symlinked folders and the ``excluded`` ones left out), with
    its stat (a symlinked file's target's): one ``scandir`` per folder, one ``stat`` per file."""
    stack = [top]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as entries:
                listed = list(entries)
        except OSError as exc:
            missing.append(exc.filename or folder)
            continue
        for entry in listed:
            if entry.name.startswith("."):
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    if not any(entry.path == x or entry.path.startswith(x + os.sep) for x in excluded):
                        stack.append(entry.path)
                    continue
                st = entry.stat()  # follows a symlink, as reading it would
            except OSError:  # gone meanwhile, or a broken symlink: nothing to read
                continue
            if stat_mod.S_ISREG(st.st_mode):
                found[entry.path] = st
            elif not stat_mod.S_ISDIR(st.st_mode):  # a symlink to a folder is not followed
                odd.append((entry.path, _file_type(st.st_mode), False))


def _file_type(mode: int) -> str:
    if stat_mod.S_ISFIFO(mode):
        return "a pipe (FIFO)"
    if stat_mod.S_ISSOCK(mode):
        return "a socket"
    if stat_mod.S_ISCHR(mode) or stat_mod.S_ISBLK(mode):
        return "a device"
    return "a special file"
