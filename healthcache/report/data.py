"""What the HTML report shows, computed from the cache and the workspace files.

Pure functions over a ``Cache`` (plus listings of backups and state documents)
return plain rows, so every figure is tested without a browser or a plotting
library; ``collect`` is the one place that reads files.
"""

from __future__ import annotations

import math
import os
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

import msgspec

from healthcache import backup, guard, zone
from healthcache.errors import CorruptInput
from healthcache.model.records import Activity, Cache, record_keys
from healthcache.model.sports import family
from healthcache.store import Store, read_baseline
from healthcache.timeutil import utc_iso
from healthcache.verify import verify

# How many backups are read to draw the records per source over time: reading all of a long history is slow.
BACKUP_SAMPLES = 12
WEEKS = 52
# A long run, for the HR drift chart: a run with per-km HR over at least this many kilometres.
LONG_RUN_KM = 15
LOST_SHOWN = 50

Row = dict[str, Any]


class _Keyed(msgspec.Struct, kw_only=True):
    """An activity or tombstone of a backup, as much as the history needs: its record keys."""

    id: str
    start_time: str = ""
    sport: str = ""
    aliases: list[str] = []
    source_ids: dict[str, str] = {}

    def record_keys(self) -> set[str]:
        return record_keys(self)  # the keys the guard counts


class Snapshot(msgspec.Struct, kw_only=True):
    """A backup read for its keys only: unknown fields are skipped, several times faster than a full load."""

    activities: list[_Keyed]
    tombstones: list[_Keyed] = []


_snapshot = msgspec.json.Decoder(Snapshot)


def read_snapshot(path: Path) -> Snapshot:
    """A backup's record keys; a file that does not parse raises ``ValueError`` or ``OSError``."""
    try:
        return _snapshot.decode(backup.read_bytes(path))
    except (msgspec.DecodeError, msgspec.ValidationError, CorruptInput) as exc:
        raise ValueError(str(exc)) from exc


def snapshot_counts(snap: Snapshot) -> tuple[int, Counter[str]]:
    """Records (live and tombstoned) in total and per source: ``guard.record_counts`` for a snapshot."""
    keys: set[str] = set()
    for item in (*snap.activities, *snap.tombstones):
        keys.update(item.record_keys())
    return len(keys), Counter(k.split(":", 1)[0] for k in keys)


@dataclass
class ReportData:
    """Everything the page renders; plain values only."""

    generated_at: str
    home: str
    activities: int
    first_day: str | None
    last_day: str | None
    verify: Row
    baseline: list[Row]
    baseline_recorded_at: str | None
    records_over_time: list[Row]
    backups_sampled: int
    backups_unreadable: list[str]
    hr_coverage: list[Row]
    steps: list[Row]
    backups: list[Row]
    lost: list[Row]
    lost_total: int
    deleted: list[Row]
    weekly: list[Row]
    weeks: list[str]
    weekly_note: str
    monthly: list[Row]
    hr_trend: list[Row]
    drift: list[Row]
    long_runs: int


def local_day(act: Activity, where: tzinfo = UTC) -> date:
    """The calendar day the person lived the workout on: its recorded local date, else its start in
    ``where`` (the display zone), so an evening workout west of Greenwich stays in its own day and week."""
    return zone.local_day(act.start_time, act.start_time_local, where)


def week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


def weekly_distance(
    activities: Sequence[Activity], now: datetime, weeks: int = WEEKS, where: tzinfo = UTC
) -> tuple[list[Row], list[str], str]:
    """Kilometres per week (Monday) and sport family over the ``weeks`` weeks ending this week.

    When nothing happened in that window (an old history, a break) the window
    ends at the newest activity instead, and the note says so, rather than
    drawing an empty chart.  Returns the rows, every week of the window (Mondays), and the note.
    """
    end = week_start(now.astimezone(where).date())
    note = f"the {weeks} weeks to {end + timedelta(days=6)}"
    days = [local_day(a, where) for a in activities]
    if days and not any(end - timedelta(weeks=weeks - 1) <= d <= end + timedelta(days=6) for d in days):
        end = week_start(max(days))
        note = f"no activity in the last {weeks} weeks: the {weeks} weeks to the newest activity ({max(days)})"
    first = end - timedelta(weeks=weeks - 1)
    km: dict[tuple[date, str], float] = defaultdict(float)
    for act, day in zip(activities, days, strict=True):
        wk = week_start(day)
        if first <= wk <= end and act.distance_m:
            km[(wk, family(act.sport))] += act.distance_m / 1000
    rows = [{"week": wk.isoformat(), "sport": sport, "km": round(v, 2)} for (wk, sport), v in sorted(km.items())]
    return rows, [(first + timedelta(weeks=i)).isoformat() for i in range(weeks)], note


