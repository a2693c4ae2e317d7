"""Join decisions: recorded on the activity when a record is joined, read back by explain.

A decision names the record joined and the record (or activity) it was joined
to, the rule, when, and what the rule saw: the external id that named the
other record, or the heuristic's measurements.  Files written before schema 2
hold none; explain re-derives those from the kept payloads.
"""

from __future__ import annotations

from typing import Any

from healthcache.merge.rules import Comparison, platform
from healthcache.model.records import Activity, Join


def recorded(act: Activity, key: str) -> Join | None:
    """The decision that joined ``key`` into ``act`` (else one that joined another record to it)."""
    naming = [j for j in act.joins if key in j.records]
    return next((j for j in naming if j.records[0] == key), naming[0] if naming else None)


def describe(join: Join, key: str) -> tuple[str, dict[str, Any] | None]:
    """The words (and for the heuristic the measurements) ``dupes --explain`` prints for ``key``."""
    other = join.records[1] if join.records[0] == key else join.records[0]
    if join.rule == "heuristic" and join.figures is not None:
        cmp = Comparison.from_figures(join.figures)
        return f"vs {other}: {cmp.describe()}", cmp.as_dict()
    if join.rule == "link":
        return f"linked to {other} at {join.at}", None
    if join.detail:
        return join.detail, None
    return f"same {platform(other.split(':', 1)[0])} id as {other}", None
