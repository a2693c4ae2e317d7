"""list, show and stats, and activity-ID resolution, on the bundled sample data imported for real."""

from __future__ import annotations

import json
import re
import shutil
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import click
import msgspec
import pytest
from click.testing import CliRunner, Result

sys.path.insert(0, str(Path(__file__).parents[1] / "samples"))

import generate as samples

from healthcache import lookup, views
from healthcache.cli import Ctx, main, view_cmds
from healthcache.config import Paths
from healthcache.model.records import Cache
from healthcache.store import Store
from tests import factories

ANSI = re.compile(r"\x1b\[")


def invoke(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
    """The CLI as the console script runs it (exit codes from main())."""

    def entry() -> None:
        raise SystemExit(main(list(args)))

    runner = CliRunner()
    return runner.invoke(click.Command("healthcache", callback=entry), [], input=input, env=env, catch_exceptions=False)


@pytest.fixture(scope="session")
def sample_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample set (samples/generate.py) imported through the real import command, once."""
    data = tmp_path_factory.mktemp("sample-data")
    samples.generate(data)
    home = tmp_path_factory.mktemp("sample-home")
    result = invoke("import", "--home", str(home), str(data))
    assert result.exit_code == 0, result.output
    return home


@pytest.fixture
def sample_home(sample_template: Path, tmp_path: Path) -> Path:
    """A private copy of the imported sample workspace, free to change."""
    home = tmp_path / "home"
    shutil.copytree(sample_template, home)
    return home


def cache_of(home: Path) -> Cache:
    return Store(Paths(home)).read().cache


def hc(home: Path) -> Callable[..., Result]:
    def run(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
        return invoke(*args, "--home", str(home), input=input, env=env)

    return run


# --- list ---------------------------------------------------------------------


def test_list_json_newest_first_with_short_ids(sample_home: Path) -> None:
    cache = cache_of(sample_home)
    result = hc(sample_home)("list", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [r["id"] for r in rows] == [a.id for a in reversed(cache.activities)]
    for row in rows:
        act = next(a for a in cache.activities if a.id == row["id"])
        assert row["short_id"] == lookup.short_hash(act.id)[:8]
        assert row["sources"] == list(act.source_ids)
        local = act.start_time_local or act.start_time
        assert row["start"] == local[:16].replace("T", " ") + ("" if act.start_time_local else "Z")
        assert row["distance_km"] == pytest.approx((act.distance_m or 0) / 1000, abs=0.01)
        assert row["avg_hr"] == act.avg_hr


def test_list_filters(sample_home: Path) -> None:
    run = hc(sample_home)
    cache = cache_of(sample_home)
    running = json.loads(run("list", "--sport", "running", "--json").output)
    assert {r["sport"] for r in running} == {"running", "treadmill_running"}  # a family
    assert len(running) == sum(1 for a in cache.activities if a.sport in ("running", "treadmill_running"))
    polar = json.loads(run("list", "--source", "polar", "--json").output)
    assert [r["id"] for r in polar] == [a.id for a in cache.activities if "polar" in a.source_ids]
    window = json.loads(run("list", "--since", "2024-05-08", "--until", "2024-05-13", "--json").output)
    days = [date.fromisoformat(r["start"][:10]) for r in window]
    assert days and all(date(2024, 5, 8) <= d <= date(2024, 5, 13) for d in days)
    expected = [a for a in cache.activities if date(2024, 5, 8) <= views.local_day(a) <= date(2024, 5, 13)]
    assert len(window) == len(expected)
    two = json.loads(run("list", "--limit", "2", "--json").output)
    assert [r["id"] for r in two] == [a.id for a in reversed(cache.activities)][:2]
    assert run("list", "--limit", "0").exit_code == 2
    assert run("list", "--since", "May 8").exit_code == 2


def test_list_text_fits_80_columns_without_escapes(sample_home: Path) -> None:
    result = hc(sample_home)("list", env={"NO_COLOR": "1"})
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].split() == ["id", "start", "sport", "name", "km", "time", "HR", "src"]
    assert all(len(line) <= 80 for line in lines)
    assert not ANSI.search(result.output)
    cache = cache_of(sample_home)
    assert len(lines) == len(cache.activities) + 2  # header, rows, the source legend
    assert lines[-1].startswith("sources: ")
    newest = cache.activities[-1]
    assert lines[1].startswith(lookup.short_id(newest.id))
    assert hc(sample_home)("list", "--quiet").output == ""


@pytest.mark.parametrize(
    ("tty", "as_json", "quiet", "no_color", "coloured"),
    [
        (True, False, False, "", True),
        (True, False, False, "1", False),
        (True, True, False, "", False),
        (True, False, True, "", False),
        (False, False, False, "", False),
    ],
)
def test_colour_only_at_a_terminal(
    monkeypatch: pytest.MonkeyPatch, tty: bool, as_json: bool, quiet: bool, no_color: str, coloured: bool
) -> None:
    from rich.table import Table

    monkeypatch.setattr(view_cmds, "_is_tty", lambda: tty)
    monkeypatch.setenv("NO_COLOR", no_color) if no_color else monkeypatch.delenv("NO_COLOR", raising=False)
    table = Table()
    table.add_column("id", style="cyan")
    table.add_row("abc")
    ctx = Ctx(home=None, as_json=as_json, quiet=quiet, lock_timeout=0)
    assert bool(ANSI.search(view_cmds._render(ctx, table))) is coloured
    assert bool(ANSI.search(view_cmds._paint_diff(ctx, "- garmin:1  removed"))) is coloured


# --- ID resolution ---------------------------------------------------------------


def test_every_kind_of_id_resolves(sample_home: Path) -> None:
    cache = cache_of(sample_home)
    merged = next(a for a in cache.activities if len(a.source_ids) >= 3)
    strava = f"strava:{merged.source_ids['strava']}"
    short = lookup.short_id(merged.id)
    for text, how in ((merged.id, "id"), (strava, "source id"), (short, "short id"), (short[:4], "short id")):
        found = lookup.resolve(cache, text)
        assert isinstance(found, lookup.Resolved), text
        assert (found.activity.id, found.how) == (merged.id, how)
        shown = hc(sample_home)("show", text, "--json")
        assert shown.exit_code == 0, shown.output
        assert json.loads(shown.output)["id"] == merged.id
    missing = hc(sample_home)("show", "garmin:1")
    assert missing.exit_code == 2 and "no activity has" in missing.output
    assert isinstance(lookup.resolve(cache, "abc"), lookup.NotFound)  # too short
    assert isinstance(lookup.resolve(cache, "run!"), lookup.NotFound)


def test_an_absorbed_id_and_its_short_id_still_resolve(sample_home: Path) -> None:
    cache = cache_of(sample_home)
    singles = [a for a in cache.activities if len(a.source_ids) == 1]
    # Absorb one activity into another (as a merge that proves them one workout does).
    keep, gone = singles[0], singles[1]
    joined = msgspec.structs.replace(keep, aliases=[gone.id], source_ids={**gone.source_ids, **keep.source_ids})
    acts = [joined if a.id == keep.id else a for a in cache.activities if a.id != gone.id]
    changed = msgspec.structs.replace(cache, activities=acts)
    for text in (gone.id, lookup.short_id(gone.id)):
        found = lookup.resolve(changed, text)
        assert isinstance(found, lookup.Resolved) and found.activity.id == keep.id


def _colliding_prefix(cache: Cache, length: int) -> str:
    seen: dict[str, str] = {}
    for act in cache.activities:
        p = lookup.short_hash(act.id)[:length]
        if p in seen:
            return p
        seen[p] = act.id
    raise AssertionError("no collision in this cache")


def test_an_ambiguous_short_id_lists_the_candidates_and_exits_2(store: Store, home: Path) -> None:
    with store.transaction() as tx:
        tx.save(factories.cache(1500))
    cache = store.read().cache
    prefix = _colliding_prefix(cache, 4)
    result = hc(home)("show", prefix)
    assert result.exit_code == 2
    matching = [a.id for a in cache.activities if lookup.short_hash(a.id).startswith(prefix)]
    assert len(matching) >= 2
    for ident in matching:
        assert ident in result.output
    found = lookup.resolve(cache, prefix)
    assert isinstance(found, lookup.Ambiguous) and {a.id for a in found.candidates} == set(matching)


def test_short_ids_grow_only_where_8_digits_clash() -> None:
    digests: dict[str, str] = {}
    for i in range(400_000):
        ident = f"garmin:{i}"
        d = lookup.short_hash(ident)[:8]
        if d in digests:
            a, b = digests[d], ident
            break
        digests[d] = ident
    else:  # pragma: no cover - sha256 would have to be broken
        raise AssertionError("no 8-digit clash among 400k ids")
    shorts = lookup.short_ids([a, b, "garmin:x"])
    assert len(shorts[a]) > 8 and len(shorts[b]) > 8 and len(shorts["garmin:x"]) == 8
    assert shorts[a] != shorts[b]
    cache = factories.cache(0)
    acts = [msgspec.structs.replace(factories.activity(1), id=a), msgspec.structs.replace(factories.activity(2), id=b)]
    both = msgspec.structs.replace(cache, activities=acts)
    assert isinstance(lookup.resolve(both, shorts[a][:8]), lookup.Ambiguous)
    found = lookup.resolve(both, shorts[a])
    assert isinstance(found, lookup.Resolved) and found.activity.id == a


# --- show ---------------------------------------------------------------------


def test_show_names_the_provider_of_each_field_and_every_source_value(sample_home: Path) -> None:
    cache = cache_of(sample_home)
    act = next(a for a in cache.activities if {"garmin", "apple_health"} <= set(a.source_ids))
    data = json.loads(hc(sample_home)("show", act.id, "--json").output)
    fields = {f["name"]: f for f in data["fields"]}
    assert set(fields) >= {"distance_m", "avg_hr", "calories", "device", "timezone"}
    # garmin ranks first in the default preference and has calories; apple says otherwise.
    assert fields["calories"]["value"] == act.calories
    assert fields["calories"]["provider"] == "garmin"
    assert set(fields["calories"]["sources"]) == set(act.source_ids)
    assert fields["calories"]["sources"]["garmin"] == act.calories
    # timezone: only Apple Health knows it, so it provides it.
    assert fields["timezone"]["provider"] == "apple_health"
    assert [s["key"] for s in data["sources"]] == [f"{s}:{i}" for s, i in act.source_ids.items()]
    assert len(data["hr_splits"]) == len(act.hr_splits or [])
    rules = {m["key"]: m.get("rule") for m in data["joined"]}
    assert set(rules) == {f"{s}:{i}" for s, i in act.source_ids.items()}
    assert list(rules.values()).count(None) == 1 and "heuristic" in rules.values()
    assert data["activity"]["raw"].keys() == act.raw.keys()


def test_show_text(sample_home: Path) -> None:
    cache = cache_of(sample_home)
    act = next(a for a in cache.activities if len(a.source_ids) >= 3)
    result = hc(sample_home)("show", lookup.short_id(act.id), env={"NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    out = result.output
    assert out.startswith(f"{act.id}  (short id {lookup.short_id(act.id)})")
    assert re.search(r"^field +value +from$", out, re.M)
    assert re.search(r"^each source says +" + " +".join(act.source_ids) + "$", out, re.M)
    assert re.search(rf"^distance_m +{act.distance_m:g} +garmin$", out, re.M)
    raw_names = " +".join(re.escape(act.sport_raw.get(s, "-")) for s in act.source_ids)
    assert re.search(rf"^sport as named +{raw_names}$", out, re.M)
    assert "per-km heart rate" in out and "how it was joined:" in out
    assert not ANSI.search(out)


def test_show_marks_a_value_no_source_gives(sample_home: Path) -> None:
    store = Store(Paths(sample_home))
    with store.transaction() as tx:
        act = next(a for a in tx.cache.activities if "garmin" in a.source_ids)
        stale = msgspec.structs.replace(act, distance_m=1234.0)
        tx.save(msgspec.structs.replace(tx.cache, activities=[stale if a is act else a for a in tx.cache.activities]))
    data = json.loads(hc(sample_home)("show", act.id, "--json").output)
    dist = next(f for f in data["fields"] if f["name"] == "distance_m")
    assert dist["value"] == 1234.0 and dist["provider"] is None
    assert "rebuild would take it" in dist["note"]


# --- stats --------------------------------------------------------------------


def _expected(cache: Cache, label: Callable[[Any], str]) -> dict[tuple[str, str], dict[str, Any]]:
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for a in cache.activities:
        row = out.setdefault((label(a), a.sport), {"count": 0, "km": 0.0, "hr": []})
        row["count"] += 1
        row["km"] += (a.distance_m or 0) / 1000
        if a.avg_hr:
            row["hr"].append(a.avg_hr)
    return out


@pytest.mark.parametrize(
    ("by", "label"),
    [
        ("week", lambda a: f"{views.local_day(a).isocalendar()[0]}-W{views.local_day(a).isocalendar()[1]:02d}"),
        ("month", lambda a: views.local_day(a).strftime("%Y-%m")),
        ("year", lambda a: str(views.local_day(a).year)),
    ],
)
def test_stats_per_period_and_sport(sample_home: Path, by: str, label: Callable[[Any], str]) -> None:
    cache = cache_of(sample_home)
    rows = json.loads(hc(sample_home)("stats", "--by", by, "--json").output)
    expected = _expected(cache, label)
    assert {(r["period"], r["sport"]) for r in rows} == set(expected)
    assert [r["period"] for r in rows] == sorted((r["period"] for r in rows), reverse=True)
    for r in rows:
        e = expected[(r["period"], r["sport"])]
        assert r["count"] == e["count"]
        assert r["distance_km"] == pytest.approx(e["km"], abs=0.01)
        assert r["mean_avg_hr"] == pytest.approx(sum(e["hr"]) / len(e["hr"]), abs=0.051)
        assert r["hr_coverage"] == pytest.approx(len(e["hr"]) / e["count"], abs=0.001)


def test_stats_filters_and_hr_coverage(sample_home: Path) -> None:
    store = Store(Paths(sample_home))
    with store.transaction() as tx:  # one cycling activity without HR (a recorder without a strap)
        acts = tx.cache.activities
        bike = next(a for a in acts if a.sport == "cycling")
        no_hr = factories.activity(5, hr=False)
        no_hr = msgspec.structs.replace(
            no_hr, sport="cycling", start_time=bike.start_time, start_time_local=bike.start_time_local
        )
        tx.save(msgspec.structs.replace(tx.cache, activities=[*acts, no_hr]))
    rows = json.loads(hc(sample_home)("stats", "--by", "year", "--sport", "cycling", "--json").output)
    assert [r["sport"] for r in rows] == ["cycling"]
    (row,) = rows
    assert row["with_hr"] == row["count"] - 1
    assert row["hr_coverage"] == pytest.approx((row["count"] - 1) / row["count"], abs=0.001)
    later = json.loads(hc(sample_home)("stats", "--since", "2024-05-13", "--json").output)
    cache = cache_of(sample_home)
    assert sum(r["count"] for r in later) == sum(1 for a in cache.activities if views.local_day(a) >= date(2024, 5, 13))
    text = hc(sample_home)("stats", "--by", "month", env={"NO_COLOR": "1"}).output
    assert text.splitlines()[0].split() == [
        "month",
        "sport",
        "n",
        "km",
        "moving",
        "elev",
        "m",
        "avg",
        "HR",
        "HR",
        "cov",
    ]


# --- ID resolution in the commands that change the cache ---------------------------


def test_delete_link_and_unlink_take_short_ids(sample_home: Path) -> None:
    run = hc(sample_home)
    cache = cache_of(sample_home)
    pair = next(a for a in cache.activities if set(a.source_ids) == {"garmin", "fit"})
    fit_key = f"fit:{pair.source_ids['fit']}"
    result = run("unlink", lookup.short_id(pair.id), fit_key)
    assert result.exit_code == 0, result.output
    split = cache_of(sample_home)
    assert {a.id for a in split.activities if a.id in (pair.id, fit_key)} == {pair.id, fit_key}
    result = run("link", lookup.short_id(fit_key)[:6], lookup.short_id(pair.id))
    assert result.exit_code == 0, result.output
    assert len(cache_of(sample_home).activities) == len(cache.activities)
    lone = next(a for a in cache.activities if len(a.source_ids) == 1)
    result = run("delete", lookup.short_id(lone.id), "--reason", "double upload")
    assert result.exit_code == 0, result.output
    after = cache_of(sample_home)
    assert lone.id not in {a.id for a in after.activities}
    assert [t.id for t in after.tombstones] == [lone.id]


def test_an_ambiguous_short_id_deletes_nothing(store: Store, home: Path) -> None:
    with store.transaction() as tx:
        tx.save(factories.cache(1500))
    before = Paths(home).cache.read_bytes()
    prefix = _colliding_prefix(store.read().cache, 4)
    result = hc(home)("delete", prefix, "--reason", "test")
    assert result.exit_code == 2 and "give more digits" in result.output
    assert Paths(home).cache.read_bytes() == before
    assert hc(home)("unlink", prefix, "garmin:1").exit_code == 2


def test_names_are_text_not_markup(sample_home: Path) -> None:
    store = Store(Paths(sample_home))
    with store.transaction() as tx:
        act = tx.cache.activities[-1]
        named = msgspec.structs.replace(act, name="8x400 [/bold] [red]")
        tx.save(msgspec.structs.replace(tx.cache, activities=[*tx.cache.activities[:-1], named]))
    result = hc(sample_home)("list", "--limit", "1")
    assert result.exit_code == 0, result.output
    assert "8x400 [/bold] [red]" in result.output
    shown = hc(sample_home)("show", act.id)
    assert shown.exit_code == 0 and "8x400 [/bold] [red]" in shown.output


def test_diff_refuses_an_empty_state(sample_home: Path) -> None:
    """``diff "$(...)"`` with a command that printed nothing: said as such, not as a backup that is missing."""
    for args in ([""], ["", "current"], ["latest", ""]):
        result = hc(sample_home)("diff", *args)
        assert result.exit_code == 2
        assert "an empty state was given" in result.output and "command substitution" in result.output


@pytest.mark.parametrize(
    ("filt", "said"),
    [
        (views.Filter(sport="runing"), "no activity has the sport 'runing'; did you mean 'running'?"),
        (views.Filter(source="stava"), "no activity has the source 'stava'"),
        (views.Filter(sport="Running", source="Garmin"), None),  # both exist (any case)
        (views.Filter(sport="running", since=date(2100, 1, 1)), None),  # only the dates left nothing
    ],
)
def test_a_filter_naming_what_no_activity_has_says_so(filt: views.Filter, said: str | None) -> None:
    acts = factories.cache(3).activities
    why = views.why_none_match(acts, filt)
    assert (why is None) == (said is None)
    if said is not None:
        assert why is not None and why.startswith(said)
        assert ("running" if filt.sport else "garmin") in why  # what the cache holds instead


def test_list_and_stats_say_why_a_typo_matches_nothing(store: Store, seeded: Callable[[int], Cache], run: Any) -> None:
    seeded(3)
    for argv in (("list", "--sport", "runing"), ("stats", "--sport", "runing")):
        result = run(*argv)
        assert result.exit_code == 0
        assert "did you mean 'running'?" in result.output
    result = run("list", "--source", "Garmin")  # a source named in another case still matches
    assert result.exit_code == 0 and "no activities match" not in result.output
