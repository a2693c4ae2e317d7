"""FIT import on real FIT binaries written by the fit-tool encoder (tests/fitgen.py)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from fit_tool.profile.profile_type import Sport, SubSport

from healthcache.importers import fit
from healthcache.importers.base import ImportFailed, NotAnActivity, validated
from tests import fitgen

START = datetime(2024, 5, 1, 6, 30, tzinfo=UTC)
HR_PER_KM = (130, 140, 150, 160, 170)


def read(data: bytes, name: str = "run.fit"):
    ex = fit.read_fit(data, name)
    assert len(ex.records) == 1
    return ex.records[0], ex


def test_run_summary_and_per_km_hr_splits() -> None:
    data = fitgen.run(START, km=5, pace_s_per_km=300, hr_per_km=HR_PER_KM)
    samples = fitgen.constant_pace_run(START, 5, 300, HR_PER_KM)
    rec, ex = read(data)
    assert ex.warnings == []
    assert rec.source == "fit" and rec.source_id == hashlib.sha256(data).hexdigest()
    assert rec.start_time == "2024-05-01T06:30:00Z"
    assert rec.start_time_local == "2024-05-01T08:30:00"  # activity.local_timestamp is UTC+2
    assert rec.sport == "running" and rec.sport_raw == "running"
    assert rec.distance_m == 5000.0
    assert rec.duration_s == 1500.0 and rec.moving_time_s == 1500.0
    assert rec.calories == 350.0 and rec.elevation_gain_m == 12.0
    hrs = [s.hr for s in samples]
    assert rec.avg_hr == round(sum(hrs) / len(hrs))  # the session's own summary, as the device wrote it
    assert rec.max_hr == 170
    assert rec.device == "garmin fr945"
    assert rec.hr_splits is not None
    assert [s.km for s in rec.hr_splits] == [1, 2, 3, 4, 5]
    assert [s.duration_s for s in rec.hr_splits] == [300.0] * 5
    assert [s.avg_hr for s in rec.hr_splits] == [float(h) for h in HR_PER_KM]
    assert [s.max_hr for s in rec.hr_splits] == [float(h) for h in HR_PER_KM]


def test_partial_last_kilometre_is_kept() -> None:
    data = fitgen.run(START, km=5.5, pace_s_per_km=360, hr_per_km=(120, 125, 130, 135, 140, 150))
    rec, _ = read(data)
    assert rec.hr_splits is not None and len(rec.hr_splits) == 6
    assert rec.hr_splits[-1].km == 6
    assert rec.hr_splits[-1].duration_s == pytest.approx(180.0)
    assert rec.hr_splits[-1].avg_hr == 150.0
    assert rec.distance_m == 5500.0


def test_multisport_file_is_one_workout_with_every_session_kept() -> None:
    legs = []
    t = START
    plan = [
        (Sport.SWIMMING, SubSport.OPEN_WATER, 1500, 1800),
        (Sport.TRANSITION, SubSport.GENERIC, 100, 120),
        (Sport.CYCLING, SubSport.ROAD, 40000, 4200),
        (Sport.TRANSITION, SubSport.GENERIC, 50, 60),
        (Sport.RUNNING, SubSport.GENERIC, 10000, 2700),
    ]
    for sport, sub, metres, secs in plan:
        samples = [fitgen.Sample(t=x, distance=metres * x / secs, hr=150) for x in range(0, secs + 1, 30)]
        legs.append(fitgen.Leg(sport=sport, sub_sport=sub, start=t, samples=samples, calories=secs // 10))
        t += timedelta(seconds=secs)
    rec, _ = read(fitgen.activity(legs))
    assert rec.sport == "multisport"
    assert rec.start_time == "2024-05-01T06:30:00Z"
    assert rec.distance_m == pytest.approx(sum(p[2] for p in plan))
    assert rec.duration_s == pytest.approx(sum(p[3] for p in plan))
    assert rec.calories == pytest.approx(sum(p[3] // 10 for p in plan))
    assert [s["sport"] for s in rec.raw["sessions"]] == ["swimming", "transition", "cycling", "transition", "running"]
    assert rec.hr_splits is None  # kilometres across swim, bike and run mean nothing


def test_chained_copy_of_the_same_activity_counts_once() -> None:
    one = fitgen.run(START)
    rec1, _ = read(one)
    rec2, _ = read(one + one)
    assert len(rec2.raw["sessions"]) == 1
    assert (rec2.start_time, rec2.distance_m, rec2.duration_s) == (rec1.start_time, rec1.distance_m, rec1.duration_s)
    assert rec2.source_id != rec1.source_id  # a different file is a different source id


def test_activity_chained_with_a_settings_like_file_is_imported() -> None:
    rec, _ = read(fitgen.run(START) + fitgen.workout_file())
    assert rec.sport == "running" and rec.distance_m == 5000.0


def test_planned_workout_is_not_an_activity() -> None:
    with pytest.raises(NotAnActivity, match="not an activity"):
        fit.read_fit(fitgen.workout_file(), "plan.fit")


def test_truncated_recording_is_summarised_from_its_records() -> None:
    data = fitgen.run(START, km=5, hr_per_km=HR_PER_KM)
    cut = data[: int(len(data) * 0.6)]  # the session message at the end is lost
    rec, ex = read(cut)
    assert any("no session summary" in w for w in ex.warnings)
    assert any("damaged" in w for w in ex.warnings)
    assert rec.start_time == "2024-05-01T06:30:00Z"
    assert 0 < rec.distance_m < 5000  # type: ignore[operator]
    assert rec.hr_splits is not None and rec.hr_splits[0].avg_hr == 130.0


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not a fit file at all, just text",
        fitgen.run(START)[:14] + b"\xff" * 64,  # a valid header, then garbage
        fitgen.run(START)[:20],  # cut inside the first definition
    ],
)
def test_corrupt_fit_fails(data: bytes) -> None:
    with pytest.raises(ImportFailed):
        fit.read_fit(data, "bad.fit")


def test_normalise_raw_rebuilds_the_record_from_its_payload() -> None:
    rec, _ = read(fitgen.run(START))
    assert validated(fit.normalise_raw(rec.raw)) == rec
    from healthcache.normalise import from_raw

    assert from_raw("fit", rec.raw) == fit.normalise_raw(rec.raw)


def test_raw_payload_is_a_compact_summary_not_the_track() -> None:
    data = fitgen.run(START, km=10, hr_per_km=tuple(range(120, 170, 5)))
    rec, _ = read(data)
    import msgspec

    assert len(msgspec.json.encode(rec.raw)) < 2500  # vs ~600 records in the file
    assert set(rec.raw) >= {"sha256", "file", "sessions", "device"}
