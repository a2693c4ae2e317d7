"""Run history (issue 11 point 2): one record per writing command, `log`, rotation, never failing a run."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest

from healthcache import history
from healthcache.backup import list_backups
from healthcache.config import Paths
from healthcache.model.records import Cache
from healthcache.outcome import Failure, Outcome
from healthcache.store import Store
from tests import factories
from tests.conftest import Run

GPX = """<?xml version="1.0"?>
<gpx version="1.1" creator="t" xmlns="http://www.topografix.com/GPX/1/1"><trk><name>Run</name><type>running</type>
<trkseg><trkpt lat="52.0" lon="4.0"><time>2024-05-01T06:00:00Z</time></trkpt>
<trkpt lat="52.01" lon="4.0"><time>2024-05-01T06:05:00Z</time></trkpt>
<trkpt lat="52.02" lon="4.0"><time>2024-05-01T06:10:00Z</time></trkpt></trkseg></trk></gpx>
"""


def runs(run: Run, *args: str) -> list[dict[str, object]]:
    result = run("log", "--json", *args)
    assert result.exit_code == 0, result.output
    out: list[dict[str, object]] = json.loads(result.stdout)["runs"]
    return out


def refused_restore(store: Store, seeded: Callable[[int], Cache], run: Run) -> tuple[str, bytes]:
    """A restore the guard refuses: the oldest backup lacks an activity added since."""
    seeded(3)
    with store.transaction() as tx:
        tx.save(msgspec.structs.replace(tx.cache, activities=[*tx.cache.activities, factories.activity(50)]))
    oldest = list_backups(store.paths.backups)[-1].name
    return oldest, store.paths.cache.read_bytes()


def test_each_writing_command_records_one_run_newest_first(run: Run, home: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.fit"
    bad.write_text("not a fit file")
    assert run("import", str(bad)).exit_code == 1
    good = tmp_path / "run.gpx"
    good.write_text(GPX)
    assert run("import", str(good)).exit_code == 0
    assert run("sync", "--source", "garmin").exit_code == 1  # no login: an auth step
    assert run("list").exit_code == 0  # a reading command records nothing

    got = runs(run)
    assert [r["command"] for r in got] == ["sync", "import", "import"]
    assert [r["exit_code"] for r in got] == [1, 0, 1]
    sync, ok, failed = got
    assert sync["steps"] == [
        {
            "name": "sync garmin",
            "status": "auth",
            "reason": "no garmin login is saved\nLog in with: healthcache auth garmin",
            "seconds": sync["steps"][0]["seconds"],  # type: ignore[index]
            "figures": {
                "requests": 0,
                "seen": 0,
                "new": 0,
                "updated": 0,
                "merged": 0,
                "unchanged": 0,
                "joined_closest": 0,
                "kept_apart": 0,
                "conflict": 0,
                "tombstoned": 0,
                "skipped": 0,
            },
        }
    ]
    assert failed["steps"][0]["status"] == "failed"  # type: ignore[index]
    assert failed["steps"][0]["reason"].startswith(  # type: ignore[index]
        f"1 file could not be imported (listed above; the first: {bad}: "
    )
    assert failed["steps"][0]["figures"]["failed"] == 1  # type: ignore[index]
    assert failed["outcome"] == "error" and ok["outcome"] == "ok"
    (step,) = ok["steps"]  # type: ignore[misc]
    assert step["name"] == "import" and step["status"] == "ok"
    assert {k: step["figures"][k] for k in ("seen", "imported", "failed", "new", "merge.unchanged")} == {
        "seen": 1,
        "imported": 1,
        "failed": 0,
        "new": 1,
        "merge.unchanged": 0,
    }
    assert ok["args"] == [str(good), "--home", str(home)]
    for r in got:
        started = datetime.fromisoformat(str(r["started"]))
        ended = datetime.fromisoformat(str(r["ended"]))
        assert timedelta(0) <= ended - started < timedelta(minutes=5)
    assert [r["command"] for r in runs(run, "--limit", "1")] == ["sync"]

    text = run("log").output
    assert text.index("sync --source garmin") < text.index(f"import {good}") < text.index(f"import {bad}")
    assert "sync garmin      auth           no garmin login is saved" in text


def test_a_refusal_records_the_ids_at_risk(store: Store, seeded: Callable[[int], Cache], run: Run) -> None:
    oldest, before = refused_restore(store, seeded, run)
    assert run("restore", oldest).exit_code == 3
    assert store.paths.cache.read_bytes() == before
    (r,) = runs(run)
    assert r["command"] == "restore" and r["outcome"] == "integrity" and r["exit_code"] == 3
    assert r["lost"] == ["garmin:9000000050"] and r["lost_count"] == 1
    assert r["steps"] == [{"name": "restore", "status": "refused", "reason": r["errors"][0]}]  # type: ignore[index]
    assert "--merge" in r["errors"][0]  # type: ignore[index]
    assert "lost or at risk: garmin:9000000050" in run("log").output


def test_records_are_written_through_the_atomic_path_0600(run: Run, home: Path, tmp_path: Path) -> None:
    (tmp_path / "run.gpx").write_text(GPX)
    run("import", str(tmp_path / "run.gpx"))
    (path,) = (home / "tracking" / "history").iterdir()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert msgspec.json.decode(path.read_bytes(), type=history.Record).command == "import"


def record(i: int, **kw: object) -> history.Record:
    t = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=i)
    base: dict[str, object] = {"command": "sync", "code": 0, "failures": [], "args": []}
    base.update(kw)
    return history.record_of(started=t, ended=t + timedelta(seconds=3), **base)  # type: ignore[arg-type]


def test_rotation_keeps_the_newest(tmp_path: Path) -> None:
    paths = Paths(tmp_path)
    for i in range(7):
        history.append(paths, record(i), keep=3)
    got, unreadable = history.read(paths)
    assert unreadable == []
    assert [r.started[:10] for r in got] == ["2026-01-07", "2026-01-06", "2026-01-05"]
    assert len(os.listdir(history.folder(paths))) == 3


def test_an_unreadable_record_is_named_and_skipped(run: Run, home: Path, tmp_path: Path) -> None:
    paths = Paths(home)
    history.append(paths, record(1))
    broken = history.folder(paths) / "20991231T000000.000000Z-1.json"
    broken.write_text("{not json")
    result = run("log")
    assert result.exit_code == 0
    assert "sync" in result.output and f"1 unreadable record(s) skipped: {broken}" in result.output


def test_a_failed_history_write_is_told_and_changes_nothing(run: Run, home: Path, tmp_path: Path) -> None:
    (home / "tracking").mkdir()
    (home / "tracking" / "history").write_text("in the way")  # the folder cannot be made
    (tmp_path / "run.gpx").write_text(GPX)
    result = run("import", str(tmp_path / "run.gpx"))
    assert result.exit_code == 0
    assert "warning: this run was not recorded in the history" in result.stderr
    assert "what the command saved is unaffected" in result.stderr
    assert len(Store(Paths(home)).read().cache.activities) == 1


def test_a_failed_history_write_never_hides_a_loss(
    store: Store, seeded: Callable[[int], Cache], run: Run, home: Path
) -> None:
    oldest, before = refused_restore(store, seeded, run)
    (home / "tracking" / "history").write_text("in the way")
    result = run("restore", oldest)
    assert result.exit_code == 3
    assert "garmin:9000000050" in result.stderr and "not recorded in the history" in result.stderr
    assert result.stderr.index("garmin:9000000050") < result.stderr.index("not recorded")
    assert store.paths.cache.read_bytes() == before


def test_record_of_names_a_failure_without_steps_and_keeps_no_secret() -> None:
    r = record(
        0,
        command="import",
        code=1,
        args=["--url", "https://me:hunter2@example.com/x?access_token=abc123"],
        failures=[Failure(Outcome.ERROR, "fetching https://me:hunter2@host/y?token=zzz failed")],
    )
    assert r.steps == [
        history.Step(name="import", status="failed", reason="fetching https://***@host/y?token=*** failed")
    ]
    text = msgspec.json.encode(r).decode()
    assert "hunter2" not in text and "abc123" not in text and "zzz" not in text


def test_streak_passes_over_runs_that_did_not_run_the_step() -> None:
    def rec(*steps: tuple[str, str]) -> history.Record:
        return record(0, steps=[history.Step(name=n, status=s) for n, s in steps])

    previous = [
        rec(("sync garmin", "skipped")),
        rec(("sync garmin", "failed")),
        rec(),
        rec(("sync garmin", "auth")),
        rec(("sync garmin", "ok")),
    ]
    assert history.streak(previous, "sync garmin") == ("failed", 2)
    assert history.streak(previous, "sync strava") == (None, 0)
    assert history.streak(previous[4:], "sync garmin") == ("ok", 1)


@pytest.mark.parametrize("limit", ["0", "x"])
def test_log_limit_must_be_a_positive_number(run: Run, limit: str) -> None:
    assert run("log", "--limit", limit).exit_code == 2


def readme_log_records() -> list[history.Record]:
    """The three runs the README's `log` example shows."""
    delivered = history.Delivery(target="ntfy://healthcache-alerts", ok=True, events=["auth"])
    refused = "the save would drop 1 activity: garmin:15660001234"
    return [
        history.Record(
            started="2026-05-02T06:15:01.000000Z",
            ended="2026-05-02T06:15:05.200000Z",
            seconds=4.2,
            command="sync",
            args=["--quiet"],
            outcome="error",
            exit_code=1,
            steps=[
                history.Step(name="sync garmin", status="ok", figures={"seen": 3, "new": 1, "updated": 0}),
                history.Step(
                    name="sync strava",
                    status="auth",
                    reason="the saved Strava login has no refresh token\nLog in with: healthcache auth strava",
                ),
            ],
            errors=["sync failed for strava: the saved Strava login has no refresh token"],
            notifications=[delivered],
        ),
        history.Record(
            started="2026-05-01T21:40:12.000000Z",
            ended="2026-05-01T21:40:12.310000Z",
            seconds=0.31,
            command="restore",
            args=["unified-cache-20260401T061500.000000Z-3f1a2b4c5d6e.json"],
            outcome="integrity",
            exit_code=3,
            steps=[history.Step(name="restore", status="refused", reason=refused)],
            errors=[refused],
            lost=["garmin:15660001234"],
            lost_count=1,
            notifications=[
                history.Delivery(
                    target="ntfy://healthcache-alerts", ok=False, events=["loss"], error="connection refused"
                )
            ],
        ),
        history.Record(
            started="2026-05-01T06:15:03.000000Z",
            ended="2026-05-01T06:15:04.050000Z",
            seconds=1.05,
            command="import",
            args=["/home/me/fit"],
            outcome="ok",
            exit_code=0,
            steps=[history.Step(name="import", status="ok", figures={"seen": 12, "new": 2})],
        ),
    ]


