"""The API sources' registry: a third source is one object and one registry line, nothing else.

The toy source below lives in this test module only.  It is registered with one
``SOURCES`` entry (as a source's folder would be) and then synced, re-synced,
backfilled and re-derived through the real ``sync``, ``backfill_hr`` and
``normalise.normaliser``: if any of them still asked "garmin or strava?", the
toy source would be refused, skipped or mis-read.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from healthcache import normalise
from healthcache.config import Config, Paths
from healthcache.model.records import HRSplit, SourceRecord
from healthcache.sources import registry
from healthcache.sources.backfill import BackfillOptions, backfill_hr
from healthcache.sources.login import LoginResult, Prompter
from healthcache.sources.protocol import Source, get_source
from healthcache.sources.sync import SyncOptions, sync
from healthcache.store import Store

NOW = datetime.now(UTC).replace(microsecond=0)
SERVED: list[dict[str, Any]] = []  # what the toy service lists
ASKED: list[str] = []  # what the toy sessions were asked, in order


def toy_payload(ident: int, hours_ago: float, *, bpm: int | None = 140) -> dict[str, Any]:
    start = (NOW - timedelta(hours=hours_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"toy_id": ident, "began": start, "metres": 5000.0 + ident, "seconds": 1800.0, "bpm": bpm}


@dataclass
class ToySession:
    """A resumed toy login: one page of what the toy service serves."""

    name: str = "toy"
    asked: list[str] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return len(self.asked)

    def pages(self, start: datetime, end: datetime) -> Iterator[list[Any]]:
        self.asked.append("list")
        ASKED.append("list")
        yield [json.loads(json.dumps(p)) for p in SERVED]

    def hr_splits(self, source_id: str, raw: Any = None) -> list[HRSplit]:
        self.asked.append(f"splits {source_id}")
        ASKED.append(f"splits {source_id}")
        return [HRSplit(km=1, avg_hr=float(raw["bpm"]), duration_s=360.0)]

    def close(self) -> None:
        ASKED.append("close")


class Toy:
    """The third source: configured when its token file exists."""

    name = "toy"
    id_key = "toy_id"

    def is_configured(self, paths: Paths) -> bool:
        return (paths.credentials / "toy.json").exists()

    def resume(self, paths: Paths, config: Config, *, clock: Callable[[], datetime]) -> ToySession:
        ASKED.append("resume")
        return ToySession()

    def normalise(self, raw: Any) -> SourceRecord:
        if not isinstance(raw, dict) or "toy_id" not in raw:
            raise ValueError("toy_id: missing")
        return SourceRecord(
            source="toy",
            source_id=str(raw["toy_id"]),
            start_time=raw["began"],
            sport="running",
            distance_m=raw["metres"],
            duration_s=raw["seconds"],
            avg_hr=raw["bpm"],
            raw=raw,
        )

    def has_hr(self, raw: Any) -> bool:
        return isinstance(raw, dict) and raw.get("bpm") is not None

    def login(self, paths: Paths, config: Config, request: Any, prompter: Prompter) -> LoginResult:
        path = paths.credentials / "toy.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"token": prompter.ask("Toy token", secret=True)}))
        return LoginResult("toy", "ok", path, "Logged in to Toy.")


TOY = Toy()


@dataclass
class Asker:
    answers: dict[str, str]

    def ask(self, label: str, *, secret: bool = False) -> str | None:
        return self.answers.get(label)

    def say(self, text: str) -> None: ...

    def show_url(self, url: str) -> None: ...

    def warn(self, text: str) -> None: ...


@pytest.fixture
def toy(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Store]:
    """The toy source registered by its one line, and an empty workspace."""
    monkeypatch.setitem(registry.SOURCES, "toy", "tests.test_source_registry:TOY")
    SERVED.clear()
    ASKED.clear()
    home = tmp_path / "home"
    home.mkdir()
    yield Store(Paths(home))


def test_the_toy_source_satisfies_the_protocol(toy: Store) -> None:
    source: Source = get_source("toy")  # what every caller gets: typed as the protocol
    assert source is TOY
    assert "toy" in registry.names()
    assert registry.names()[:2] == ("garmin", "strava")


def test_a_third_source_syncs_through_the_registry_alone(toy: Store) -> None:
    paths = toy.paths
    # Not set up yet: reported as such, no session opened.
    first = sync(toy, SyncOptions(sources=("toy",)))
    assert [s.status for s in first.steps] == ["not_configured"]
    assert "healthcache auth toy" in (first.steps[0].reason or "")
    assert ASKED == []

    # Logged in through its own login steps (what ``auth`` calls), then synced.
    result = get_source("toy").login(paths, toy.config, None, Asker({"Toy token": "t0k"}))
    assert result.status == "ok" and TOY.is_configured(paths)
    SERVED[:] = [toy_payload(1, 30), toy_payload(2, 6), {"began": "broken"}]
    second = sync(toy, SyncOptions(sources=("toy",), force=True))
    step = second.steps[0]
    assert (step.source, step.new, step.skipped, step.requests) == ("toy", 2, 1, 1)
    assert "toy:?: unusable payload: toy_id: missing" in step.errors[0]
    cache = toy.read().cache
    assert sorted(a.source_ids["toy"] for a in cache.activities) == ["1", "2"]
    assert all(a.raw["toy"]["toy_id"] in (1, 2) for a in cache.activities)
    assert ASKED == ["resume", "list", "close"]

    # Nothing new: the state (digests of what was merged) says so, and the cache is not rewritten.
    SERVED[:] = [toy_payload(1, 30), toy_payload(2, 6)]
    before = paths.cache.stat().st_mtime_ns
    third = sync(toy, SyncOptions(sources=("toy",), force=True))
    assert (third.steps[0].status, third.steps[0].unchanged, third.steps[0].new) == ("ok", 2, 0)
    assert paths.cache.stat().st_mtime_ns == before
    assert json.loads(paths.state_file("toy").read_text())["last_success"]


def test_a_third_source_is_backfilled_and_re_derived_through_the_registry(toy: Store) -> None:
    TOY.login(toy.paths, toy.config, None, Asker({"Toy token": "t0k"}))
    SERVED[:] = [toy_payload(1, 30), toy_payload(2, 6, bpm=None)]
    assert sync(toy, SyncOptions(sources=("toy",))).exit_code == 0
    ASKED.clear()

    report = backfill_hr(toy, BackfillOptions(sources=("toy",)))
    assert (report.candidates, report.filled, report.exit_code) == (1, 1, 0)  # only the one with HR
    assert ASKED == ["resume", "splits 1", "close"]
    held = {a.source_ids["toy"]: a for a in toy.read().cache.activities}
    assert held["1"].hr_splits == [HRSplit(km=1, avg_hr=140.0, duration_s=360.0)]
    assert held["2"].hr_splits is None

    # rebuild, show and unlink re-derive records through the normaliser table: the toy's is there too.
    assert normalise.from_raw("toy", held["1"].raw["toy"]).distance_m == 5001.0


@pytest.mark.parametrize("name", ["garmin", "strava"])
def test_each_real_source_is_named_as_its_payloads_name_their_records(name: str) -> None:
    """A source package names itself without importing its payload readers (a skipped sync loads
    neither); the name it gives must be the one its normalised records carry."""
    import importlib

    payloads = importlib.import_module(f"healthcache.sources.{name}.payloads")
    assert get_source(name).name == payloads.SOURCE == name
