"""The export plan, tested directly: what the mirror holds and what the cache holds in, decisions out.

Plus the one rule that lets the cache index stand in for the cache
(``cacheindex.current_index``), which export, status and the lineage checks share.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from healthcache.cacheindex import current_index, read_index, trusted_lineage
from healthcache.config import Config, Paths
from healthcache.export import core, plan, tables
from healthcache.export.mirror import MirrorState, StoredRow
from healthcache.export.plan import ExportPlan, SchemaAction, SchemaDecision
from healthcache.status import status
from healthcache.store import Store
from tests.export_fixtures import make_activity, make_home, save_cache

V = tables.SCHEMA_VERSION
KEEP = SchemaDecision(SchemaAction.KEEP, "same version")
CREATE = SchemaDecision(SchemaAction.CREATE, "no tables")
REBUILD = SchemaDecision(SchemaAction.REBUILD, "full refresh requested: every table rebuilt in one transaction")


def state(has_tables: bool = True, meta: dict[str, str] | None = None) -> MirrorState:
    return MirrorState(has_tables=has_tables, meta=meta, size_bytes=0)


# ---- the schema action -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("found", "full_refresh", "action", "words"),
    [
        (state(has_tables=False), False, SchemaAction.CREATE, "no tables yet"),
        (state(has_tables=False), True, SchemaAction.REBUILD, "full refresh requested"),
        (state(meta={"schema_version": str(V)}), False, SchemaAction.KEEP, f"schema version {V}"),
        (state(meta={"schema_version": str(V)}), True, SchemaAction.REBUILD, "full refresh requested"),
        (
            state(meta={"schema_version": "0"}),
            False,
            SchemaAction.REBUILD,
            f"version 0 is older than this healthcache's {V}",
        ),
        (state(meta={"schema_version": "v1"}), False, SchemaAction.REBUILD, "version v1 is older"),
        (state(meta=None), False, SchemaAction.REFUSE, "that healthcache did not create"),
        (state(meta={"generator": "x"}), False, SchemaAction.REFUSE, "that healthcache did not create"),
        (state(meta=None), True, SchemaAction.REBUILD, "full refresh requested"),
        (state(meta={"schema_version": str(V + 1)}), False, SchemaAction.REFUSE, f"version {V + 1}, newer"),
        (state(meta={"schema_version": str(V + 1)}), True, SchemaAction.REBUILD, "full refresh requested"),
    ],
)
def test_schema_action_with_its_reason(
    found: MirrorState, full_refresh: bool, action: SchemaAction, words: str
) -> None:
    decision = plan.schema_action(found, full_refresh=full_refresh)
    assert decision.action is action
    assert words in decision.reason
    assert (decision.hint is not None) == (action is SchemaAction.REFUSE)  # a refusal says what to do next
    assert decision.builds_tables == (action in (SchemaAction.CREATE, SchemaAction.REBUILD))
    # Only a rebuild is worth a line in the report; creating the first mirror is not news.
    assert decision.note == (decision.reason if action is SchemaAction.REBUILD else None)


def test_stored_hashes_are_trusted_only_from_this_schema_version() -> None:
    assert plan.trusts_stored_hashes(state(meta={"schema_version": str(V)}))
    assert not plan.trusts_stored_hashes(state(meta={"schema_version": "0"}))
    assert not plan.trusts_stored_hashes(state(meta=None))
    assert plan.has_stored_rows(state(meta={}))
    assert not plan.has_stored_rows(state(meta=None)) and not plan.has_stored_rows(state(False, {}))


# ---- the same cache as last time ----------------------------------------------------------


@pytest.mark.parametrize(
    ("schema", "meta", "resend_all", "same"),
    [
        (KEEP, {"cache_sha256": "abc"}, False, True),
        (KEEP, {"cache_sha256": "abd"}, False, False),
        (KEEP, {}, False, False),
        (KEEP, None, False, False),
        (KEEP, {"cache_sha256": "abc"}, True, False),
        (REBUILD, {"cache_sha256": "abc"}, False, False),
        (CREATE, {"cache_sha256": "abc"}, False, False),
    ],
)
def test_same_cache(schema: SchemaDecision, meta: dict[str, str] | None, resend_all: bool, same: bool) -> None:
    assert plan.same_cache(schema, meta, "abc", resend_all=resend_all) is same


def test_recorded_counts_are_used_only_when_complete() -> None:
    full = {t.name: i for i, t in enumerate(tables.ALL_TABLES)}
    assert plan.recorded_counts({"rows": json.dumps(full)}) == full
    assert plan.recorded_counts({"rows": json.dumps({**full, "extra": 1})}) == full
    assert plan.recorded_counts({"rows": json.dumps({**full, "activities": "7"})}) is None
    assert plan.recorded_counts({"rows": "[1, 2]"}) is None
    assert plan.recorded_counts({"rows": "not json"}) is None
    assert plan.recorded_counts({}) is None and plan.recorded_counts(None) is None


@pytest.mark.parametrize(
    ("in_mirror", "in_cache", "delete_orphans", "orphans", "done"),
    [
        (10, 10, False, 0, True),
        (12, 10, False, 2, True),  # orphans stay, marked: nothing to do
        (12, 10, True, 2, False),  # orphans to delete: go on
        (10, 10, True, 0, True),
        (9, 10, False, 0, True),  # never a negative count
    ],
)
def test_plan_unchanged(in_mirror: int, in_cache: int, delete_orphans: bool, orphans: int, done: bool) -> None:
    verdict = plan.plan_unchanged(in_mirror, in_cache, delete_orphans=delete_orphans)
    assert (verdict.processed, verdict.orphans, verdict.done) == (in_cache, orphans, done)
    assert ("delete" in verdict.reason) == (not done)


# ---- what to send, mark and delete ---------------------------------------------------------

CACHE = [("a", b"A", "h-a"), ("b", b"B", "h-b2"), ("c", b"C", "h-c"), ("d", b"D", "h-d")]
MIRROR = [
    StoredRow("a", "h-a", False),  # unchanged
    StoredRow("b", "h-b1", False),  # changed
    StoredRow("c", "h-c", True),  # back in the cache after being orphaned
    StoredRow("x", "h-x", False),  # left the cache: a new orphan
    StoredRow("y", "h-y", True),  # marked before
]  # "d" is new


def ids(items: list[tuple[str, bytes, str]]) -> list[str]:
    return [i for i, _p, _h in items]


@pytest.mark.parametrize(
    ("schema", "options", "send", "counts", "mark", "delete", "notes"),
    [
        (KEEP, {}, ["b", "c", "d"], (1, 2, 1), ["x"], [], []),
        (KEEP, {"delete_orphans": True}, ["b", "c", "d"], (1, 2, 1), [], ["x", "y"], []),
        (KEEP, {"resend_all": True}, ["a", "b", "c", "d"], (1, 3, 0), ["x"], [], []),
        (REBUILD, {}, ["a", "b", "c", "d"], (1, 2, 1), [], ["x", "y"], [REBUILD.reason, "2 orphan row(s) not"]),
        (
            REBUILD,
            {"delete_orphans": True},
            ["a", "b", "c", "d"],
            (1, 2, 1),
            [],
            ["x", "y"],
            [REBUILD.reason, "2 orphan"],
        ),
    ],
)
def test_plan_export(
    schema: SchemaDecision,
    options: dict[str, bool],
    send: list[str],
    counts: tuple[int, int, int],
    mark: list[str],
    delete: list[str],
    notes: list[str],
) -> None:
    todo = plan.plan_export(CACHE, MIRROR, schema, **options)
    assert ids(todo.send) == send
    assert (todo.inserted, todo.updated, todo.unchanged) == counts and todo.processed == len(CACHE)
    assert todo.orphans == ["x", "y"]
    assert (todo.mark_orphaned, todo.delete) == (mark, delete)
    assert len(todo.notes) == len(notes) and all(n.startswith(w) for n, w in zip(todo.notes, notes, strict=True))


def test_an_older_mirror_gives_ids_only_so_every_activity_it_holds_is_updated() -> None:
    older = plan.schema_action(state(meta={"schema_version": "0"}), full_refresh=False)
    todo = plan.plan_export(CACHE, [StoredRow("a", None, False), StoredRow("z", None, False)], older)
    assert (todo.inserted, todo.updated, todo.unchanged) == (3, 1, 0)
    assert ids(todo.send) == ["a", "b", "c", "d"] and todo.delete == ["z"]
    assert todo.notes[0].startswith("mirror schema version 0 is older")


def test_a_first_export_creates_without_a_note() -> None:
    todo = plan.plan_export(CACHE, [], CREATE)
    assert ids(todo.send) == ["a", "b", "c", "d"] and todo.inserted == 4 and todo.notes == []


def test_a_refused_mirror_has_no_plan() -> None:
    refused = plan.schema_action(state(meta=None), full_refresh=False)
    with pytest.raises(ValueError, match="did not create"):
        plan.plan_export(CACHE, MIRROR, refused)


# ---- properties ----------------------------------------------------------------------------

_ids = st.sampled_from([f"id{i}" for i in range(12)])
_hashes = st.sampled_from(["h1", "h2", "h3"])
_cache = st.dictionaries(_ids, _hashes, max_size=10).map(lambda d: [(k, k.encode(), h) for k, h in d.items()])
_mirror = st.dictionaries(_ids, st.tuples(st.none() | _hashes, st.booleans()), max_size=10).map(
    lambda d: [StoredRow(k, h, o) for k, (h, o) in d.items()]
)
_schemas = st.sampled_from([KEEP, CREATE, REBUILD])


def _applied(todo: ExportPlan[bytes], stored: list[StoredRow]) -> list[StoredRow]:
    """What the write path leaves in a mirror, modelled on dicts."""
    rows = {} if todo.schema.builds_tables else {r.id: r for r in stored}
    for aid, _payload, digest in todo.send:
        rows[aid] = StoredRow(aid, digest, False)
    if not todo.schema.builds_tables:
        for aid in todo.delete:
            del rows[aid]
        for aid in todo.mark_orphaned:
            rows[aid] = StoredRow(aid, rows[aid].content_hash, True)
    return list(rows.values())


@settings(max_examples=300, deadline=None)
@given(_cache, _mirror, _schemas, st.booleans(), st.booleans())
def test_every_activity_and_every_row_is_decided_once(
    cache: list[tuple[str, bytes, str]], stored: list[StoredRow], schema: SchemaDecision, delete: bool, resend: bool
) -> None:
    todo = plan.plan_export(cache, stored, schema, delete_orphans=delete, resend_all=resend)
    in_cache = {i for i, _p, _h in cache}
    assert todo.processed == len(cache)
    assert set(todo.orphans) == {r.id for r in stored} - in_cache
    assert set(todo.delete) | set(todo.mark_orphaned) <= set(todo.orphans)
    assert not set(todo.delete) & set(todo.mark_orphaned)
    held = {r.id: r for r in stored}
    for aid, _payload, digest in cache:
        row = held.get(aid)
        current = row is not None and row.content_hash == digest and not row.orphaned
        sent = aid in ids(todo.send)
        assert sent == (todo.schema.builds_tables or resend or not current), (aid, row, digest)


@settings(max_examples=300, deadline=None)
@given(_cache, _mirror, _schemas, st.booleans())
def test_after_applying_a_plan_the_next_one_has_nothing_to_do(
    cache: list[tuple[str, bytes, str]], stored: list[StoredRow], schema: SchemaDecision, delete: bool
) -> None:
    after = _applied(plan.plan_export(cache, stored, schema, delete_orphans=delete), stored)
    again = plan.plan_export(cache, after, KEEP, delete_orphans=delete)
    assert again.send == [] and again.mark_orphaned == [] and again.delete == []
    assert again.unchanged == len(cache)
    # What is left besides the cache's activities is exactly the orphans, all of them marked.
    extra = {r.id for r in after} - {i for i, _p, _h in cache}
    assert set(again.orphans) == extra and all(r.orphaned for r in after if r.id in extra)


# ---- the cache index stands in for the cache only when it is current ---------------------------


@pytest.fixture
def home(tmp_path: Path) -> Paths:
    paths = make_home(tmp_path / "home")
    save_cache(paths, [make_activity(i) for i in range(3)])
    return paths


def test_current_index_is_the_index_only_while_it_describes_the_file(home: Paths) -> None:
    index = current_index(home)
    assert index is not None and index == read_index(home) and index.activities == 3
    assert core.cache_fingerprint(home) == (index.sha256, 3)
    assert trusted_lineage(home) is not None
    st_ = home.cache.stat()
    os.utime(home.cache, ns=(st_.st_atime_ns, st_.st_mtime_ns + 1))  # touched: same bytes, another mtime
    assert current_index(home) is None and core.cache_fingerprint(home) is None and trusted_lineage(home) is None
    os.utime(home.cache, ns=(st_.st_atime_ns, st_.st_mtime_ns))
    assert current_index(home) == index
    with home.cache.open("ab") as f:  # grown, mtime put back: the size still tells
        f.write(b" ")
    os.utime(home.cache, ns=(st_.st_atime_ns, st_.st_mtime_ns))
    assert current_index(home) is None and core.cache_fingerprint(home) is None
    home.cache.unlink()
    assert current_index(home) is None


def test_status_reads_the_cache_only_when_the_index_is_not_current(home: Paths, monkeypatch) -> None:
    store = Store(home, Config())
    real_read = Store.read
    reads: list[int] = []

    def counting_read(self: Store, *a: object, **kw: object):  # type: ignore[no-untyped-def]
        reads.append(1)
        return real_read(self, *a, **kw)

    monkeypatch.setattr(Store, "read", counting_read)
    fast = status(store)
    assert reads == [] and fast["size_bytes"] == home.cache.stat().st_size
    st_ = home.cache.stat()
    os.utime(home.cache, ns=(st_.st_atime_ns, st_.st_mtime_ns + 1))
    slow = status(store)
    assert reads == [1]
    assert {k: v for k, v in slow.items()} == fast  # the same summary, from a parse
