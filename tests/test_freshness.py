"""``freshness.decide`` and the manifest reconcile built on it: state may spare a read only while the cache holds its records."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from healthcache.freshness import decide, needs_check
from healthcache.importers.manifest import FileEntry, Manifest, MemberEntry, SessionEntry, reconcile

KEYS = st.sets(st.sampled_from([f"gpx:{i}" for i in range(8)] + ["fit:a", "strava:1", "garmin:2"]), max_size=6)


@pytest.mark.parametrize(
    ("unchanged", "keys", "held", "opened", "why"),
    [
        (False, ["gpx:1"], None, True, "new or changed"),
        (False, ["gpx:1"], {"gpx:1"}, True, "new or changed"),
        (True, ["gpx:1"], None, False, "the one the state was written for"),
        (True, ["gpx:1", "gpx:2"], {"gpx:1", "gpx:2", "x:9"}, False, "still holds every record"),
        (True, ["gpx:1", "gpx:2"], {"gpx:1"}, True, "1 of the 2 record(s) it gave are not in the cache"),
        (True, ["gpx:1"], set(), True, "read again"),
        (True, [], set(), False, "still holds every record"),  # a skipped file gave nothing to lose
    ],
)
def test_decide_table(unchanged: bool, keys: list[str], held: set[str] | None, opened: bool, why: str) -> None:
    d = decide(unchanged, keys, held)
    assert d.open is opened
    assert why in d.reason


@pytest.mark.parametrize(
    ("state", "trusted", "check"),
    [("a", "a", False), ("a", "b", True), (None, "a", True), ("a", None, True), (None, None, True)],
)
def test_needs_check_table(state: str | None, trusted: str | None, check: bool) -> None:
    assert needs_check(state, trusted) is check


@given(unchanged=st.booleans(), keys=KEYS, held=KEYS)
def test_decide_properties(unchanged: bool, keys: set[str], held: set[str]) -> None:
    d = decide(unchanged, keys, held)
    # skipped only when unchanged and every record it gave is held
    assert (not d.open) == (unchanged and keys <= held)
    assert d.missing == (len(keys - held) if unchanged else 0)
    # the trusted fast path never opens an unchanged input; a changed input is always opened
    assert decide(unchanged, keys, None).open is not unchanged
    # holding more never makes a read necessary that holding less did not
    assert not decide(unchanged, keys, held | keys).open or not unchanged


def _entry(keys: list[str], **kw: object) -> FileEntry:
    return FileEntry(size=10, mtime_ns=1, status="imported", sha256="s", keys=keys, **kw)  # type: ignore[arg-type]


def test_reconcile_forgets_files_whose_records_are_gone_and_keeps_held_members() -> None:
    m = Manifest(
        files={
            "/a.gpx": _entry(["gpx:a"]),
            "/b.gpx": _entry(["gpx:b"]),
            "/bad.fit": FileEntry(size=1, mtime_ns=1, status="failed", reason="corrupt"),
            "/export.zip": _entry(
                ["fit:1", "fit:2"],
                head_tail="h",
                members={
                    "a/1.fit": MemberEntry(crc=1, size=1, status="imported", keys=["fit:1"]),
                    "a/2.fit": MemberEntry(crc=2, size=2, status="imported", keys=["fit:2"]),
                    "inner.zip": MemberEntry(crc=3, size=3, status="imported"),
                    "inner.zip/3.fit": MemberEntry(crc=4, size=4, status="imported", keys=["fit:3"]),
                },
            ),
        },
        sessions={"1": SessionEntry(file="/p.json", status="imported", keys=["polar:1"])},
    )
    found = reconcile(m, {"gpx:a", "fit:1", "fit:2"})
    assert (found.checked, found.stale) == (5, 3)
    assert set(m.files) == {"/a.gpx", "/bad.fit", "/export.zip"}
    z = m.files["/export.zip"]
    # the archive is opened again (no stat, no digest) but its held members are not read again
    assert (z.size, z.head_tail, z.sha256) == (-1, None, None)
    assert set(z.members) == {"a/1.fit", "a/2.fit"} and z.keys == ["fit:1", "fit:2"]
    assert m.sessions == {}


@given(per_file=st.lists(KEYS, max_size=6), held=KEYS)
def test_reconcile_properties(per_file: list[set[str]], held: set[str]) -> None:
    m = Manifest(files={f"/f{i}": _entry(sorted(k)) for i, k in enumerate(per_file)})
    found = reconcile(m, held)
    assert found.checked == len(per_file)
    kept = {f"/f{i}" for i, k in enumerate(per_file) if k <= held}
    assert set(m.files) == kept and found.stale == len(per_file) - len(kept)
    assert all(set(e.keys) <= held for e in m.files.values())
