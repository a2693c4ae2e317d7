"""Times in the user's time zone (issue 15 point 3): ``[display] timezone``, else the machine's zone.

Human output shows bookkeeping stamps and zone-less starts in that zone; JSON and
the cache stay UTC byte for byte; local days (stats, the report) fall back to it;
Strava export rows, which carry no zone, get their local start from it.  Every
test that depends on a zone sets it (the config, or ``TZ`` in a child process),
so the machine's own zone never decides a result.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "samples"))

import generate as samples

from healthcache import zone
from healthcache.config import Config, DisplayConfig, Paths, from_document
from healthcache.errors import ConfigError
from healthcache.model.records import Cache
from healthcache.store import Store
from tests import fitgen
from tests.conftest import CORPUS, Run

BERLIN = ZoneInfo("Europe/Berlin")
LA = ZoneInfo("America/Los_Angeles")


def set_zone(home: Path, name: str) -> None:
    (home / "healthcache.toml").write_text(f'[display]\ntimezone = "{name}"\n', encoding="utf-8")


def files(home: Path) -> dict[str, bytes]:
    return {str(p.relative_to(home)): p.read_bytes() for p in sorted(home.rglob("*")) if p.is_file()}


def child(code: str, **env: str) -> str:
    """Run ``code`` in a fresh interpreter (tzlocal reads TZ once per process) and return its stdout."""
    full = {k: v for k, v in os.environ.items() if k not in ("TZ", "PYTHONTZPATH")} | env
    done = subprocess.run([sys.executable, "-c", code], env=full, capture_output=True, text=True, check=True)
    return done.stdout.strip()


# --------------------------------------------------------------------------- 1. the zone


def test_display_timezone_is_read_from_the_file(tmp_path: Path) -> None:
    set_zone(tmp_path, "America/Los_Angeles")
    config = Config.load(Paths(tmp_path), environ={})
    assert config.display == DisplayConfig(timezone="America/Los_Angeles")
    assert zone.display_zone(config.display.timezone) == LA


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Europe/Berlinn", 'did you mean "Europe/Berlin"?'),
        ("europe/berlin", 'did you mean "Europe/Berlin"?'),
        ("CEST", 'write it like "Europe/Berlin"'),
        ("../etc/passwd", "is not a known IANA time zone name"),
        ("Europe", "is not a known IANA time zone name"),
        ("", "is not a known IANA time zone name"),
    ],
)
def test_a_wrong_zone_name_is_a_config_error_naming_the_key(name: str, expected: str) -> None:
    with pytest.raises(ConfigError) as exc:
        from_document({"display": {"timezone": name}}, "healthcache.toml", {})
    message = str(exc.value)
    assert message.startswith(f'healthcache.toml: [display] timezone "{name}" ')
    assert expected in message


def test_a_wrong_zone_is_refused_before_an_import_reads_or_writes(
    run: Run, store: Store, seeded: Callable[[int], Cache], tmp_path: Path
) -> None:
    seeded(3)
    gpx = ride(tmp_path, "2024-05-12T04:30:00Z")
    set_zone(store.paths.home, "Mars/Olympus_Mons")
    before = files(store.paths.home)
    result = run("import", str(gpx))
    assert result.exit_code == 1, result.output
    assert str(store.paths.config_file) in result.output
    assert '[display] timezone "Mars/Olympus_Mons" is not a known IANA time zone name' in result.output
    assert files(store.paths.home) == before


def test_the_default_is_the_machines_iana_zone_with_daylight_saving() -> None:
    code = (
        "from datetime import datetime, UTC; from healthcache import zone; z = zone.display_zone(None); "
        "print(zone.zone_key(z), datetime(2026, 1, 15, 12, tzinfo=UTC).astimezone(z).strftime('%H %Z'), "
        "datetime(2026, 7, 15, 12, tzinfo=UTC).astimezone(z).strftime('%H %Z'))"
    )
    assert child(code, TZ="America/Los_Angeles") == "America/Los_Angeles 04 PST 05 PDT"
    assert child(code, TZ="Europe/Berlin") == "Europe/Berlin 13 CET 14 CEST"


def test_a_posix_tz_the_database_does_not_name_still_gives_a_zone() -> None:
    code = (
        "from datetime import datetime, UTC; from healthcache import zone; "
        "print(datetime(2026, 1, 15, 12, tzinfo=UTC).astimezone(zone.display_zone(None)).strftime('%H'))"
    )
    assert child(code, TZ="XST-3") == "15"  # POSIX: 3 hours east of UTC


def test_without_any_time_zone_database_the_message_says_what_to_install() -> None:
    code = (
        "import sys; sys.modules['tzdata'] = None; from healthcache import zone; "
        "print(zone.problem('Europe/Berlin')); print(zone.zone_key(zone.display_zone(None)))"
    )
    out = child(code, PYTHONTZPATH=os.pathsep.join(["/nonexistent"]), TZ="Europe/Berlin").splitlines()
    assert out[0] == "no time zone database was found on this machine (install the tzdata package: pip install tzdata)"
    assert out[1] == "None"  # a bare offset: the machine's clock still gives one


def test_the_python_tzdata_package_serves_where_the_system_has_none() -> None:
    """What Windows (and a slim container) rely on: tzlocal brings tzdata there, and zoneinfo reads it."""
    pytest.importorskip("tzdata")
    code = "from healthcache import zone; print(zone.problem('Europe/Berlin'), zone.show_stamp('2026-11-30T07:44:49Z', zone.display_zone('Europe/Berlin')))"
    assert child(code, PYTHONTZPATH="/nonexistent") == "None 2026-11-30 08:44 CET"


def test_stamps_are_shown_in_the_zone_with_its_abbreviation() -> None:
    assert zone.show_stamp("2026-11-30T07:44:49Z", BERLIN) == "2026-11-30 08:44 CET"
    assert zone.show_stamp("2026-07-30T07:44:49.123456Z", BERLIN) == "2026-07-30 09:44 CEST"
    assert zone.show_stamp("2026-11-30T07:44:49Z", LA, seconds=True) == "2026-11-29 23:44:49 PST"
    assert zone.show_stamp("2026-11-30T07:44:49Z", BERLIN, label=False) == "2026-11-30 08:44"
    assert zone.show_stamp("not a stamp", BERLIN) == "not a stamp"


def test_a_recorded_local_start_stays_and_a_utc_start_is_converted() -> None:
    assert zone.show_start("2024-05-13 07:30", LA) == "2024-05-13 07:30"
    assert zone.show_start("2024-05-12 04:30Z", LA) == "2024-05-11 21:30"
    assert zone.local_day("2024-05-12T04:30:00Z", None, LA) == date(2024, 5, 11)
    assert zone.local_day("2024-05-12T04:30:00Z", "2024-05-12T06:30:00", LA) == date(2024, 5, 12)
    assert zone.wall_clock(datetime(2024, 5, 12, 4, 30, tzinfo=UTC), LA) == "2024-05-11T21:30:00"


# --------------------------------------------------------------------------- 2. human output in that zone


SAMPLES = Path(__file__).resolve().parents[1] / "healthcache" / "samples" / "data"


@pytest.fixture
def sample(run: Run, home: Path) -> Path:
    """The bundled samples imported for real (the hike is a GPX: no recorded local time)."""
    result = run("import", str(SAMPLES))
    assert result.exit_code == 0, result.output
    return home


def stored(home: Path) -> Cache:
    return Store(Paths(home)).read().cache


def in_zone(stamp: str, where: ZoneInfo) -> str:
    """What a person should read for a cache stamp, computed here independently of healthcache.zone."""
    moment = datetime.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).astimezone(where)
    return moment.strftime("%Y-%m-%d %H:%M ") + str(moment.tzname())


def test_list_and_show_give_zone_less_starts_and_bookkeeping_in_the_display_zone(run: Run, sample: Path) -> None:
    set_zone(sample, "Asia/Tokyo")
    listed = run("list").output
    hike = next(line for line in listed.splitlines() if "Hike" in line)
    assert " 2024-05-18 17:00 " in hike  # 08:00 UTC, a GPX with no local time: 17:00 in Tokyo
    assert "Z " not in listed.replace("sources:", "")
    jog = next(line for line in listed.splitlines() if "Recovery jog" in line)
    assert " 2024-05-13 07:30 " in jog  # Garmin recorded the wall clock where it was run: shown as it is

    act = next(a for a in stored(sample).activities if a.name == "Hike")
    shown = run("show", act.id).output.splitlines()
    assert shown[1].startswith("2024-05-18 17:00  hiking  Hike")
    tokyo = ZoneInfo("Asia/Tokyo")
    assert shown[3] == f"first seen {in_zone(act.first_seen_at, tokyo)}, updated {in_zone(act.updated_at, tokyo)}"
    assert in_zone(act.updated_at, tokyo).endswith(" JST")


def test_status_and_log_show_bookkeeping_in_the_display_zone(run: Run, sample: Path) -> None:
    set_zone(sample, "America/Los_Angeles")
    cache = stored(sample)
    status = run("status").output
    assert f"updated {in_zone(cache.updated_at, LA)}" in status, status
    assert cache.updated_at not in status
    log = run("log").output.splitlines()
    assert f"import {SAMPLES}" in log[0], log[0]
    first = run("log", "--json").output
    started = msgspec.json.decode(first)["runs"][0]["started"]
    expected = datetime.fromisoformat(started.replace("Z", "+00:00")).astimezone(LA)
    assert log[0].startswith(expected.strftime("%Y-%m-%d %H:%M:%S ") + str(expected.tzname()))


def test_json_output_is_the_same_whatever_the_display_zone(run: Run, sample: Path) -> None:
    act = next(a for a in stored(sample).activities if a.name == "Hike")
    commands = [("list",), ("show", act.id), ("status",), ("log",), ("diff", "baseline", "current")]
    run("verify", "--baseline")
    outputs: dict[str, list[str]] = {}
    for name in ("UTC", "America/Los_Angeles", "Asia/Kathmandu"):
        set_zone(sample, name)
        outputs[name] = [run(*c, "--json").output for c in commands]
    assert outputs["UTC"] == outputs["America/Los_Angeles"] == outputs["Asia/Kathmandu"]
    assert '"start": "2024-05-18 08:00Z"' in outputs["UTC"][0]  # list --json: the UTC form, as before


# --------------------------------------------------------------------------- 3. days and weeks


def ride(tmp_path: Path, start: str, name: str = "ride.gpx") -> Path:
    """A real GPX file (no local time in it) starting at the UTC moment ``start``."""
    folder = tmp_path / "rides"
    folder.mkdir(exist_ok=True)
    t0 = datetime.fromisoformat(start.replace("Z", "+00:00"))
    points = "".join(
        f'<trkpt lat="{34 + i / 100:.4f}" lon="-118.0000"><time>{(t0 + timedelta(minutes=5 * i)).strftime("%Y-%m-%dT%H:%M:%SZ")}</time></trkpt>'
        for i in range(3)
    )
    path = folder / name
    path.write_text(GPX.replace("POINTS", points))
    return path


def test_an_evening_ride_in_los_angeles_counts_in_its_own_day_and_week(run: Run, home: Path, tmp_path: Path) -> None:
    saturday = ride(tmp_path, "2024-05-12T04:30:00Z", "saturday.gpx")  # Saturday 11 May, 21:30 in LA
    sunday = ride(tmp_path, "2024-05-13T04:30:00Z", "sunday.gpx")  # Sunday 12 May, 21:30 in LA (Monday in UTC)
    assert run("import", str(saturday), str(sunday)).exit_code == 0
    set_zone(home, "America/Los_Angeles")
    weeks = msgspec.json.decode(run("stats", "--json").output)
    assert [(w["period"], w["count"]) for w in weeks] == [("2024-W19", 2)]  # UTC would put Sunday's in W20
    on_saturday = msgspec.json.decode(run("list", "--since", "2024-05-11", "--until", "2024-05-11", "--json").output)
    assert [r["start"] for r in on_saturday] == ["2024-05-12 04:30Z"]
    set_zone(home, "UTC")
    weeks = msgspec.json.decode(run("stats", "--json").output)
    assert sorted((w["period"], w["count"]) for w in weeks) == [("2024-W19", 1), ("2024-W20", 1)]


def test_the_report_buckets_by_the_display_zone(home: Path, tmp_path: Path, run: Run) -> None:
    from healthcache.report import data as rd

    assert run("import", str(ride(tmp_path, "2024-05-13T04:30:00Z"))).exit_code == 0
    acts = stored(home).activities
    assert rd.local_day(acts[0], LA) == date(2024, 5, 12)
    set_zone(home, "America/Los_Angeles")
    report = rd.collect(Store(Paths(home)))
    assert report.first_day == report.last_day == "2024-05-12"
    assert [r["week"] for r in report.weekly] == ["2024-05-06"]  # the Monday of Sunday's week, not the next one
    assert report.monthly[0]["month"] == "2024-05"


# --------------------------------------------------------------------------- 4. Strava export rows


CSV_HEADER = "Activity ID,Activity Date,Activity Name,Activity Type,Elapsed Time,Distance,Moving Time\n"


def strava_csv(tmp_path: Path, *rows: str) -> Path:
    folder = tmp_path / "strava"
    folder.mkdir(exist_ok=True)
    path = folder / "activities.csv"
    path.write_text(CSV_HEADER + "".join(f"{r}\n" for r in rows))
    return path


EVENING = '777001,"May 13, 2024, 4:30:00 AM",Evening ride,Ride,3600,30.00,3500'  # Sunday 21:30 in LA


def test_a_strava_csv_row_gets_its_local_start_from_the_zone(run: Run, home: Path, tmp_path: Path) -> None:
    set_zone(home, "America/Los_Angeles")
    result = run("import", str(strava_csv(tmp_path, EVENING)))
    assert result.exit_code == 0, result.output
    (act,) = stored(home).activities
    assert act.start_time == "2024-05-13T04:30:00Z"  # Activity Date is UTC: kept as it is
    assert act.start_time_local == "2024-05-12T21:30:00"
    assert act.timezone is None  # the row does not say where it was: no zone is claimed
    assert act.raw["strava"]["start_date_local_zone"] == "America/Los_Angeles"
    assert run("show", act.id).output.splitlines()[1].startswith("2024-05-12 21:30  cycling  Evening ride")
    weeks = msgspec.json.decode(run("stats", "--json").output)
    assert [w["period"] for w in weeks] == ["2024-W19"]
    # The stored local start belongs to the record: re-deriving it (rebuild) needs no zone and finds nothing to do.
    assert "0 changed" in run("rebuild", "--dry-run").output


def test_the_zone_reaches_the_decode_workers(
    run: Run, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Decoded in a worker process (the pool started at once), the row gets the parent's zone."""
    from healthcache.importers import pool

    monkeypatch.setattr(pool, "START_AFTER_S", 0.0)
    set_zone(home, "Asia/Kolkata")
    csv = strava_csv(tmp_path, EVENING)
    for i in range(3):  # more files than one, so the pool is used
        (csv.parent / f"ride{i}.gpx").write_text(ride(tmp_path, f"2024-05-0{i + 1}T06:00:00Z", f"r{i}.gpx").read_text())
    result = run("import", "--jobs", "2", "--json", str(csv.parent))
    assert result.exit_code == 0, result.output
    assert msgspec.json.decode(result.output)["jobs"] == 2
    act = next(a for a in stored(home).activities if "strava" in a.source_ids)
    assert act.start_time_local == "2024-05-13T10:00:00"  # 04:30 UTC in India (+05:30)


