"""The import pipeline's registries and decisions: formats as data, one open-or-skip rule, one normaliser each."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from healthcache import normalise
from healthcache.importers import garmin_export, strava_export
from healthcache.importers.base import ImportFailed
from healthcache.importers.decide import Facts, decide

# ---------------------------------------------------------------- normalisers


@pytest.mark.parametrize(
    ("module", "source", "payload"),
    [
        (garmin_export, "garmin", {"activityId": 1, "startTimeGMT": "2024-05-01 06:00:00"}),
        (strava_export, "strava", {"id": 1, "start_date": "2024-05-01T06:00:00Z", "type": "Run"}),
    ],
)
def test_an_export_has_no_fallback_normaliser(
    monkeypatch: pytest.MonkeyPatch, module: object, source: str, payload: dict[str, object]
) -> None:
    """An account export's records are the API normaliser's: with that one gone, the export fails loudly
    instead of quietly falling back to a mapping of its own that sync and rebuild would never use."""
    monkeypatch.setitem(normalise.NORMALISERS, source, "healthcache.nowhere:normalise_activity")
    with pytest.raises((ImportFailed, ImportError)):
        module.to_record(payload)  # type: ignore[attr-defined]


# ---------------------------------------------------------------- one open-or-skip decision


@pytest.mark.parametrize(
    ("facts", "opened", "why", "says"),
    [
        (Facts(), True, "new", "new or changed"),
        (Facts(unchanged=True), False, "stat", "unchanged since it was imported"),
        (Facts(unchanged=True, skipped_because="a planned route"), False, "stat", "skipped: a planned route"),
        (Facts(unchanged=True, failed_before=True), True, "new", "failed before"),
        (Facts(unchanged=True, full=True), True, "full", "full import"),
        (Facts(session="8069", unchanged=True), False, "session", "Polar session 8069 already imported"),
        (Facts(session="8069", full=True), True, "full", "full import"),
        (Facts(companion="a workout route"), False, "companion", "a workout route"),
        (Facts(companion="a workout route", full=True), False, "companion", "a workout route"),
        (Facts(same_digest=True), False, "content", "only its time stamp moved"),
        (Facts(same_digest=True, streamed=True), False, "content", "first and last MiB"),
        (Facts(same_digest=True, failed_before=True), True, "new", "failed before"),
        (Facts(same_digest=False, twin="/a/run.fit"), False, "twin", "same content as /a/run.fit"),
        (Facts(twin="/a/export.zip", streamed=True), False, "twin", "the same export as /a/export.zip"),
        (Facts(twin="/a/run.fit", full=True), True, "full", "full import"),
    ],
)
def test_open_or_skip(facts: Facts, opened: bool, why: str, says: str) -> None:
    verdict = decide(facts)
    assert (verdict.open, verdict.why) == (opened, why)
    assert says in verdict.reason


# ---------------------------------------------------------------- a toy format through the registry alone


def read_toy(item: object) -> object:
    """A toy format: 'TOYFMT1 <id> <start ISO> <metres>'."""
    from healthcache.importers.base import Extracted, validated

    _, ident, start, metres = item.bytes().decode().split()  # type: ignore[attr-defined]
    return Extracted(records=[validated(normalise_toy({"id": ident, "start": start, "m": float(metres)}))], kind="toy")


def normalise_toy(raw: dict[str, object]) -> object:
    from healthcache.model.records import SourceRecord

    return SourceRecord(
        source="toy",
        source_id=str(raw["id"]),
        start_time=str(raw["start"]),
        sport="running",
        distance_m=raw["m"],
        raw=raw,
    )  # type: ignore[arg-type]


def test_a_new_format_needs_one_registry_entry(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from healthcache.config import Paths
    from healthcache.importers import formats
    from healthcache.importers.manifest import Manifest
    from healthcache.importers.run import run_import
    from healthcache.normalise import from_raw
    from healthcache.store import Store

    monkeypatch.setattr(formats, "FORMATS", dict(formats.FORMATS))  # the registration ends with the test
    formats.register(
        formats.Format(
            kind="toy",
            group="toy",
            read=read_toy,
            source="toy",
            normalise="tests.test_import_registry:normalise_toy",
            head=lambda head: head.startswith(b"TOYFMT1 "),
            suffixes=(".toy",),
            claim="a toy file",
        )
    )
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.toy").write_bytes(b"TOYFMT1 42 2024-05-01T06:00:00Z 5000\n")
    (tmp_path / "in" / "b.toy").write_bytes(b"not a toy at all\n")
    store = Store(Paths(tmp_path / "home"))
    report = run_import(store, [tmp_path / "in"])
    by_name = {Path(f.path).name: f for f in report.files}
    assert by_name["a.toy"].status == "imported" and by_name["a.toy"].kind == "toy"
    assert by_name["b.toy"].status == "failed" and by_name["b.toy"].reason == "not a toy file; the content is text"
    (act,) = store.read().cache.activities
    assert act.source_ids == {"toy": "42"} and act.distance_m == 5000
    manifest = store.paths.sync_state / "import_toy.json"
    entry = msgspec.json.decode(manifest.read_bytes(), type=Manifest).files[str(tmp_path / "in" / "a.toy")]
    assert entry.status == "imported" and entry.keys == ["toy:42"]
    assert from_raw("toy", act.raw["toy"]).source_id == "42"  # rebuild and unlink find its normaliser
    again = run_import(store, [tmp_path / "in"])
    assert {Path(f.path).name: f.opened for f in again.files}["a.toy"] is False
