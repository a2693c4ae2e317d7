"""Real FIT binaries for tests and samples, written by the fit-tool encoder.

Each builder returns the bytes of a complete FIT file (header, definitions,
data, CRC) so the importer is exercised on what a device would write, not on
a hand-made structure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from fit_tool.fit_file_builder import FitFileBuilder
from fit_tool.profile.messages.activity_message import ActivityMessage
from fit_tool.profile.messages.device_info_message import DeviceInfoMessage
from fit_tool.profile.messages.event_message import EventMessage
from fit_tool.profile.messages.file_id_message import FileIdMessage
from fit_tool.profile.messages.lap_message import LapMessage
from fit_tool.profile.messages.record_message import RecordMessage
from fit_tool.profile.messages.session_message import SessionMessage
from fit_tool.profile.messages.workout_message import WorkoutMessage
from fit_tool.profile.profile_type import (
    Activity,
    Event,
    EventType,
    FileType,
    Manufacturer,
    Sport,
    SubSport,
)


def _ms(dt: datetime) -> int:
    return round(dt.timestamp() * 1000)


@dataclass
class Sample:
    """One record: seconds since the start, cumulative metres, heart rate (or None)."""

    t: float
    distance: float | None
    hr: int | None = None


@dataclass
class Leg:
    """One session of an activity (a multisport file has several)."""

    sport: Sport
    start: datetime
    samples: Sequence[Sample]
    sub_sport: SubSport = SubSport.GENERIC
    calories: int | None = None
    ascent: int | None = None
    summary_hr: bool = True
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def elapsed(self) -> float:
        return self.samples[-1].t - self.samples[0].t if self.samples else 0.0

    @property
    def distance(self) -> float | None:
        ds = [s.distance for s in self.samples if s.distance is not None]
        return max(ds) - min(ds) if ds else None


def constant_pace_run(
    start: datetime, km: float, pace_s_per_km: float, hr_per_km: Sequence[int], step_s: float = 5.0
) -> list[Sample]:
    """Samples of a run at constant pace whose heart rate is constant within each kilometre."""
    total_s = km * pace_s_per_km
    out: list[Sample] = []
    t = 0.0
    while t <= total_s + 1e-9:
        d = t / pace_s_per_km * 1000.0
        k = min(int(d // 1000), len(hr_per_km) - 1)
        if d > 0 and d % 1000 == 0:
            k = int(d // 1000) - 1  # a sample exactly on a boundary closes its kilometre
        out.append(Sample(t=t, distance=d, hr=hr_per_km[k]))
        t += step_s
    if out[-1].t < total_s:
        out.append(Sample(t=total_s, distance=km * 1000.0, hr=hr_per_km[-1]))
    return out


def _file_id(builder: FitFileBuilder, ftype: FileType, created: datetime, serial: int, product: int) -> None:
    m = FileIdMessage()
    m.type = ftype
    m.manufacturer = Manufacturer.GARMIN.value
    m.product = product
    m.time_created = _ms(created)
    m.serial_number = serial
    builder.add(m)


def activity(
    legs: Sequence[Leg],
    *,
    serial: int = 0x1234ABCD,
    product: int = 3113,  # a Forerunner 945 product id
    local_offset_s: int | None = 7200,
) -> bytes:
    """An activity file: file_id, device_info, events, records, one lap and one session per leg, activity."""
    builder = FitFileBuilder(auto_define=True, min_string_size=50)
    first = legs[0].start
    _file_id(builder, FileType.ACTIVITY, first, serial, product)
    di = DeviceInfoMessage()
    di.timestamp = _ms(first)
    di.manufacturer = Manufacturer.GARMIN.value
    di.product = product
    di.serial_number = serial
    di.device_index = 0
    builder.add(di)
    total_timer = 0.0
    end = first
    for leg in legs:
        ev = EventMessage()
        ev.event = Event.TIMER
        ev.event_type = EventType.START
        ev.timestamp = _ms(leg.start)
        builder.add(ev)
        for s in leg.samples:
            r = RecordMessage()
            r.timestamp = _ms(leg.start + timedelta(seconds=s.t))
            if s.distance is not None:
                r.distance = s.distance
            if s.hr is not None:
                r.heart_rate = s.hr
            builder.add(r)
        leg_end = leg.start + timedelta(seconds=leg.elapsed)
        ev = EventMessage()
        ev.event = Event.TIMER
        ev.event_type = EventType.STOP_ALL
        ev.timestamp = _ms(leg_end)
        builder.add(ev)
        hrs = [s.hr for s in leg.samples if s.hr is not None]
        for kind in (LapMessage, SessionMessage):
            m = kind()
            m.timestamp = _ms(leg_end)
            m.start_time = _ms(leg.start)
            m.sport = leg.sport
            m.sub_sport = leg.sub_sport
            m.total_elapsed_time = leg.elapsed
            m.total_timer_time = leg.elapsed
            if leg.distance is not None:
                m.total_distance = leg.distance
            if leg.calories is not None:
                m.total_calories = leg.calories
            if leg.ascent is not None:
                m.total_ascent = leg.ascent
            if hrs and leg.summary_hr:
                m.avg_heart_rate = round(sum(hrs) / len(hrs))
                m.max_heart_rate = max(hrs)
            if kind is SessionMessage:
                m.first_lap_index = 0
                m.num_laps = 1
            for k, v in leg.extra.items():
                setattr(m, k, v)
            builder.add(m)
        total_timer += leg.elapsed
        end = max(end, leg_end)
    act = ActivityMessage()
    act.timestamp = _ms(end)
    act.total_timer_time = total_timer
    act.num_sessions = len(legs)
    act.type = Activity.MANUAL
    act.event = Event.ACTIVITY
    act.event_type = EventType.STOP
    if local_offset_s is not None:
        act.local_timestamp = round(end.timestamp() + local_offset_s - 631065600)  # FIT epoch seconds
    builder.add(act)
    return builder.build().to_bytes()


def workout_file(name: str = "Intervals") -> bytes:
    """A planned workout: a valid FIT file that is not an activity."""
    builder = FitFileBuilder(auto_define=True, min_string_size=50)
    _file_id(builder, FileType.WORKOUT, datetime(2024, 1, 1, tzinfo=UTC), 1, 1)
    w = WorkoutMessage()
    w.sport = Sport.RUNNING
    w.workout_name = name
    w.num_valid_steps = 0
    builder.add(w)
    return builder.build().to_bytes()


def run(
    start: datetime,
    km: float = 5.0,
    pace_s_per_km: float = 300.0,
    hr_per_km: Sequence[int] = (130, 140, 150, 160, 170),
    **kwargs: object,
) -> bytes:
    """A single-session run with heart rate: the common case."""
    samples = constant_pace_run(start, km, pace_s_per_km, hr_per_km)
    leg = Leg(sport=Sport.RUNNING, start=start, samples=samples, calories=int(km * 70), ascent=12)
    return activity([leg], **kwargs)  # type: ignore[arg-type]