def test_without_a_zone_the_reader_invents_no_local_time() -> None:
    from healthcache.importers import strava_export

    (rec,) = strava_export.read_activities_csv((CSV_HEADER + EVENING + "\n").encode(), "activities.csv").records
    assert rec.start_time_local is None and "start_date_local" not in rec.raw


def test_an_unchanged_second_import_reads_nothing(run: Run, home: Path, tmp_path: Path) -> None:
    set_zone(home, "America/Los_Angeles")
    csv = strava_csv(tmp_path, EVENING)
    assert run("import", str(csv)).exit_code == 0
    before = files(home)
    again = msgspec.json.decode(run("import", "--json", str(csv)).output)
    assert [f["status"] for f in again["files"]] == ["unchanged"]
    assert {k: v for k, v in files(home).items() if "history" not in k} == {
        k: v for k, v in before.items() if "history" not in k
    }


def test_a_recorded_local_time_wins_over_the_zone_derived_one(run: Run, home: Path, tmp_path: Path) -> None:
    """The same workout as a FIT file (the watch recorded UTC+2) and a Strava CSV row (LA assumed): one
    activity, whose local start is the watch's; so with a Garmin export's summary."""
    start = datetime(2024, 5, 13, 4, 30, tzinfo=UTC)
    folder = tmp_path / "both"
    folder.mkdir()
    (folder / "watch.fit").write_bytes(fitgen.run(start, km=5.0, local_offset_s=7200))
    strava_csv(tmp_path, '777002,"May 13, 2024, 4:30:00 AM",Morning run,Run,1500,5.00,1500')
    (folder / "activities.csv").write_bytes((tmp_path / "strava" / "activities.csv").read_bytes())
    set_zone(home, "America/Los_Angeles")
    assert run("import", str(folder)).exit_code == 0
    (act,) = stored(home).activities
    assert set(act.source_ids) == {"fit", "strava"}
    assert act.start_time_local == "2024-05-13T06:30:00"  # the watch's wall clock, not LA's 21:30 the day before

    w = samples.WORKOUTS[0]  # in the Garmin export (summary: recorded local UTC+2) and the Strava export
    garmin = tmp_path / "garmin.zip"
    garmin.write_bytes(samples.garmin_export_zip([w]))
    strava = strava_csv(tmp_path, _csv_row(w))
    assert run("import", str(garmin), str(strava)).exit_code == 0
    joined = next(a for a in stored(home).activities if a.name == w.name)
    assert {"garmin", "strava"} <= set(joined.source_ids)
    assert joined.start_time_local == (w.start + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S")


def _csv_row(w: Any) -> str:
    return f'{w.strava_id},"{w.start:%b %-d, %Y, %-I:%M:%S %p}",{w.name},Run,{w.seconds:.0f},{w.km:.2f},{w.seconds:.0f}'


@pytest.mark.parametrize("order", ["csv first", "polar first", "together"])
def test_a_recorded_local_time_wins_even_from_a_source_ranked_after_strava(
    run: Run, home: Path, tmp_path: Path, order: str
) -> None:
    """Polar ranks after Strava in [merge] preference, but its watch recorded the wall clock (UTC+2):
    the assumed one (Los Angeles) only fills a gap, in whichever order the two arrive, and rebuild agrees."""
    w = samples.WORKOUTS[1]
    name, data = samples.polar_session(w, 9001)
    polar = tmp_path / "polar" / name
    polar.parent.mkdir()
    polar.write_bytes(data)
    csv = strava_csv(tmp_path, _csv_row(w))
    set_zone(home, "America/Los_Angeles")
    batches = {"csv first": [[csv], [polar]], "polar first": [[polar], [csv]], "together": [[csv, polar]]}[order]
    for batch in batches:
        assert run("import", *map(str, batch)).exit_code == 0
    (act,) = stored(home).activities
    assert set(act.source_ids) == {"polar", "strava"}
    assert act.start_time_local == (w.start + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S")
    assert "0 changed" in run("rebuild", "--dry-run").output
    shown = run("show", act.id).output
    assert "start_time_local" in shown and "rebuild would take it" not in shown


def test_with_strava_preferred_a_recorded_local_time_still_wins(run: Run, home: Path, tmp_path: Path) -> None:
    start = datetime(2024, 5, 13, 4, 30, tzinfo=UTC)
    folder = tmp_path / "both"
    folder.mkdir()
    (folder / "watch.fit").write_bytes(fitgen.run(start, km=5.0, local_offset_s=7200))
    (folder / "activities.csv").write_text(
        CSV_HEADER + '777003,"May 13, 2024, 4:30:00 AM",Morning run,Run,1500,5.00,1500\n'
    )
    (home / "healthcache.toml").write_text(
        '[display]\ntimezone = "America/Los_Angeles"\n[merge]\npreference = ["strava", "fit", "garmin"]\n'
    )
    assert run("import", str(folder)).exit_code == 0
    (act,) = stored(home).activities
    assert act.start_time_local == "2024-05-13T06:30:00"
    assert act.name == "Morning run"  # strava still provides what it read


@pytest.mark.skipif(not (CORPUS / "strava_export").is_dir(), reason="the shared corpus is not on this machine")
@pytest.mark.parametrize("name", sorted(p.name for p in (CORPUS / "strava_export").glob("*.csv")))
def test_real_strava_exports_import_with_local_times(run: Run, home: Path, tmp_path: Path, name: str) -> None:
    set_zone(home, "Europe/Berlin")
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "activities.csv").write_bytes((CORPUS / "strava_export" / name).read_bytes())
    result = run("import", "--json", str(folder))
    assert result.exit_code == 0, result.output
    acts = stored(home).activities
    assert acts
    for act in acts:
        moment = datetime.fromisoformat(act.start_time.replace("Z", "+00:00"))
        assert act.start_time_local == moment.astimezone(BERLIN).strftime("%Y-%m-%dT%H:%M:%S")


GPX = """<?xml version="1.0" encoding="UTF-8"?>
<gpx version="1.1" creator="test" xmlns="http://www.topografix.com/GPX/1/1">
 <trk><name>GPS ride</name><type>cycling</type><trkseg>POINTS</trkseg></trk>
</gpx>
"""
