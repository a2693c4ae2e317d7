"""Per-kilometre heart-rate splits of file imports: the shared ``healthcache.splits`` rules."""

from __future__ import annotations

from healthcache.splits import from_samples as hr_splits

Sample = tuple[float, float | None, float | None]

__all__ = ["Sample", "hr_splits"]
