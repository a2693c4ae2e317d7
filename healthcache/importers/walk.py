"""One walker for files and archive members alike: what there is to decide on, with its stat; nothing is read.

``walk`` finds the files under the inputs (hidden entries and the workspace's
own folders left out) and what cannot be read; ``members`` lists an opened
archive's members as the same ``Item``, so the pipeline treats a file and a
member by one path: decide, open, detect, read, record.
"""

from __future__ import annotations

import os
import stat as stat_mod
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import IO

from healthcache.importers import archive
from healthcache.importers.manifest import path_key


@dataclass(frozen=True)
class Item:
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
            for root, dirs, files in os.walk(p, onerror=partial(_unreadable, missing, p)):
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


def _unreadable(missing: list[str], top: str, exc: OSError) -> None:
    """``os.walk``'s onerror: a folder that cannot be listed is reported, by its name or the top's."""
    missing.append(exc.filename or top)
