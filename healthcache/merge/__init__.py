"""Merge normalised source records into the cache, de-duplicated, and explain why.

The package by concept: ``rules`` (thresholds, comparison, the ordered match
rules), ``index`` (every record key to its activity), ``fields`` (which source
provides each field), ``engine`` (placing each record), ``links`` (manual
link/unlink), ``explain`` and ``copies`` (what was joined, what almost was).
"""

from healthcache.merge.copies import PossibleCopies, same_source_copies
from healthcache.merge.engine import Merger, merge
from healthcache.merge.explain import Group, Member, NearMiss, groups, near_misses
from healthcache.merge.fields import FIELD_RULES, MERGED_FIELDS, Builder, FieldRule, Normaliser, has_value
from healthcache.merge.links import link_records, link_refusal, unlink_records
from healthcache.merge.report import OUTCOMES, UNRESOLVED, MergeReport, Outcome, ReportEntry
from healthcache.merge.rules import RULES, Comparison, compare, garmin_ref, platform

__all__ = [
    "FIELD_RULES",
    "MERGED_FIELDS",
    "OUTCOMES",
    "RULES",
    "UNRESOLVED",
    "Builder",
    "Comparison",
    "FieldRule",
    "Group",
    "Member",
    "MergeReport",
    "Merger",
    "NearMiss",
    "Normaliser",
    "Outcome",
    "PossibleCopies",
    "ReportEntry",
    "compare",
    "garmin_ref",
    "groups",
    "has_value",
    "link_records",
    "link_refusal",
    "merge",
    "near_misses",
    "platform",
    "same_source_copies",
    "unlink_records",
]