def test_readme_log_example_is_what_log_prints() -> None:
    import re

    from healthcache.cli.run_cmds import render_log

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- shape:log -->\n```text\n(.*?)```", readme, re.S)
    assert block is not None
    assert block.group(1) == "$ healthcache log --limit 3\n" + render_log(readme_log_records(), []) + "\n"


def test_log_shows_the_times_in_its_reasons_in_the_display_zone() -> None:
    """`run` showed "passed at 12:52 CET" and `log` the same run's reason as "2026-11-30T11:52:55Z"."""
    from zoneinfo import ZoneInfo

    from healthcache.cli.run_cmds import render_log

    step = history.Step(
        name="verify",
        status="skipped",
        reason="cache unchanged since the last verify, which passed at 2026-11-30T11:52:55Z",
    )
    record = history.Record(
        started="2026-11-30T12:00:00.000000Z",
        ended="2026-11-30T12:00:01.000000Z",
        seconds=1.0,
        command="run",
        args=[],
        outcome="ok",
        exit_code=0,
        steps=[step],
    )
    text = render_log([record], [], ZoneInfo("Europe/Berlin"))
    assert "passed at 2026-11-30 12:52:55 CET" in text or "passed at 2026-11-30 12:52 CET" in text
    assert "11:52:55Z" not in text
