"""Open an input or skip it, and why: the one decision for every file and archive member.

The facts come from ``stat`` (or an archive's directory) and the manifests,
after they were checked against the cache (``freshness.decide`` forgets an
entry whose records the cache no longer holds), so a skip here never hides a
record the cache lacks.  The decision is pure, and table-tested; what to do
with the manifest follows from ``Verdict.why``.
"""

from __future__ import annotations

from typing import Literal

import msgspec

# new: never read, or changed; full: --full reads everything; companion: read with another member of
# its export; session: its Polar session was imported from another input, and it has no entry of its
# own; stat: same stat (or CRC) as its entry; content:
# same digest as its entry (only its time stamp moved); twin: another input with this content is imported.
Why = Literal["new", "full", "companion", "session", "stat", "content", "twin"]


# Structs, not dataclasses: one Facts and one Verdict per input, thousands on a day with nothing new.
class Facts(msgspec.Struct, frozen=True, kw_only=True):
    """What is known of one input before (and, for digest and twin, after) it is opened."""

    full: bool = False
    companion: str | None = None  # why it is read with another member of its export, if it is
    session: str | None = None  # the Polar session id in its name, when that session is imported
    own: bool = False  # it has an entry of its own (a file's by its path, a member's in its archive's entry)
    unchanged: bool = False  # stat (a file) or CRC and size (a member) as its entry says
    failed_before: bool = False  # its entry, or a member of it, failed: tried again every run
    skipped_because: str | None = None  # its entry's reason, when it was skipped last time
    same_digest: bool | None = None  # its digest equals its entry's; None until it is opened
    twin: str | None = None  # another input, already imported, with the same digest
    streamed: bool = False  # digested by size, first and last MiB (an export), not its whole content


class Verdict(msgspec.Struct, frozen=True):
    open: bool
    reason: str
    why: Why


def decide(f: Facts) -> Verdict:
    """Whether to read the input, and the reason the report gives.

    A known Polar session decides only for an input with no entry of its own: another copy of it (a
    single download beside the account export) is not opened.  An input that has one is judged by it,
    as any other: the same stat skips it, a changed one (the session edited and downloaded again) reads it,
    and the merge says whether the session changed.
    """
    if f.session is not None and not f.own and not f.full:
        return Verdict(False, f"Polar session {f.session} already imported", "session")
    if f.unchanged and not f.failed_before and not f.full:
        return Verdict(False, stat_reason(f.skipped_because), "stat")
    if f.companion is not None:
        return Verdict(False, f.companion, "companion")
    if f.full:
        return Verdict(True, "a full import reads every input", "full")
    if f.same_digest and not f.failed_before:
        if f.streamed:
            return Verdict(False, "unchanged export (same size, first and last MiB): not parsed", "content")
        return Verdict(False, "content unchanged (only its time stamp moved)", "content")
    if f.twin is not None:
        if f.streamed:
            return Verdict(False, f"the same export as {f.twin}: not parsed", "twin")
        return Verdict(False, f"same content as {f.twin}, already imported", "twin")
    if f.failed_before:
        return Verdict(True, "it failed before: tried again", "new")
    return Verdict(True, "new or changed since it was last read", "new")


def stat_reason(skipped_because: str | None) -> str:
    """The reason of the verdict ``stat`` (also given by the import's path for unchanged files)."""
    if skipped_because is not None:
        return f"unchanged since it was skipped: {skipped_because}"
    return "unchanged since it was imported"