def monthly_totals(activities: Iterable[Activity], where: tzinfo = UTC) -> list[Row]:
    """Per calendar month and sport family: count, kilometres, hours (moving time when known)."""
    acc: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
    for act in activities:
        cell = acc[(local_day(act, where).strftime("%Y-%m"), family(act.sport))]
        cell[0] += 1
        cell[1] += (act.distance_m or 0) / 1000
        cell[2] += (act.moving_time_s or act.duration_s or 0) / 3600
    return [
        {"month": month, "sport": sport, "count": int(n), "km": round(km, 1), "hours": round(h, 1)}
        for (month, sport), (n, km, h) in sorted(acc.items())
    ]


def hr_trend(activities: Iterable[Activity], where: tzinfo = UTC) -> list[Row]:
    """Mean of the activities' average HR per month and sport family (only activities that have one)."""
    acc: dict[tuple[str, str], list[float]] = defaultdict(list)
    for act in activities:
        if act.avg_hr is not None:
            acc[(local_day(act, where).strftime("%Y-%m"), family(act.sport))].append(act.avg_hr)
    return [
        {"month": month, "sport": sport, "mean_hr": round(sum(v) / len(v), 1), "n": len(v)}
        for (month, sport), v in sorted(acc.items())
    ]


def hr_drift(activities: Iterable[Activity], min_km: int = LONG_RUN_KM, where: tzinfo = UTC) -> tuple[list[Row], int]:
    """Mean HR of each kilometre over long runs, per year: how HR climbs as a long run goes on.

    A long run is a run (any running sport) with per-km HR for at least
    ``min_km`` kilometres; returns the rows and how many runs qualified.
    """
    acc: dict[tuple[int, int], list[float]] = defaultdict(list)
    runs = 0
    for act in activities:
        if family(act.sport) != "running" or not act.hr_splits:
            continue
        # Full kilometres only: the last split may be a short, noisy remainder.
        splits = [s for s in act.hr_splits if s.avg_hr is not None and s.duration_s > 0]
        full = [s for s in splits if s.km <= int((act.distance_m or 0) // 1000)] or splits
        if len(full) < min_km:
            continue
        runs += 1
        year = local_day(act, where).year
        for s in full:
            assert s.avg_hr is not None
            acc[(year, s.km)].append(s.avg_hr)
    rows = [
        {"year": str(year), "km": km, "mean_hr": round(sum(v) / len(v), 1), "runs": len(v)}
        for (year, km), v in sorted(acc.items())
    ]
    return rows, runs


def hr_coverage(activities: Iterable[Activity], where: tzinfo = UTC) -> list[Row]:
    """Per year: how many activities have an average HR and per-km HR splits."""
    acc: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])
    for act in activities:
        cell = acc[local_day(act, where).year]
        cell[0] += 1
        cell[1] += act.avg_hr is not None
        cell[2] += bool(act.hr_splits)
    return [
        {
            "year": str(year),
            "activities": n,
            "with_hr": hr,
            "with_splits": sp,
            "pct_hr": round(100 * hr / n, 1),
            "pct_splits": round(100 * sp / n, 1),
        }
        for year, (n, hr, sp) in sorted(acc.items())
    ]


def baseline_rows(cache: Cache, baseline: guard.Baseline | None) -> list[Row]:
    """The baseline's counts beside today's; ``ok`` is False where now is below it."""
    if baseline is None:
        return []
    now = guard.make_baseline(cache, sha256=None, recorded_at="")
    pairs = [
        ("activities", baseline.activities, now.activities),
        ("records", baseline.records, now.records),
        ("with avg HR", baseline.with_hr, now.with_hr),
        ("with HR splits", baseline.with_hr_splits, now.with_hr_splits),
    ]
    sources = sorted(set(baseline.per_source) | set(now.per_source))
    pairs += [(f"records from {s}", baseline.per_source.get(s, 0), now.per_source.get(s, 0)) for s in sources]
    # Only record counts are guarded; activities may fall when a merge joins two into one.
    guarded = {"records"} | {f"records from {s}" for s in baseline.per_source}
    return [
        {"what": what, "baseline": b, "now": n, "delta": n - b, "ok": not (what in guarded and n < b)}
        for what, b, n in pairs
    ]


