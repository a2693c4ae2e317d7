"""The pipeline every source and importer ends in: merge under the lock, guard, save.

State (cursors, manifests) is written by ``after_save`` inside the same lock and
only after the save succeeded, so a cursor never moves past data that was not
saved.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from healthcache.merge import MergeReport, merge
from healthcache.model.records import SourceRecord
from healthcache.store import SaveResult, Store, Transaction
from healthcache.timeutil import utc_iso


@dataclass(frozen=True)
class IngestResult:
    report: MergeReport
    save: SaveResult | None  # None for a dry run
    dry_run: bool = False


def ingest(
    store: Store,
    records: Sequence[SourceRecord],
    *,
    dry_run: bool = False,
    lock_timeout: float | None = 0.0,
    on_wait: Callable[[str | None], None] | None = None,
    after_save: Callable[[Transaction, SaveResult], None] | None = None,
) -> IngestResult:
    """Merge ``records`` into the cache and save through the guard.

    A dry run merges and checks the guard but writes nothing at all.
    """
    with store.transaction(lock_timeout=lock_timeout, on_wait=on_wait) as tx:
        now = utc_iso(store.clock())
        new, report = merge(tx.cache, records, now=now, preference=store.config.preference)
        if dry_run:
            return IngestResult(report=report, save=None, dry_run=True)
        result = tx.save(new)
        if after_save is not None:
            after_save(tx, result)
        return IngestResult(report=report, save=result)
