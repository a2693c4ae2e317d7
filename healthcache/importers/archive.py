"""Reading zip and gzip inputs without trusting them: nothing is ever extracted to disk.

Members are read (or streamed) straight from the archive.  Before any member
is read the whole archive is checked, and refused as a unit when a member name
would escape it (``..``, absolute paths, drive letters: a hostile archive is
not half-imported), when a member expands more than ``max_ratio`` times
(a zip bomb), or when the declared total is beyond ``max_archive_bytes``.
zipfile stops every member at its declared size and checks its CRC, so the
declared sizes bound what is read.  gzip has no declared size: it is
decompressed in bounded steps, with the ratio checked as it goes, and
refused past the limits; a member is read up to its declared size, which the
checks above bound.
"""

from __future__ import annotations

import io
import re
import stat
import zlib
from typing import IO, TYPE_CHECKING

import msgspec

from healthcache.importers.base import MIB, ImportFailed, Limits

if TYPE_CHECKING:  # deciding on files opens no archive: zipfile loads with the first one
    import zipfile

_DRIVE = re.compile(r"^[A-Za-z]:")


def unsafe_member_name(name: str) -> bool:
    n = name.replace("\\", "/")
    if not n or "\x00" in n or n.startswith("/") or _DRIVE.match(n):
        return True
    return ".." in n.split("/")


class Member(msgspec.Struct, frozen=True):
    name: str
    size: int
    crc: int
    info: zipfile.ZipInfo

    @property
    def basename(self) -> str:
        return self.name.rstrip("/").rsplit("/", 1)[-1]


def open_zip(source: str | IO[bytes]) -> zipfile.ZipFile:
    import zipfile

    try:
        return zipfile.ZipFile(source)
    except zipfile.BadZipFile as exc:
        raise ImportFailed(f"not a readable zip archive: {exc}") from exc
    except (OSError, EOFError, ValueError) as exc:
        raise ImportFailed(f"unreadable zip archive: {exc}") from exc


def checked_members(zf: zipfile.ZipFile, limits: Limits) -> list[Member]:
    """Every file member, after the archive as a whole passed the safety checks."""
    infos = zf.infolist()
    if len(infos) > limits.max_members:
        raise ImportFailed(f"refused: {len(infos)} members, more than the {limits.max_members} allowed")
    total = 0
    out: list[Member] = []
    for info in infos:
        if unsafe_member_name(info.filename):
            raise ImportFailed(f"refused: member {info.filename!r} would escape the archive (path traversal)")
        if info.is_dir():
            continue
        if stat.S_ISLNK(info.external_attr >> 16):
            raise ImportFailed(f"refused: member {info.filename!r} is a symbolic link")
        if info.file_size > limits.ratio_floor and info.file_size > info.compress_size * limits.max_ratio:
            ratio = info.file_size / max(info.compress_size, 1)
            raise ImportFailed(
                f"refused: member {info.filename!r} expands {ratio:.0f} times to "
                f"{info.file_size / MIB:.0f} MiB (a zip bomb)"
            )
        total += info.file_size
        if total > limits.max_archive_bytes:
            raise ImportFailed(f"refused: the members add up to more than {limits.max_archive_bytes / MIB:.0f} MiB")
        out.append(Member(name=info.filename, size=info.file_size, crc=info.CRC, info=info))
    # Reading in stored order keeps a nested archive (seekable only forwards cheaply) fast.
    out.sort(key=lambda m: m.info.header_offset)
    return out


def read_member(zf: zipfile.ZipFile, member: Member, limits: Limits) -> bytes:
    import zipfile

    """A member's bytes; a compressed one may inflate to ``max_inflated_bytes`` at most."""
    if member.info.flag_bits & 0x1:
        raise ImportFailed("the member is encrypted")
    cap = limits.max_file_bytes
    if member.info.compress_type != zipfile.ZIP_STORED:
        cap = min(cap, limits.max_inflated_bytes)
    if member.size > cap:
        raise ImportFailed(f"{member.size / MIB:.0f} MiB is more than one activity file may be ({cap / MIB:.0f} MiB)")
    try:
        with zf.open(member.info) as f:
            data = f.read(cap + 1)  # zipfile stops at the declared size, which is within the cap
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError, RuntimeError) as exc:
        raise ImportFailed(f"corrupt archive member: {exc}") from exc
    if len(data) > cap:
        raise ImportFailed("the member is larger than it declares")
    return data


GUNZIP_STEP = 1 * MIB  # output per inflate step: the ratio is checked after each
GUNZIP_FEED = 64 * 1024  # compressed bytes offered per step


def gunzip(data: bytes, limits: Limits) -> bytes:
    """Decompress gzip data in bounded steps, refusing a gzip bomb as soon as it shows.

    After every step of at most ``GUNZIP_STEP`` bytes the output is compared
    with the compressed bytes consumed so far (``max_ratio`` past
    ``ratio_floor``) and with ``max_inflated_bytes``, so a bomb costs a few MiB
    of memory before it is refused, never its declared size.
    """
    cap = min(limits.max_file_bytes, limits.max_inflated_bytes)
    view = memoryview(data)
    out = io.BytesIO()
    produced = pos = 0
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    while True:
        feed = view[pos : pos + GUNZIP_FEED]
        try:
            chunk = d.decompress(feed, GUNZIP_STEP)
        except zlib.error as exc:
            raise ImportFailed(f"corrupt gzip data: {exc}") from exc
        pos += len(feed) - len(d.unconsumed_tail) - len(d.unused_data)
        produced += len(chunk)
        out.write(chunk)
        if produced > cap:
            raise ImportFailed(f"refused: the gzip data expands beyond {cap / MIB:.0f} MiB (a gzip bomb)")
        if produced > limits.ratio_floor and produced > pos * limits.max_ratio:
            raise ImportFailed(f"refused: gzip data expands more than {limits.max_ratio:.0f} times (a gzip bomb)")
        if d.eof:
            if bytes(view[pos : pos + 2]) != b"\x1f\x8b":
                break  # the end, or trailing bytes that are not another gzip member
            d = zlib.decompressobj(16 + zlib.MAX_WBITS)  # concatenated gzip members
        elif pos >= len(data) and not chunk:
            raise ImportFailed("truncated gzip data")
    return out.getvalue()


def strip_gz(name: str) -> str:
    return name[:-3] if name.lower().endswith(".gz") else name