def sample(items: Sequence[backup.BackupInfo], n: int) -> list[backup.BackupInfo]:
    """At most ``n`` backups spread evenly over the history, always the oldest and the newest."""
    if len(items) <= n:
        return list(items)
    if n <= 1:
        return list(items[:n])
    step = (len(items) - 1) / (n - 1)
    return [items[round(i * step)] for i in range(n)]


def lost_records(current: Cache, older: Iterable[tuple[str, Snapshot]]) -> list[Row]:
    """Records some backup (``older``: newest first) held that are neither in the cache now nor deleted.

    The guard refuses such saves; one that shows up here came past it
    (``restore --force``, or a file edited by hand) and is worth a look.
    """
    present: set[str] = set()
    for keyed in (current.activities, current.tombstones):
        for item in keyed:
            present.update(item.record_keys())
    lost: dict[str, Row] = {}
    for name, snap in older:
        held: set[str] = set()
        for act in snap.activities:
            held.update(act.record_keys())
        if held <= present:
            continue  # the usual case, decided with one set operation
        for act in snap.activities:
            for key in sorted(act.record_keys() - present):
                lost.setdefault(
                    key, {"key": key, "start_time": act.start_time, "sport": act.sport, "last_seen_in": name}
                )
    return sorted(lost.values(), key=lambda r: (r["start_time"], r["key"]))


def step_rows(states: dict[str, Any]) -> list[Row]:
    """The last run of each step, from the state documents in ``sync_state/``.

    Sources record their last success, attempt and error; importers keep a
    manifest whose newest entry is their last run and whose failed files are
    the inputs they refused.
    """
    rows: list[Row] = []
    for name, doc in sorted(states.items()):
        if not isinstance(doc, dict):
            rows.append({"step": name, "last": None, "error": "unreadable state file", "detail": ""})
            continue
        files = doc.get("files")
        if isinstance(files, dict):
            entries = [e for e in files.values() if isinstance(e, dict)]
            status = Counter(str(e.get("status")) for e in entries)
            failed = sorted(
                f"{Path(p).name}: {e.get('reason') or 'failed'}"
                for p, e in files.items()
                if isinstance(e, dict) and e.get("status") == "failed"
            )
            stamps = [str(e["at"]) for e in entries if e.get("at")]
            rows.append(
                {
                    "step": name.replace("_", " ", 1),
                    "last": max(stamps) if stamps else None,
                    "error": "; ".join(failed[:5]) + (f"; and {len(failed) - 5} more" if len(failed) > 5 else ""),
                    "detail": ", ".join(f"{n} {s}" for s, n in sorted(status.items())) + " files",
                }
            )
            continue
        detail = []
        if doc.get("last_attempt") and doc.get("last_attempt") != doc.get("last_success"):
            detail.append(f"last attempt {doc['last_attempt']}")
        if doc.get("rate_limited_until"):
            detail.append(f"rate limited until {doc['rate_limited_until']}")
        if isinstance(doc.get("no_hr"), dict):
            detail.append(f"{len(doc['no_hr'])} activities without HR samples")
        rows.append(
            {
                "step": name,
                "last": doc.get("last_success") or doc.get("last_attempt"),
                "error": doc.get("last_error") or "",
                "detail": ", ".join(detail),
            }
        )
    return rows


def read_states(folder: Path) -> dict[str, Any]:
    """Every state document but the cache index (the save row shows it), decoded loosely."""
    out: dict[str, Any] = {}
    if not folder.is_dir():
        return out
    for f in sorted(folder.glob("*.json")):
        if f.name == "cache-index.json":
            continue
        try:
            out[f.stem] = msgspec.json.decode(f.read_bytes())
        except (OSError, msgspec.DecodeError):
            out[f.stem] = None
    return out


def backup_rows(items: Sequence[backup.BackupInfo], cache_inode: int | None) -> list[Row]:
    """Backups newest first with their sizes; a hard link to the cache file costs no extra space."""
    rows = []
    for info in items:
        try:
            st = info.path.stat()
        except OSError:
            continue
        rows.append(
            {
                "name": info.name,
                "when": utc_iso(info.when),
                "bytes": st.st_size,
                "corrupt": info.corrupt,
                "shared_with_cache": cache_inode is not None and st.st_ino == cache_inode,
                "inode": st.st_ino,
            }
        )
    return rows


