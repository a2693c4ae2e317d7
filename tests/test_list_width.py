"""``list`` and ``stats`` stay readable with long names: the short columns keep their full text, the name is
cut with "…", and the table is drawn at $COLUMNS, else the terminal's width, else 80."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import msgspec
import pytest
from click.testing import CliRunner, Result

from healthcache.cli import main, view_cmds
from healthcache.store import Store
from tests import factories
from tests.conftest import CORPUS

LONG = "4k 18:30 TT and < 5min / km speed trial, then a long cool-down jog home along the river"
STRAVA_CSV = CORPUS / "strava_export" / "TheNewThinkTank__strava-insights__activities.csv"


def run(home: Path, *args: str, columns: int | None) -> Result:
    """The CLI as the console script runs it; ``columns`` is $COLUMNS (None: unset)."""

    def entry() -> None:
        raise SystemExit(main([*args, "--home", str(home)]))

    env = {"NO_COLOR": "1", "COLUMNS": None if columns is None else str(columns)}
    runner = CliRunner()
    return runner.invoke(click.Command("healthcache", callback=entry), [], env=env, catch_exceptions=False)


@pytest.fixture
def long_names(store: Store) -> Store:
    """Five activities, the newest two with long names, one of them a sport with a long name and no HR."""
    acts = factories.cache(5).activities
    acts[-1] = msgspec.structs.replace(acts[-1], name=LONG)
    acts[-2] = msgspec.structs.replace(acts[-2], name=LONG.upper(), sport="cross_country_skiing", avg_hr=None)
    with store.transaction() as tx:
        tx.save(msgspec.structs.replace(factories.cache(0), activities=acts))
    return store


def _tokens(line: str) -> list[str]:
    """A list line's words, a blank HR cell kept as "" (so the last four are km, time, HR, sources)."""
    words = line.split()
    return words if len(words) >= 8 and words[-2].isdigit() else [*words[:-1], "", words[-1]]


def _expected(row: dict[str, Any]) -> list[str]:
    """What a list line must show, whole, of a --json row: id, start (two words), sport, km, time, HR, sources."""
    hr = "" if row["avg_hr"] is None else f"{row['avg_hr']:.0f}"
    codes = {"garmin": "G", "strava": "S"}
    return [
        row["short_id"],
        *row["start"].split(),
        row["sport"],
        f"{row['distance_km']:.2f}",
        view_cmds._hms(row["duration_s"]),
        hr,
        "".join(codes[s] for s in row["sources"]),
    ]


def _assert_whole(result: Result, home: Path, width: int) -> list[str]:
    """Every row shows its full short id, start, sport, km, time, HR and sources; every line fits ``width``."""
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["id", "start", "sport", "name", "km", "time", "HR", "src"]
    assert all(len(line) <= width for line in lines), [len(line) for line in lines]
    rows = json.loads(run(home, "list", "--json", columns=None).output)
    assert len(lines) == len(rows) + 2  # header, one line per activity, the legend
    for line, row in zip(lines[1:], rows, strict=False):
        assert _tokens(line)[:4] + _tokens(line)[-4:] == _expected(row), line
    return lines


@pytest.mark.parametrize("columns", [None, 80, 100])
def test_a_long_name_is_cut_and_every_other_column_kept(long_names: Store, home: Path, columns: int | None) -> None:
    width = columns or 80
    lines = _assert_whole(run(home, "list", columns=columns), home, width)
    assert "…" in lines[1] and LONG not in lines[1]  # the name gives way
    assert lines[1].index("…") < lines[1].index(" G")
    assert lines[-1] == "sources: G garmin"


def test_a_wide_terminal_shows_the_whole_name(long_names: Store, home: Path) -> None:
    lines = _assert_whole(run(home, "list", columns=200), home, 200)
    assert LONG in lines[1] and LONG.upper() in lines[2]
    assert "…" not in "\n".join(lines)


def test_columns_is_honoured_without_a_terminal(long_names: Store, home: Path) -> None:
    narrow = run(home, "list", columns=None).output.splitlines()
    wide = run(home, "list", columns=200).output.splitlines()
    assert max(map(len, narrow)) <= 80 < max(map(len, wide))


def test_a_terminal_too_narrow_for_the_short_columns_widens_the_table_rather_than_cut_them(
    long_names: Store, home: Path
) -> None:
    lines = _assert_whole(run(home, "list", columns=40), home, 200)
    assert "…" in lines[1]


@pytest.mark.parametrize(
    ("fixed", "width", "expected"),
    [
        ([8, 16, 7, 5, 7, 3, 3], 80, (24, 80)),  # what is left after the columns and the 7 spaces between them
        ([8, 16, 7, 5, 7, 3, 3], 200, (144, 200)),
        ([8, 16, 20, 6, 8, 3, 3], 70, (8, 79)),  # never below the floor: the drawing is wider than asked
    ],
)
def test_fit_flexible(fixed: list[int], width: int, expected: tuple[int, int]) -> None:
    assert view_cmds.fit_flexible(fixed, width) == expected


@pytest.mark.skipif(not STRAVA_CSV.exists(), reason="the shared corpus is absent")
def test_the_strava_export_from_the_report_lists_whole_ids(home: Path) -> None:
    """The reported case: a real Strava account export's long titles."""

    def entry() -> None:
        raise SystemExit(main(["import", str(STRAVA_CSV), "--home", str(home)]))

    imported = CliRunner().invoke(click.Command("hc", callback=entry), [], catch_exceptions=False)
    assert imported.exit_code == 0, imported.output
    for columns in (None, 200):
        result = run(home, "list", "--limit", "3", columns=columns)
        rows = json.loads(run(home, "list", "--limit", "3", "--json", columns=None).output)
        lines = result.output.splitlines()
        assert lines[0].split() == ["id", "start", "sport", "name", "km", "time", "HR", "src"]
        assert all(len(line) <= (columns or 80) for line in lines)
        for line, row in zip(lines[1:], rows, strict=False):
            assert _tokens(line)[:4] + _tokens(line)[-4:] == _expected(row), line
        assert ("4k 18:30 TT and < 5min / km speed trial" in lines[1]) is (columns == 200)


@pytest.mark.parametrize("columns", [50, None])
def test_stats_keeps_its_numbers_and_gives_the_sport_what_is_left(
    long_names: Store, home: Path, columns: int | None
) -> None:
    result = run(home, "stats", "--by", "year", columns=columns)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["year", "sport", "n", "km", "moving", "elev", "m", "avg", "HR", "HR", "cov"]
    assert all(len(line) <= (columns or 80) for line in lines)
    found = json.loads(run(home, "stats", "--by", "year", "--json", columns=None).output)
    assert len(lines) == len(found) + 1
    for line, r in zip(lines[1:], found, strict=True):
        period, sport, n, km, moving, *_ = line.split()
        assert (period, int(n), km, moving) == (
            r["period"],
            r["count"],
            f"{r['distance_km']:.1f}",
            view_cmds._hms(r["moving_time_s"]),
        )
        if columns is None:  # 80 columns hold every sport's name whole
            assert sport == r["sport"]
        else:
            assert sport == r["sport"] or (sport.endswith("…") and r["sport"].startswith(sport[:-1]))
    assert any(line.split()[1] == "cross_country_skiing" for line in lines) is (columns is None)
