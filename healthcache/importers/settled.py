"""A listing the import state already settles: a day with nothing new judged in one comparison.

When an import writes its manifests (under the lock, after its save), it also notes, for the inputs
it was given, the digest of the walk's listing (every file's path, size and mtime) if the next import
of that listing would judge every file unchanged: each has a manifest entry with that very size and
mtime that did not fail (or has none and is a Polar session already imported), no input is missing,
and no manifest is stale for the cache lineage just saved.  The note keeps that lineage and the ``stat`` of
each manifest file as written.

While the listing, the lineage the cache index vouches for and every manifest file are as noted, an
import of those inputs would come to "every file unchanged" by the same evidence as file by file (the
manifests, and so each entry, are the ones the note was checked against), so ``daily`` reports it
without loading a manifest (``unchanged_files``).  The note is a hint: whatever it does not vouch for
takes the full way, and an unreadable note is no note.
"""

from __future__ import annotations

import hashlib
import os
from array import array
from collections.abc import Sequence
from typing import TYPE_CHECKING

import msgspec

from healthcache import state
from healthcache.config import Paths
from healthcache.errors import CorruptInput
from healthcache.importers import formats
from healthcache.importers.manifest import IMPORTER_VERSION, state_name

if TYPE_CHECKING:
    from healthcache.importers.manifest import Manifests, StateWriter

STATE = "settled-imports"  # sync_state/settled-imports.json
KEEP = 8  # notes kept: one per set of inputs imported (the watched paths, a folder imported by hand)

Listing = Sequence[tuple[str, os.stat_result]]


class Settled(msgspec.Struct, kw_only=True):
    """One set of inputs whose listing every manifest entry settles."""

    listing: str  # sha256 of the walk's listing: each file's path, size and mtime
    files: int
    lineage: str  # the cache lineage the manifests were written under
    manifests: dict[str, state.FileKey | None]  # each manifest file as written (None: absent)
    version: int = IMPORTER_VERSION


class SettledState(msgspec.Struct, kw_only=True, omit_defaults=True):
    inputs: dict[str, Settled] = {}  # by ``inputs_key``


def inputs_key(inputs: Sequence[str | os.PathLike[str]], excluded: Sequence[str]) -> str:
    """The inputs as walked (absolute) and the folders left out: what the listing is the listing of."""
    text = "\0".join([*(os.path.abspath(os.fspath(p)) for p in inputs), "", *excluded])
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:32]


def listing_digest(found: Listing) -> str:
    """sha256 of the paths (NUL-separated: no path holds one), then every size, then every mtime (int64 each)."""
    h = hashlib.sha256("\0".join([p for p, _ in found]).encode("utf-8", "surrogateescape"))
    stats = [st for _, st in found]
    h.update(array("q", [st.st_size for st in stats]).tobytes())
    h.update(array("q", [st.st_mtime_ns for st in stats]).tobytes())
    return h.hexdigest()


def manifest_keys(paths: Paths) -> dict[str, state.FileKey | None]:
    """Each manifest file's version (``state.file_key``): any write changes it."""
    return {group: state.file_key(paths.state_file(state_name(group))) for group in formats.groups()}


def vouches(
    note: Settled | None, listing: str, lineage: str | None, manifests: dict[str, state.FileKey | None]
) -> bool:
    """Whether ``note`` settles this listing now: the same listing, lineage and manifest files.  Pure."""
    return (
        note is not None
        and note.version == IMPORTER_VERSION
        and lineage is not None
        and note.lineage == lineage
        and note.listing == listing
        and note.manifests == manifests
    )


def _load(paths: Paths) -> SettledState:
    try:
        return state.load(paths, STATE, SettledState, SettledState())
    except (CorruptInput, OSError):
        return SettledState()  # a hint that cannot be read is no hint


def unchanged_files(paths: Paths, inputs: Sequence[str | os.PathLike[str]]) -> int | None:
    """How many files an import of ``inputs`` would judge unchanged, all of them, if a note vouches
    for it (``vouches``); None when the import must decide file by file."""
    from healthcache.cacheindex import trusted_lineage
    from healthcache.importers.walk import walk, workspace_folders

    excluded = workspace_folders(paths)
    note = _load(paths).inputs.get(inputs_key(inputs, excluded))
    if note is None:
        return None
    found, missing, odd = walk(inputs, excluded)
    if missing or odd or len(found) != note.files:
        return None
    if not vouches(note, listing_digest(found), trusted_lineage(paths), manifest_keys(paths)):
        return None
    return len(found)


def settles(manifests: Manifests, found: Listing, lineage: str) -> bool:
    """Whether the next import of this listing would judge every file unchanged by these manifests
    (``decide``'s ``stat`` verdict for a file with an entry, ``session`` for one without).  Pure."""
    from healthcache.importers.detect import polar_session_id

    if manifests.stale(lineage):
        return False
    for path, st in found:
        if not path.isascii():
            return False
        entry = manifests.lookup(path)
        if entry is not None:  # its own entry decides, a Polar session's file too
            if not entry.same_stat(st.st_size, st.st_mtime_ns) or entry.failed():
                return False
            continue
        session = polar_session_id(os.path.basename(path))
        known = manifests.polar_session(session) if session else None
        if known is None or known.status == "failed":
            return False
    return True


def note(
    tx: StateWriter,
    paths: Paths,
    key: str,
    found: Listing,
    unreadable: bool,
    lineage: str,
) -> None:
    """After an import wrote its manifests (under the lock): note its listing if they settle it, else
    forget any note for these inputs.  The manifests are read again here, as the next import will."""
    from healthcache.importers.manifest import Manifests

    current = _load(paths)
    notes = {k: v for k, v in current.inputs.items() if k != key}
    try:
        manifests = None if unreadable else Manifests(paths)
    except CorruptInput:  # another manifest cannot be read: the next import says so; nothing is noted
        manifests = None
    if manifests is not None and settles(manifests, found, lineage):
        notes[key] = Settled(
            listing=listing_digest(found), files=len(found), lineage=lineage, manifests=manifest_keys(paths)
        )
        notes = dict(list(notes.items())[-KEEP:])
    elif key not in current.inputs:
        return  # nothing noted, nothing to forget
    tx.write_state(paths.state_file(STATE), SettledState(inputs=notes))