def collect(store: Store, *, backup_samples: int = BACKUP_SAMPLES) -> ReportData:
    """Read the workspace (read-only, no lock: saves replace files by rename) and compute every figure."""
    paths = store.paths
    now = store.clock()
    loaded = store.read()
    cache = loaded.cache
    acts = cache.activities
    report = verify(store)
    verify_row: Row = {
        "ok": not report.problems,
        "activities": report.activities,
        "records": report.records,
        "sha256": report.sha256,
        "problems": [str(p) for p in report.problems],
    }
    try:
        baseline = read_baseline(paths)
    except CorruptInput:
        baseline = None  # verify names the unreadable baseline among its problems
    all_backups = backup.list_backups(paths.backups, include_corrupt=True)
    good = [b for b in all_backups if not b.corrupt]
    picked = sample(good, backup_samples)
    older: list[tuple[str, Snapshot]] = []
    unreadable: list[str] = []
    over_time: list[Row] = []
    for info in reversed(picked):
        if loaded.sha256 is not None and loaded.sha256.startswith(info.digest):
            continue  # the state saved last, i.e. the cache now: drawn once, as "now"
        try:
            snap = read_snapshot(info.path)
        except (ValueError, OSError):
            unreadable.append(info.name)
            continue
        older.append((info.name, snap))
        over_time += _source_rows(utc_iso(info.when), *snapshot_counts(snap), "backup")
    if loaded.exists:
        over_time += _source_rows(cache.updated_at, *guard.record_counts(cache), "now")
    lost = lost_records(cache, older[::-1])  # newest first: "last seen in" is the newest backup holding it
    where = zone.display_zone(store.config.display.timezone)
    weekly, weeks, weekly_note = weekly_distance(acts, now, where=where)
    drift, long_runs = hr_drift(acts, where=where)
    try:
        cache_inode: int | None = os.stat(paths.cache).st_ino
    except OSError:
        cache_inode = None
    days = [local_day(a, where) for a in acts]
    steps = step_rows(read_states(paths.sync_state))
    if loaded.exists:
        steps.insert(0, {"step": "save", "last": cache.updated_at, "error": "", "detail": "the cache file"})
    if baseline is not None:
        steps.insert(
            1 if loaded.exists else 0,
            {"step": "verify --baseline", "last": baseline.recorded_at, "error": "", "detail": "baseline recorded"},
        )
    return ReportData(
        generated_at=utc_iso(now),
        home=str(paths.home),
        activities=len(acts),
        first_day=min(days).isoformat() if days else None,
        last_day=max(days).isoformat() if days else None,
        verify=verify_row,
        baseline=baseline_rows(cache, baseline),
        baseline_recorded_at=None if baseline is None else baseline.recorded_at,
        records_over_time=over_time,
        backups_sampled=len(picked),
        backups_unreadable=unreadable,
        hr_coverage=hr_coverage(acts, where),
        steps=steps,
        backups=backup_rows(all_backups, cache_inode),
        lost=lost[:LOST_SHOWN],
        lost_total=len(lost),
        deleted=[{"id": t.id, "deleted_at": t.deleted_at, "reason": t.reason} for t in cache.tombstones],
        weekly=weekly,
        weeks=weeks,
        weekly_note=weekly_note,
        monthly=monthly_totals(acts, where),
        hr_trend=hr_trend(acts, where),
        drift=drift,
        long_runs=long_runs,
    )


def _source_rows(at: str, total: int, per_source: Counter[str], origin: str) -> list[Row]:
    rows = [{"at": at, "source": s, "records": n, "origin": origin} for s, n in sorted(per_source.items())]
    return [*rows, {"at": at, "source": "total", "records": total, "origin": origin}]


def fmt_bytes(n: float) -> str:
    """Sizes as people read them: 512 B, 21.4 kB, 22.1 MB."""
    if n < 1000:
        return f"{int(n)} B"
    exp = min(int(math.log(n, 1000)), 4)
    return f"{n / 1000**exp:.1f} {['B', 'kB', 'MB', 'GB', 'TB'][exp]}"
