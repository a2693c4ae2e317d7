"""What a merge did to each record: the outcomes and the report callers render."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

Outcome = Literal["new", "updated", "merged", "unchanged", "joined_closest", "kept_apart", "conflict", "tombstoned"]
OUTCOMES: tuple[Outcome, ...] = (
    "new",
    "updated",
    "merged",
    "unchanged",
    "joined_closest",  # joined the closest match that could take it; others it matched stay apart
    "kept_apart",  # added as a new activity: the activities its ids name cannot take it
    "conflict",  # not stored: its id already names an activity holding another record of its source
    "tombstoned",
)
# The outcomes that change the cache (a conflict stores nothing; a tombstoned record never comes back).
CHANGING: frozenset[Outcome] = frozenset({"new", "updated", "merged", "joined_closest", "kept_apart"})
# The outcomes that ask for a decision (``healthcache link``/``unlink``): always listed, with candidates.
UNRESOLVED: frozenset[Outcome] = frozenset({"joined_closest", "kept_apart", "conflict"})


class ReportEntry(msgspec.Struct, kw_only=True, omit_defaults=True):
    """What happened to one incoming record."""

    key: str  # "<source>:<source_id>" of the incoming record
    activity_id: str | None  # the activity it now lives in (None if skipped; a conflict: the one it names)
    outcome: Outcome
    rule: str | None = None  # "same_id" | "external_id" | "heuristic" | "link"
    fields: list[str] = []  # fields that changed
    candidates: list[str] = []  # other activities it matched but could not join (see UNRESOLVED)
    absorbed: list[str] = []  # activities this record proved to be the same workout
    detail: str | None = None


class MergeReport(msgspec.Struct, kw_only=True):
    """Per record, what happened (``OUTCOMES``); ``summary()`` counts each outcome apart."""

    entries: list[ReportEntry] = []
    absorbed: list[str] = []  # activity ids that became aliases of another activity

    def count(self, outcome: Outcome) -> int:
        return sum(1 for e in self.entries if e.outcome == outcome)

    def summary(self) -> dict[str, int]:
        return {o: self.count(o) for o in OUTCOMES}

    @property
    def changed(self) -> bool:
        return any(e.outcome in CHANGING for e in self.entries) or bool(self.absorbed)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"summary": self.summary(), "absorbed": list(self.absorbed)}
        out["entries"] = msgspec.to_builtins(self.entries)
        return out
