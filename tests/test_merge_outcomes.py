"""Each merge outcome says what happened to the record (issue 14 point 1).

``joined_closest``: joined the closest match that could take it, the others it
matched stay apart; ``kept_apart``: added as a new activity because the
activities its ids name cannot take it; ``conflict``: not stored, its id already
names an activity holding another record of its source.  Counted apart, listed
without --verbose, each under its own key in the JSON (no ``ambiguous``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import msgspec
import pytest

from healthcache.cli.render import render_merge_report
from healthcache.merge import OUTCOMES, merge
from tests.fakes import payloads
from tests.test_merge import LATER, MIN, grouping, run
from tests.test_merge_payloads import T0, fit, garmin, strava, use_test_normalisers

if TYPE_CHECKING:
    from tests.fakes.fixtures import Workspace

pytest_plugins = ["tests.fakes.fixtures"]


@pytest.mark.usefixtures(use_test_normalisers.__name__)
def test_an_id_naming_a_taken_activity_then_the_heuristic_is_joined_closest() -> None:
    """strava:223 names garmin:111, which holds strava:222: it joins the FIT activity it measures as."""
    cache, _ = run([garmin(111), strava(222, T0)], [fit(T0 + 2 * MIN, distance=9000)])
    new, report = merge(cache, [strava(223, T0 + 2 * MIN, distance=9000, external_id="garmin_push_111")], now=LATER)
    (entry,) = report.entries
    assert entry.outcome == "joined_closest" and entry.rule == "heuristic"
    assert entry.activity_id is not None and entry.activity_id.startswith("fit:")
    assert entry.candidates == ["garmin:111"] and "already has strava:222" in (entry.detail or "")
    assert grouping(new) == {frozenset({"garmin:111", "strava:222"}), frozenset({entry.activity_id, "strava:223"})}
    assert report.summary()["joined_closest"] == 1 and report.summary()["merged"] == 0
    assert report.changed


@pytest.mark.usefixtures(use_test_normalisers.__name__)
def test_a_record_whose_named_activity_cannot_take_it_is_kept_apart() -> None:
    cache, _ = run([garmin(111), strava(222, T0)])
    new, report = merge(cache, [strava(223, T0 + 2 * MIN, distance=9000, external_id="garmin_push_111")], now=LATER)
    (entry,) = report.entries
    assert (entry.outcome, entry.activity_id, entry.candidates) == ("kept_apart", "strava:223", ["garmin:111"])
    assert report.summary()["kept_apart"] == 1 and report.summary()["new"] == 0
    assert len(new.activities) == 2 and report.changed
    text = render_merge_report(report)  # listed without --verbose: it may ask for a link
    assert (
        text.splitlines()[0]
        == "0 new, 0 updated, 0 merged as duplicates, 0 unchanged, 1 added apart from activities they name"
    )
    assert "kept_apart strava:223; candidates: garmin:111" in text


@pytest.mark.usefixtures(use_test_normalisers.__name__)
def test_an_id_aliasing_an_activity_with_another_record_of_its_source_is_a_conflict_not_stored() -> None:
    """A file written before (or edited) where strava:222 is an alias of an activity now holding strava:333."""
    base, _ = run([garmin(111), strava(333, T0)])
    (act,) = base.activities
    stale = msgspec.structs.replace(act, aliases=["strava:222"])
    cache = msgspec.structs.replace(base, activities=[stale])
    new, report = merge(cache, [strava(222, T0 + 30 * MIN, distance=5000)], now=LATER)
    (entry,) = report.entries
    assert (entry.outcome, entry.activity_id, entry.candidates) == ("conflict", "garmin:111", ["garmin:111"])
    assert "already has strava:333; not stored" in (entry.detail or "")
    assert new == cache and not report.changed  # nothing stored, nothing changed
    text = render_merge_report(report)
    assert text.splitlines()[0].endswith(", 0 unchanged, 1 not stored (conflicts)")
    assert "conflict   strava:222 -> garmin:111" in text


def test_the_summary_has_a_key_per_outcome_and_no_ambiguous() -> None:
    _, report = merge(run()[0], [], now=LATER)
    summary = report.as_dict()["summary"]
    assert list(summary) == list(OUTCOMES)
    assert {"joined_closest", "kept_apart", "conflict"} <= set(summary) and "ambiguous" not in summary


def test_sync_counts_and_prints_a_record_kept_apart(ws: Workspace) -> None:
    """Through the real clients: Strava holds two uploads naming one Garmin activity."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    gid = 14_900_000_001
    ws.garmin.add(payloads.garmin_activity(gid, start))
    ws.strava.add(
        payloads.strava_activity(11_800_000_001, start + timedelta(seconds=1), external_id=f"garmin_push_{gid}")
    )
    ws.strava.add(
        payloads.strava_activity(
            11_800_000_002, start + timedelta(minutes=3), elapsed=1200, external_id=f"garmin_push_{gid}"
        )
    )
    ws.login_garmin()
    ws.login_strava()
    assert ws.cli("sync", "--source", "garmin").code == 0
    dry = ws.cli("sync", "--source", "strava", "--dry-run")
    assert dry.code == 0, dry.err
    assert f"would merge  strava:11800000001 into garmin:{gid}" in dry.out
    assert f"would add    strava:11800000002 (apart from garmin:{gid}: they cannot take it)" in dry.out
    r = ws.cli("sync", "--source", "strava", "--json")
    assert r.code == 0, r.err
    (step,) = json.loads(r.out)["steps"]
    assert (step["merged"], step["kept_apart"], step["new"], step["conflict"]) == (1, 1, 0, 0)
    assert "ambiguous" not in step
    assert {c["outcome"] for c in step["changes"]} == {"merged", "kept_apart"}
    assert len(ws.cache().activities) == 2
    again = ws.cli("sync", "--source", "strava", "--force")
    assert again.code == 0 and "kept-apart" not in again.out  # seen before: not merged again


def test_the_readme_says_what_each_outcome_means() -> None:
    from pathlib import Path

    text = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## One workout, one record\n", 1)[1].split("\n## ", 1)[0]
    assert all(f"`{outcome}`:" in section for outcome in OUTCOMES)
    assert "ambiguous" not in section
    words = " ".join(section.split())
    assert "Each join is recorded on the activity" in words
    assert "`healthcache dupes --explain` and `show` print that recorded decision" in words
