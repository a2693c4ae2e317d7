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
from zoneinfo import ZoneInfo

import msgspec
import pytest

from healthcache import zone
from healthcache.config import Config, DisplayConfig, Paths, from_document
from healthcache.errors import ConfigError
from healthcache.model.records import Cache
from healthcache.store import Store
from tests.conftest import Run

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


GPX = """<?xml version="1.0" encoding="UTF-8"?>
<gpx version="1.1" creator="test" xmlns="http://www.topografix.com/GPX/1/1">
 <trk><name>GPS ride</name><type>cycling</type><trkseg>POINTS</trkseg></trk>
</gpx>
"""
