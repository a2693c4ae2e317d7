"""``healthcache report --html``: the figures, the page, and that it names nothing outside the file.

The browser half (the page drawn by Chromium offline) is tests/test_report_chromium.py.
"""

from __future__ import annotations

import os
import random
import re
import stat
import sys
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import msgspec
import pytest

from healthcache.config import Paths
from healthcache.model.records import SCHEMA_VERSION, Activity, Cache, HRSplit, Tombstone
from healthcache.report import data as rd
from healthcache.report import render_html
from healthcache.store import Store, load_file
from healthcache.timeutil import utc_iso
from tests import factories
from tests.conftest import Run

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)  # a Friday
HOSTILE_NAME = 'Tempo </td><img src="http://evil.example/x.png"><style>@import url(//evil.example/a.css)</style>'


def make_activity(i: int, start: datetime, sport: str, km: float, *, hr: float | None, drift: float = 0.0) -> Activity:
    """A realistic activity; runs carry per-km HR that climbs by ``drift`` bpm per km."""
    gid = str(7_000_000 + i)
    splits = None
    if hr is not None and sport == "running":
        splits = [
            HRSplit(km=k, duration_s=330.0, avg_hr=round(hr + drift * k, 1), max_hr=round(hr + drift * k + 8, 1))
            for k in range(1, int(km) + 1)
        ]
    stamp = utc_iso(start)
    return Activity(
        id=f"garmin:{gid}",
        source="garmin",
        source_ids={"garmin": gid},
        start_time=stamp,
        start_time_local=(start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S"),
        timezone="Europe/Amsterdam",
        sport=sport,
        name="Long run" if km >= 15 else "Easy",
        distance_m=km * 1000,
        duration_s=km * 330.0,
        moving_time_s=km * 320.0,
        avg_hr=hr,
        max_hr=None if hr is None else hr + 20,
        hr_splits=splits,
        first_seen_at=stamp,
        updated_at=stamp,
    )


def training(n: int = 240, *, seed: int = 3) -> list[Activity]:
    """About two years of mixed training ending the day before NOW: runs (some long), rides, swims without HR."""
    r = random.Random(seed)
    acts = []
    for i in range(n):
        start = NOW - timedelta(days=3 * (n - i), hours=r.randint(0, 3))
        kind = i % 4
        if kind in (0, 1):
            km = 16.0 + (i % 5) if i % 8 == 0 else round(r.uniform(5, 12), 1)
            acts.append(make_activity(i, start, "running", km, hr=140.0 + r.randint(-5, 5), drift=0.6))
        elif kind == 2:
            acts.append(make_activity(i, start, "cycling", round(r.uniform(20, 60), 1), hr=125.0))
        else:
            acts.append(make_activity(i, start, "pool_swimming", 2.0, hr=None))
    return acts


def build_workspace(home: Path) -> Store:
    """A workspace with a history: three saves (two backups), a baseline, a tombstone, a state file.

    Everything is written through the real store, at clock times a week apart; the delete is a day before NOW.
    """
    when = [NOW - timedelta(days=30)]
    store = Store(Paths.resolve(home), clock=lambda: when[0])
    acts = training()
    thirds = len(acts) // 3
    for upto in (thirds, 2 * thirds, len(acts)):
        when[0] += timedelta(days=7)
        with store.transaction() as tx:
            tx.save(msgspec.structs.replace(tx.cache, activities=acts[:upto]))
    deleted = acts[3]
    when[0] = NOW - timedelta(days=1)
    with store.transaction() as tx:
        kept = [a for a in tx.cache.activities if a.id != deleted.id]
        tomb = Tombstone(id=deleted.id, deleted_at=utc_iso(NOW), reason="double upload", source_ids=deleted.source_ids)
        tx.save(msgspec.structs.replace(tx.cache, activities=kept, tombstones=[tomb]))
    store.paths.sync_state.mkdir(parents=True, exist_ok=True)
    (store.paths.sync_state / "strava.json").write_text(
        '{"last_success": "2026-11-19T06:15:00Z", "last_attempt": "2026-11-20T06:15:00Z",'
        ' "last_error": "strava: HTTP 503"}'
    )
    return Store(store.paths, clock=lambda: NOW)


# --- the figures, as pure functions -------------------------------------------------------------


def test_weekly_distance_covers_52_weeks_to_this_week_per_sport_family() -> None:
    acts = [
        make_activity(1, NOW - timedelta(days=1), "running", 10.0, hr=150.0),
        make_activity(2, NOW - timedelta(days=2), "trail_running", 5.0, hr=150.0),
        make_activity(3, NOW - timedelta(days=3), "virtual_cycling", 30.0, hr=None),
        make_activity(4, NOW - timedelta(weeks=60), "running", 42.0, hr=None),  # outside the window
    ]
    rows, weeks, note = rd.weekly_distance(acts, NOW)
    assert len(weeks) == 52 and weeks[-1] == "2026-11-16" and weeks[0] == "2025-11-24"
    assert rows == [
        {"week": "2026-11-16", "sport": "cycling", "km": 30.0},
        {"week": "2026-11-16", "sport": "running", "km": 15.0},
    ]
    assert note == "the 52 weeks to 2026-11-22"


def test_weekly_distance_of_an_old_history_ends_at_the_newest_activity_and_says_so() -> None:
    old = [make_activity(1, datetime(2024, 5, 8, 6, tzinfo=UTC), "running", 8.0, hr=None)]
    rows, weeks, note = rd.weekly_distance(old, NOW)
    assert weeks[-1] == "2024-05-06" and rows == [{"week": "2024-05-06", "sport": "running", "km": 8.0}]
    assert "no activity in the last 52 weeks" in note and "2024-05-08" in note


def test_monthly_totals_hr_trend_and_coverage() -> None:
    acts = [
        make_activity(1, datetime(2026, 1, 5, 6, tzinfo=UTC), "running", 10.0, hr=150.0),
        make_activity(2, datetime(2026, 1, 9, 6, tzinfo=UTC), "running", 12.0, hr=140.0),
        make_activity(3, datetime(2026, 2, 1, 6, tzinfo=UTC), "pool_swimming", 2.0, hr=None),
    ]
    assert rd.monthly_totals(acts) == [
        {"month": "2026-01", "sport": "running", "count": 2, "km": 22.0, "hours": round(22 * 320 / 3600, 1)},
        {"month": "2026-02", "sport": "swimming", "count": 1, "km": 2.0, "hours": round(2 * 320 / 3600, 1)},
    ]
    assert rd.hr_trend(acts) == [{"month": "2026-01", "sport": "running", "mean_hr": 145.0, "n": 2}]
    assert rd.hr_coverage(acts) == [
        {"year": "2026", "activities": 3, "with_hr": 2, "with_splits": 2, "pct_hr": 66.7, "pct_splits": 66.7}
    ]


def test_hr_drift_uses_only_runs_with_enough_full_kilometres() -> None:
    day = datetime(2026, 3, 1, 6, tzinfo=UTC)
    long_a = make_activity(1, day, "running", 16.0, hr=140.0, drift=1.0)
    long_b = make_activity(2, day + timedelta(days=7), "running", 16.0, hr=150.0, drift=1.0)
    short = make_activity(3, day, "running", 10.0, hr=170.0)
    ride = make_activity(4, day, "cycling", 80.0, hr=120.0)
    rows, runs = rd.hr_drift([long_a, long_b, short, ride])
    assert runs == 2
    assert [r["km"] for r in rows] == list(range(1, 17))
    assert rows[0] == {"year": "2026", "km": 1, "mean_hr": 146.0, "runs": 2}
    assert rows[-1] == {"year": "2026", "km": 16, "mean_hr": 161.0, "runs": 2}
    # A final partial kilometre is not a kilometre of the run: 15.4 km gives 15 full ones, not a long run.
    partial = msgspec.structs.replace(make_activity(5, day, "running", 16.0, hr=140.0), distance_m=15_400.0)
    assert rd.hr_drift([partial])[1] == 1
    assert rd.hr_drift([partial], min_km=16)[1] == 0


def test_baseline_rows_flag_only_guarded_counts_below_the_baseline() -> None:
    cache = factories.cache(5)
    baseline = rd.guard.make_baseline(factories.cache(6), sha256=None, recorded_at="2026-11-01T00:00:00Z")
    rows = {r["what"]: r for r in rd.baseline_rows(cache, baseline)}
    assert rows["records"] == {"what": "records", "baseline": 6, "now": 5, "delta": -1, "ok": False}
    assert rows["records from garmin"]["ok"] is False
    assert rows["activities"]["ok"] is True  # a merge may join two activities: not guarded
    assert rd.baseline_rows(cache, None) == []


def test_sample_spreads_over_the_history_keeping_oldest_and_newest() -> None:
    items = list(range(100))
    picked = rd.sample(items, 12)  # type: ignore[arg-type]
    assert len(picked) == 12 and picked[0] == 0 and picked[-1] == 99
    assert picked == sorted(set(picked))
    assert rd.sample(items[:5], 12) == items[:5]  # type: ignore[arg-type]


def test_lost_records_are_those_neither_present_nor_tombstoned() -> None:
    older = factories.cache(4)
    a0, a1, a2, a3 = older.activities
    moved = msgspec.structs.replace(a2, id="strava:1", source="strava", source_ids={"strava": "1"}, aliases=[a2.id])
    current = Cache(
        schema_version=SCHEMA_VERSION,
        generator="t",
        updated_at=utc_iso(NOW),
        activities=[a0, moved],  # a2 is now an alias of strava:1: present
        tombstones=[Tombstone(id=a1.id, deleted_at=utc_iso(NOW), reason="dup")],
    )
    lost = rd.lost_records(current, [("b1.json", msgspec.convert(msgspec.to_builtins(older), rd.Snapshot))])
    assert [r["key"] for r in lost] == [a3.id]
    assert lost[0]["last_seen_in"] == "b1.json" and lost[0]["start_time"] == a3.start_time


def test_a_backup_snapshot_counts_records_as_the_guard_does(home: Path) -> None:
    store = build_workspace(home)
    for path in sorted(store.paths.backups.iterdir()):
        loaded = load_file(path).cache
        assert rd.snapshot_counts(rd.read_snapshot(path)) == rd.guard.record_counts(loaded)
    broken = home / "broken.json"
    broken.write_bytes(b'{"activities": [{"id": 3}]}')
    with pytest.raises(ValueError):
        rd.read_snapshot(broken)


def test_step_rows_summarise_sources_and_import_manifests() -> None:
    states = {
        "garmin": {"last_success": "2026-11-20T06:00:00Z", "last_attempt": "2026-11-20T06:00:00Z", "seen": {}},
        "strava": {"last_success": "2026-11-18T06:00:00Z", "last_attempt": "2026-11-20T06:00:00Z",
                   "last_error": "HTTP 503", "rate_limited_until": "2026-11-20T06:15:00Z"},
        "import_fit": {"files": {
            "/d/a.fit": {"status": "imported", "at": "2026-11-19T10:00:00Z"},
            "/d/b.fit": {"status": "failed", "reason": "truncated", "at": "2026-11-19T11:00:00Z"},
        }},
        "broken": None,
    }  # fmt: skip
    rows = {r["step"]: r for r in rd.step_rows(states)}
    assert rows["garmin"] == {"step": "garmin", "last": "2026-11-20T06:00:00Z", "error": "", "detail": ""}
    assert rows["strava"]["error"] == "HTTP 503"
    assert "last attempt 2026-11-20T06:00:00Z" in rows["strava"]["detail"]
    assert "rate limited until" in rows["strava"]["detail"]
    assert rows["import fit"] == {
        "step": "import fit",
        "last": "2026-11-19T11:00:00Z",
        "error": "b.fit: truncated",
        "detail": "1 failed, 1 imported files",
    }
    assert rows["broken"]["error"] == "unreadable state file"


def test_collect_reads_the_whole_workspace(home: Path) -> None:
    store = build_workspace(home)
    before = {p: p.read_bytes() for p in (store.paths.cache, store.paths.index)}
    data = rd.collect(store)
    assert data.activities == 239 and data.verify["ok"] is True
    assert data.deleted == [{"id": "garmin:7000003", "deleted_at": "2026-11-20T09:00:00Z", "reason": "double upload"}]
    assert data.lost_total == 0
    # Every backup is sampled (there are fewer than 12); a backup of the current content is drawn as "now".
    files = sorted(store.paths.backups.iterdir())
    assert data.backups_sampled == len(files) == len(data.backups) >= 3
    totals = [(r["at"][:10], r["records"]) for r in data.records_over_time if r["source"] == "total"]
    assert totals == [("2026-10-28", 80), ("2026-11-04", 160), ("2026-11-11", 240), ("2026-11-19", 240)]
    assert {r["origin"] for r in data.records_over_time} == {"backup", "now"}
    steps = {r["step"]: r for r in data.steps}
    assert steps["strava"]["error"] == "strava: HTTP 503" and steps["save"]["last"] == "2026-11-19T09:00:00Z"
    assert data.long_runs > 0 and data.drift[0]["km"] == 1
    assert sum(r["km"] for r in data.weekly) > 0 and data.weeks[-1] == "2026-11-16"
    # Read-only: the cache and its index are untouched, and no backup was made.
    assert {p: p.read_bytes() for p in before} == before
    assert sorted(store.paths.backups.iterdir()) == files


def test_collect_finds_records_lost_past_the_guard(home: Path) -> None:
    store = build_workspace(home)
    with store.transaction() as tx:  # what `restore --force` can do: past the guard, backed up first
        gone = tx.cache.activities[-1]
        tx.save(msgspec.structs.replace(tx.cache, activities=tx.cache.activities[:-1]), force_reason="test")
    data = rd.collect(store)
    assert data.lost_total == 1 and data.lost[0]["key"] == gone.id
    newest_holding = max(b.name for b in store.paths.backups.iterdir() if gone.id.encode() in load_file(b).data)
    assert data.lost[0]["last_seen_in"] == newest_holding
    html, _, _ = render_html(data)
    assert f"{data.lost_total} record(s) held by a sampled backup are missing now" in html and gone.id in html


# --- the page -----------------------------------------------------------------------------------


FETCHING_ATTRS = {"src", "href", "xlink:href", "srcset", "poster", "data", "action", "formaction", "background"}
URL_IN_CSS = re.compile(r"url\(\s*['\"]?([^'\")]*)|@import\s+['\"]?([^'\";\s]+)", re.I)


class _Refs(HTMLParser):
    """Every reference a browser could fetch: attributes, CSS url()/@import, and the tags that load things."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []
        self.tags: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self._in_style = tag == "style"
        for name, value in attrs:
            if value is None:
                continue
            if name in FETCHING_ATTRS:
                self.refs.append(value)
            if name == "style":
                self.refs += [a or b for a, b in URL_IN_CSS.findall(value)]
            if name == "http-equiv" and value.lower() == "refresh":
                self.refs.append("meta refresh")

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.refs += [a or b for a, b in URL_IN_CSS.findall(data)]


def external_refs(html: str) -> list[str]:
    """References that would leave the file: anything but an in-page #anchor or a data: URI."""
    parser = _Refs()
    parser.feed(html)
    loaders = {"script", "link", "img", "iframe", "object", "embed", "video", "audio", "source", "base", "image"}
    found = [f"<{t}>" for t in parser.tags if t in loaders]
    return found + [r for r in parser.refs if not (r.startswith("#") or r.lower().startswith("data:"))]


def test_the_detector_finds_external_references() -> None:
    page = (
        '<html><head><link rel="stylesheet" href="https://cdn.example/x.css"><style>@import "//fonts.example/f";'
        "body{background:url(http://img.example/b.png)}</style></head>"
        '<body><div style="background:url(//x.example/y)"></div><a href="#top">ok</a></body></html>'
    )
    assert external_refs(page) == [
        "<link>",
        "https://cdn.example/x.css",
        "//fonts.example/f",
        "http://img.example/b.png",
        "//x.example/y",
    ]


def test_report_html_names_no_external_url(home: Path, run: Run, tmp_path: Path) -> None:
    store = build_workspace(home)
    with store.transaction() as tx:  # a name from a source that tries to smuggle in a fetch
        first = msgspec.structs.replace(tx.cache.activities[0], name=HOSTILE_NAME)
        tx.save(msgspec.structs.replace(tx.cache, activities=[first, *tx.cache.activities[1:]]))
    out = tmp_path / "out" / "report.html"
    result = run("report", "--html", str(out))
    assert result.exit_code == 0, result.output
    html = out.read_text(encoding="utf-8")
    assert external_refs(html) == []
    assert "<svg" in html and html.count('<figure class="chart"') == 6
    assert "<script" not in html.lower()
    # Nothing names a URL at all (not even SVG namespaces), so nothing can be fetched by any reading.
    assert not re.search(r"(?i)\b(?:https?|ftp|wss?):|(?<![:\w])//[\w.-]+\.\w", html)
    assert "Content-Security-Policy" in html and "default-src 'none'" in html


def test_user_text_is_escaped(home: Path) -> None:
    store = build_workspace(home)
    (store.paths.sync_state / "garmin.json").write_text('{"last_error": "<script>alert(1)</script> & more"}')
    html, _, _ = render_html(rd.collect(store))
    assert "<script" not in html and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in html


def test_report_command_writes_one_page_and_leaves_the_workspace_untouched(
    home: Path, run: Run, tmp_path: Path
) -> None:
    store = build_workspace(home)
    snapshot = {p: p.read_bytes() for p in sorted(home.rglob("*")) if p.is_file()}
    out = tmp_path / "report.html"
    result = run("report", "--html", str(out), "--json")
    assert result.exit_code == 0, result.output
    info = msgspec.json.decode(result.stdout)
    assert info["path"] == str(out) and info["bytes"] == out.stat().st_size and info["activities"] == 239
    assert info["charts"] == [
        "weekly-distance",
        "monthly-distance",
        "hr-trend",
        "hr-drift",
        "hr-coverage",
        "records-over-time",
    ]
    assert info["empty_charts"] == [] and info["verify_ok"] is True and info["lost"] == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert {p: p.read_bytes() for p in sorted(home.rglob("*")) if p.is_file()} == snapshot
    assert not list(tmp_path.glob(".hc-tmp-*"))
    human = run("report", "--html", str(out))
    assert human.exit_code == 0 and f"report written to {out}" in human.stdout
    assert store.paths.cache.read_bytes() == snapshot[store.paths.cache]


def test_report_on_an_empty_workspace_says_there_is_no_data(run: Run, tmp_path: Path) -> None:
    out = tmp_path / "empty.html"
    result = run("report", "--html", str(out))
    assert result.exit_code == 0, result.output
    assert "no data yet for: weekly-distance" in result.stdout
    html = out.read_text(encoding="utf-8")
    assert '<figure class="chart"' not in html and html.count("no data for this chart yet") == 6
    assert "No baseline recorded yet" in html and "No backups yet" in html


@pytest.mark.parametrize("where", ["tracking/report.html", "backups/report.html", "tracking/unified-cache.json"])
def test_report_refuses_to_write_into_the_data_folders(home: Path, run: Run, where: str) -> None:
    store = build_workspace(home)
    before = store.paths.cache.read_bytes()
    result = run("report", "--html", str(home / where))
    assert result.exit_code == 2
    assert "refusing to write the report" in result.stderr and "holds your data" in result.stderr
    assert store.paths.cache.read_bytes() == before and not (home / "tracking" / "report.html").exists()


def test_report_os_error_is_a_message(home: Path, run: Run, tmp_path: Path) -> None:
    build_workspace(home)
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    result = run("report", "--html", str(blocker / "report.html"))
    assert result.exit_code == 1
    assert f"cannot write the report to {blocker / 'report.html'}" in result.stderr
    assert "Traceback" not in result.output + result.stderr
    assert blocker.read_text() == "x"


def test_report_on_a_corrupt_cache_names_the_file_and_writes_nothing(home: Path, run: Run, tmp_path: Path) -> None:
    store = build_workspace(home)
    store.paths.cache.write_bytes(b'{"schema_version": 1, "activities": [')
    out = tmp_path / "r.html"
    result = run("report", "--html", str(out))
    assert result.exit_code == 4 and str(store.paths.cache) in result.stderr
    assert not out.exists()


def test_report_without_the_plotting_extra_says_how_to_install_it(
    home: Path, run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_workspace(home)
    monkeypatch.setitem(sys.modules, "vl_convert", None)  # as if not installed: import raises ImportError
    out = tmp_path / "r.html"
    result = run("report", "--html", str(out))
    assert result.exit_code == 1
    assert "pip install 'healthcache[report]'" in result.stderr and "vl_convert" in result.stderr
    assert not out.exists()


def test_help_lists_report_without_importing_the_plotting_libraries(run: Run) -> None:
    result = run("--help")
    assert "report" in result.stdout and "offline HTML report" in result.stdout
    code = "import sys; from healthcache.cli import main; main(['--help']); print('altair' in sys.modules)"
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ)
    assert out.stdout.strip().endswith("False")


def test_the_readme_example_is_what_the_command_prints(home: Path, run: Run, tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## The report (`healthcache report --html FILE`)") :]
    command = re.search(r"```sh\n(healthcache report [^\n]+)\n```", section)
    example = re.search(r"\n    (report written to [^\n]+)\n", section)
    assert command and example
    build_workspace(home)
    out = tmp_path / "training-report.html"
    args = command.group(1).split()[1:]
    result = run(*[str(out) if a.startswith("~") else a for a in args])
    assert result.exit_code == 0, result.output

    def shape(line: str) -> str:
        return re.sub(r"\d+(?:[.,]\d+)*", "N", re.sub(r"to \S+", "to PATH", line))

    assert shape(result.stdout.splitlines()[0]) == shape(example.group(1))


def test_an_unreadable_backup_is_named_and_the_rest_is_drawn(home: Path) -> None:
    store = build_workspace(home)
    oldest = sorted(store.paths.backups.iterdir())[0]
    oldest.write_bytes(b"{ not json")
    data = rd.collect(store)
    assert data.backups_unreadable == [oldest.name]
    assert [r["records"] for r in data.records_over_time if r["source"] == "total"] == [160, 240, 240]
    html, drawn, _ = render_html(data)
    assert "Unreadable backups (not drawn): " + oldest.name in html and "records-over-time" in drawn


@pytest.mark.parametrize(("ci", "outcome"), [("true", "2 errors"), ("", "2 skipped")])
def test_the_browser_tests_fail_in_ci_when_chromium_is_missing(tmp_path: Path, ci: str, outcome: str) -> None:
    import subprocess

    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_XDIST_WORKER")}
    env["PATH"] = str(tmp_path)  # no browser on it
    if ci:
        env["CI"] = ci
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:xdist",
            "tests/test_report_chromium.py",
        ],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )
    assert outcome in proc.stdout, proc.stdout
    assert (proc.returncode != 0) == bool(ci)
    if ci:
        assert "Chromium is not installed" in proc.stdout


def test_report_shows_verify_problems_and_a_drop_below_the_baseline(home: Path) -> None:
    from healthcache.verify import record_baseline

    store = build_workspace(home)
    assert record_baseline(store).baseline_recorded
    with store.transaction() as tx:  # past the guard, as only `restore --force` can
        tx.save(msgspec.structs.replace(tx.cache, activities=tx.cache.activities[:-2]), force_reason="test")
    data = rd.collect(store)
    assert data.verify["ok"] is False and any("below" in p or "<" in p for p in data.verify["problems"])
    rows = {r["what"]: r for r in data.baseline}
    assert rows["records"]["delta"] == -2 and rows["records"]["ok"] is False
    html, _, _ = render_html(data)
    assert 'id="verify-status">' in html and "BELOW BASELINE" in html and data.lost_total == 2


def test_an_unreadable_baseline_is_a_verify_problem_in_the_page_not_a_failed_report(home: Path) -> None:
    store = build_workspace(home)
    store.paths.baseline.write_bytes(b"{ broken")
    data = rd.collect(store)
    assert data.baseline == [] and data.verify["ok"] is False
    assert any(str(store.paths.baseline) in p for p in data.verify["problems"])
    html, _, _ = render_html(data)
    assert "baseline is unreadable" in html
