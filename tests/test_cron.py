"""`cron install | show | remove` (issue 11 point 3) against the real `crontab` program and systemd-analyze."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from healthcache import cron

ROOT = Path(__file__).resolve().parents[1]
HEALTHCACHE = str(Path(sys.executable).parent / "healthcache")

# Lines another tool or a person wrote: odd spacing, a %, an environment line, comments, blanks.
OTHERS = (
    "# m h  dom mon dow   command\n"
    "MAILTO=me@example.com\n"
    "15  6 * * *   /usr/bin/backup  --all   # nightly\n"
    "\n"
    '*/5 * * * * date +"%H:%M" >> /tmp/ticks\n'
    "@reboot /usr/local/bin/hello\n"
)


def test_job_line_runs_this_installation_quietly_on_the_absolute_home(tmp_path: Path) -> None:
    home = tmp_path / "my home %1"
    line = cron.cron_line(home, 6, 5, exe=["/opt/hc/bin/healthcache"])
    assert line == (
        f"5 6 * * * /opt/hc/bin/healthcache run --quiet --home '{home}' # healthcache daily job, home={home}\n"
    ).replace("%", "\\%")
    assert cron.job_argv(Path("rel"), exe=["x"]) == ["x", "run", "--quiet", "--home", str(Path("rel").absolute())]
    assert cron.executable() == [HEALTHCACHE]


def test_install_is_idempotent_and_keeps_every_other_line_byte_identical(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    exe = ["/x/healthcache"]
    one = cron.plan_install(OTHERS, cron.cron_line(a, 6, 15, exe), a)
    assert one.action == "added" and one.after == OTHERS + cron.cron_line(a, 6, 15, exe)
    assert cron.plan_install(one.after, cron.cron_line(a, 6, 15, exe), a).action == "unchanged"
    two = cron.plan_install(one.after, cron.cron_line(b, 7, 0, exe), b)
    assert cron.installed_lines(two.after, a) == [cron.cron_line(a, 6, 15, exe).rstrip("\n")]
    moved = cron.plan_install(two.after, cron.cron_line(a, 5, 45, exe), a)
    assert moved.action == "replaced" and moved.after.count("home=" + str(a) + "\n") == 1
    assert moved.after.index(str(a)) < moved.after.index(str(b))  # replaced in place
    gone = cron.plan_remove(moved.after, a)
    assert gone.action == "removed" and gone.after == OTHERS + cron.cron_line(b, 7, 0, exe)
    assert cron.plan_remove(cron.plan_remove(gone.after, b).after, b).action == "absent"
    assert cron.plan_remove(gone.after, b).after == OTHERS
    # a table without a final newline gets one before our line, and nothing else changes
    assert cron.plan_install("@daily x", cron.cron_line(a, 1, 2, exe), a).after.startswith("@daily x\n")
    # a commented-out copy of our line is the user's, not ours
    commented = "# " + cron.cron_line(a, 1, 2, exe)
    assert cron.plan_remove(commented, a).action == "absent"


def test_next_run_of_a_daily_time() -> None:
    now = datetime.fromisoformat("2026-03-01T06:15:00+01:00")
    assert cron.next_run(6, 15, now).isoformat() == "2026-03-02T06:15:00+01:00"
    assert cron.next_run(6, 16, now).isoformat() == "2026-03-01T06:16:00+01:00"
    assert cron.parse_at("7:05") == (7, 5)
    for bad in ("24:00", "6", "06:60", "six"):
        with pytest.raises(Exception, match="HH:MM"):
            cron.parse_at(bad)


def test_readme_shows_the_line_cron_install_writes() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- shape:cron -->\n```text\n(.*?)```", readme, re.S)
    assert block is not None
    expected = cron.cron_line(Path("/home/me/training"), 6, 15, exe=["/home/me/.venv/bin/healthcache"])
    assert block.group(1) == expected


# --------------------------------------------------------------------------- the real crontab program


@pytest.fixture
def cron_user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A throwaway system user whose crontab healthcache edits, removed after.

    healthcache runs in-process (as root) and finds, first on PATH, a two-line
    ``crontab`` that calls the real program with ``-u USER``: the real crontab
    program reads and installs the table; only the user it works on changes.
    """
    real = shutil.which("crontab")
    if real is None:
        pytest.fail("the crontab program is missing: .ci/run installs Debian's cron package")
    if os.geteuid() != 0 or shutil.which("useradd") is None:
        pytest.skip("needs root with useradd to make a throwaway user (CI runs as root)")
    name = f"hccron{secrets.token_hex(3)}"
    subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name], check=True)
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "crontab").write_text(f'#!/bin/sh\nexec {real} -u {name} "$@"\n')
    (shim / "crontab").chmod(0o755)
    monkeypatch.setenv("PATH", f"{shim}:{os.environ.get('PATH', '/usr/bin:/bin')}")
    try:
        yield name
    finally:
        subprocess.run([real, "-u", name, "-r"], capture_output=True, check=False)
        subprocess.run(["userdel", name], capture_output=True, check=False)


def workspace(path: Path) -> Path:
    """A real workspace, as ``healthcache init`` makes it (install refuses any other folder)."""
    from healthcache.workspace import init

    init(path)
    return path


def table(user: str) -> str:
    done = subprocess.run(["/usr/bin/crontab", "-u", user, "-l"], capture_output=True, text=True, check=False)
    return done.stdout if done.returncode == 0 else ""


def test_real_crontab_install_show_remove(cron_user: str, tmp_path: Path) -> None:
    from tests.conftest import Run

    user = cron_user
    subprocess.run(["/usr/bin/crontab", "-u", user, "-"], input=OTHERS, text=True, check=True)
    assert table(user) == OTHERS
    a, b = workspace(tmp_path / "home a"), workspace(tmp_path / "b")
    hc_a, hc_b = Run(a), Run(b)

    done = hc_a("cron", "install")
    assert done.exit_code == 0, done.output
    assert hc_a("cron", "install").exit_code == 0  # twice: one entry
    assert hc_b("cron", "install", "--at", "21:30").exit_code == 0
    line_a = f"15 6 * * * {HEALTHCACHE} run --quiet --home '{a}' # healthcache daily job, home={a}\n"
    line_b = f"30 21 * * * {HEALTHCACHE} run --quiet --home {b} # healthcache daily job, home={b}\n"
    assert table(user) == OTHERS + line_a + line_b
    assert "run --quiet --home" in done.stdout and "next run" in done.stdout

    shown = hc_b("cron", "show", "--json")
    assert shown.exit_code == 0, shown.output
    (entry,) = json.loads(shown.stdout)
    assert entry["kind"] == "crontab" and entry["at"] == "21:30" and entry["line"] == line_b.rstrip("\n")
    assert datetime.fromisoformat(entry["next_run"]).strftime("%H:%M") == "21:30"

    dry = hc_a("cron", "remove", "--dry-run")
    assert dry.exit_code == 0 and table(user) == OTHERS + line_a + line_b
    assert hc_a("cron", "remove").exit_code == 0
    assert table(user) == OTHERS + line_b  # every other line byte-identical
    assert hc_a("cron", "show").stdout.strip() == "nothing is installed for this home"
    assert hc_b("cron", "remove").exit_code == 0
    assert table(user) == OTHERS


def test_real_crontab_dry_run_changes_nothing(cron_user: str, tmp_path: Path) -> None:
    from tests.conftest import Run

    done = Run(workspace(tmp_path / "h"))("cron", "install", "--dry-run")
    assert done.exit_code == 0, done.output
    assert "would be installed" in done.stdout and table(cron_user) == ""


# --------------------------------------------------------------------------- systemd


def test_systemd_units_are_written_verified_and_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.conftest import Run

    xdg = tmp_path / "xdg"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(xdg))
    monkeypatch.setenv("PATH", "/nonexistent")  # no systemctl: the commands are printed instead
    home = workspace(tmp_path / "home")
    run = Run(home)
    result = run("cron", "install", "--systemd", "--at", "05:40")
    assert result.exit_code == 0, result.output
    name = cron.unit_name(home)
    folder = xdg / "systemd" / "user"
    assert sorted(p.name for p in folder.iterdir()) == [f"{name}.service", f"{name}.timer"]
    assert f"$ systemctl --user enable --now {name}.timer" in result.output
    service = (folder / f"{name}.service").read_text()
    assert f"ExecStart={HEALTHCACHE} run --quiet --home {home}\n" in service
    assert "OnCalendar=*-*-* 05:40:00\n" in (folder / f"{name}.timer").read_text()
    assert run("cron", "install", "--systemd", "--at", "05:40").output.startswith("systemd: already installed")
    other = Run(workspace(tmp_path / "other home"))
    assert other("cron", "install", "--systemd").exit_code == 0
    assert len(list(folder.iterdir())) == 4  # one pair per home

    analyze = shutil.which("systemd-analyze", path="/usr/bin:/bin:/usr/sbin")
    if analyze is not None:
        for unit_home in (home, tmp_path / "other home"):
            units = [str(folder / f"{cron.unit_name(unit_home)}.{k}") for k in ("service", "timer")]
            done = subprocess.run([analyze, "verify", *units], capture_output=True, text=True, check=False)
            assert done.returncode == 0, done.stderr

    shown = json.loads(run("cron", "show", "--json").stdout)
    assert [(e["kind"], e["at"]) for e in shown] == [("systemd", "05:40")]
    assert run("cron", "remove").exit_code == 0
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        f"{cron.unit_name(tmp_path / 'other home')}.{k}" for k in ("service", "timer")
    )


def test_systemd_analyze_rejects_a_broken_unit(tmp_path: Path) -> None:
    """The check above can fail: a unit whose command does not exist is refused."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    units = cron.units(tmp_path, 6, 0, exe=[str(tmp_path / "no-such-healthcache")])
    paths = []
    for name, text in units.items():
        (tmp_path / name).write_text(text)
        paths.append(str(tmp_path / name))
    assert subprocess.run([analyze, "verify", *paths], capture_output=True, check=False).returncode != 0


def test_cron_without_the_crontab_program_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.conftest import Run

    monkeypatch.setenv("PATH", str(tmp_path))
    result = Run(workspace(tmp_path / "h"))("cron", "install")
    assert result.exit_code == 1
    assert "crontab program was not found" in result.stderr and "--systemd" in result.stderr


# --------------------------------------------------------------------------- one home, any spelling; only workspaces;
# the variables the job needs; a timer never enabled


def spellings(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A workspace, the same folder through ``..``, and a symlink to it."""
    ws = workspace(tmp_path / "x" / "ws")
    link = tmp_path / "x" / "wslink"
    link.symlink_to(ws)
    return ws, tmp_path / "x" / "ws" / ".." / "ws", link


def test_real_crontab_one_entry_per_home_under_any_spelling(cron_user: str, tmp_path: Path) -> None:
    from tests.conftest import Run

    ws, dotted, link = spellings(tmp_path)
    other = workspace(tmp_path / "other")
    subprocess.run(["/usr/bin/crontab", "-u", cron_user, "-"], input=OTHERS, text=True, check=True)
    assert Run(other)("cron", "install", "--at", "07:00").exit_code == 0
    theirs = table(cron_user)
    for home in (ws, dotted, link):
        done = Run(home)("cron", "install")
        assert done.exit_code == 0, done.output
    ours = f"15 6 * * * {HEALTHCACHE} run --quiet --home {ws} # healthcache daily job, home={ws}\n"
    assert table(cron_user) == theirs + ours  # one line, naming the resolved folder
    for home in (dotted, link):
        (entry,) = json.loads(Run(home)("cron", "show", "--json").stdout)
        assert entry["home"] == str(ws) and entry["line"] == ours.rstrip("\n")

    # lines written before the home was resolved, under other spellings, are this home's too
    stale = cron.cron_line(link, 5, 0, exe=[HEALTHCACHE]) + cron.cron_line(dotted, 4, 0, exe=[HEALTHCACHE])
    subprocess.run(["/usr/bin/crontab", "-u", cron_user, "-"], input=theirs + stale, text=True, check=True)
    shown = Run(ws)("cron", "show")
    assert shown.exit_code == 0, shown.output
    assert shown.stdout.count("crontab: installed") == 2 and "2 daily jobs point at this home" in shown.stdout
    assert Run(ws)("cron", "remove", "--dry-run").exit_code == 0 and table(cron_user) == theirs + stale
    removed = Run(ws)("cron", "remove")
    assert removed.exit_code == 0 and removed.stdout.count("removed: ") == 2
    assert table(cron_user) == theirs  # every other line, the other home's too, byte-identical
    assert Run(ws)("cron", "show").stdout.strip() == "nothing is installed for this home"

    # an upgrade's install replaces the stale spellings with one line
    subprocess.run(["/usr/bin/crontab", "-u", cron_user, "-"], input=theirs + stale, text=True, check=True)
    assert Run(link)("cron", "install").exit_code == 0
    assert table(cron_user) == theirs + ours


def test_install_refuses_a_folder_that_is_not_a_workspace(cron_user: str, tmp_path: Path) -> None:
    from tests.conftest import Run

    subprocess.run(["/usr/bin/crontab", "-u", cron_user, "-"], input=OTHERS, text=True, check=True)
    typo = tmp_path / "traning"
    empty = tmp_path / "empty"
    empty.mkdir()
    for folder in (typo, empty):
        for extra in ([], ["--dry-run"], ["--systemd"]):
            done = Run(folder)("cron", "install", *extra)
            assert done.exit_code == 2, done.output
            assert str(folder) in done.stderr and f"healthcache init {folder}" in done.stderr
    assert not typo.exists() and list(empty.iterdir()) == []
    assert table(cron_user) == OTHERS
    assert not (cron.systemd_dir() / f"{cron.unit_name(typo)}.timer").exists()
    # a folder that is one by either marker is accepted
    cached = tmp_path / "cached"
    (cached / "tracking").mkdir(parents=True)
    (cached / "tracking" / "unified-cache.json").write_text("{}")
    assert Run(cached)("cron", "install").exit_code == 0 and str(cached) in table(cron_user)


def test_real_crontab_carries_the_credentials_folder_and_no_secret(
    cron_user: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import Run

    home = workspace(tmp_path / "h")
    creds = tmp_path / "my creds %x"
    monkeypatch.setenv("HEALTHCACHE_CREDENTIALS_DIR", str(creds))
    monkeypatch.setenv("HEALTHCACHE_PG_URL", "postgresql://me:hunter2@db/x")
    done = Run(home)("cron", "install")
    assert done.exit_code == 0, done.output
    assign = f"HEALTHCACHE_CREDENTIALS_DIR='{creds}'".replace("%", "\\%")
    assert table(cron_user) == f"15 6 * * * {assign} {HEALTHCACHE} run --quiet --home {home} {cron.marker(home)}\n"
    assert (
        "hunter2" not in table(cron_user) + done.output and "HEALTHCACHE_PG_URL ([export] postgres_url)" in done.stdout
    )
    monkeypatch.delenv("HEALTHCACHE_CREDENTIALS_DIR")
    (entry,) = json.loads(Run(home)("cron", "show", "--json").stdout)
    assert entry["env"] == {"HEALTHCACHE_CREDENTIALS_DIR": str(creds)}
    assert f"environment: HEALTHCACHE_CREDENTIALS_DIR={creds}" in Run(home)("cron", "show").stdout


def test_the_carried_variable_reaches_the_job_through_sh_as_cron_runs_it(tmp_path: Path) -> None:
    """The line's command, unescaped as cron does, run by /bin/sh with an empty environment."""
    creds = tmp_path / "it's 100% mine"
    env = cron.carried_env({"HEALTHCACHE_CREDENTIALS_DIR": str(creds), "HEALTHCACHE_GARMIN_PASSWORD": "pw"})
    assert env == {"HEALTHCACHE_CREDENTIALS_DIR": str(creds)}
    probe = [sys.executable, "-c", "import os; print(os.environ['HEALTHCACHE_CREDENTIALS_DIR'])"]
    line = cron.cron_line(tmp_path, 6, 15, exe=probe, env=env)
    command = line.split(None, 5)[5].replace("\\%", "%")
    done = subprocess.run(["/bin/sh", "-c", command], env={}, capture_output=True, text=True, check=True)
    assert done.stdout == f"{creds}\n"
    assert cron.line_env(line) == env


def test_systemd_service_carries_the_variables(tmp_path: Path) -> None:
    env = {"HEALTHCACHE_CREDENTIALS_DIR": str(tmp_path / 'a "quoted" 50% folder')}
    units = cron.units(tmp_path, 6, 0, exe=[HEALTHCACHE], env=env)
    service = units[f"{cron.unit_name(tmp_path)}.service"]
    assert cron.unit_env(service) == env and "Environment=" in service
    analyze = shutil.which("systemd-analyze")
    if analyze is not None:
        paths = []
        for name, text in units.items():
            (tmp_path / name).write_text(text)
            paths.append(str(tmp_path / name))
        done = subprocess.run([analyze, "verify", *paths], capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr


def test_systemd_units_of_another_spelling_are_this_homes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.conftest import Run

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("PATH", "/nonexistent")
    ws, _dotted, link = spellings(tmp_path)
    folder = cron.systemd_dir()
    folder.mkdir(parents=True)
    for name, text in cron.units(link, 5, 0, exe=[HEALTHCACHE]).items():  # as a release before this fix wrote them
        (folder / name).write_text(text)
    shown = json.loads(Run(ws)("cron", "show", "--json").stdout)
    assert [(e["kind"], e["at"]) for e in shown] == [("systemd", "05:00")]
    done = Run(ws)("cron", "install", "--systemd")
    assert done.exit_code == 0, done.output
    own = cron.unit_name(ws)
    assert sorted(p.name for p in folder.iterdir()) == [f"{own}.service", f"{own}.timer"]
    assert f"--home {ws}\n" in (folder / f"{own}.service").read_text()
    for name, text in cron.units(link, 5, 0, exe=[HEALTHCACHE]).items():
        (folder / name).write_text(text)
    assert "2 daily jobs point at this home" in Run(link)("cron", "show").stdout
    assert Run(link)("cron", "remove").exit_code == 0 and list(folder.iterdir()) == []


def test_show_says_a_timer_never_enabled_is_not_enabled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No user session: a stand-in systemctl fails as the real one does without a bus."""
    from tests.conftest import Run

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "systemctl").write_text("#!/bin/sh\necho 'Failed to connect to bus: No medium found' >&2\nexit 1\n")
    (shim / "systemctl").chmod(0o755)
    monkeypatch.setenv("PATH", f"{shim}:/usr/bin:/bin")
    home = workspace(tmp_path / "h")
    done = Run(home)("cron", "install", "--systemd")
    assert done.exit_code == 0 and "run these commands" in done.stdout
    shown = Run(home)("cron", "show")
    assert shown.exit_code == 0, shown.output
    assert "not known to be enabled (Failed to connect to bus" in shown.stdout
    assert "next run" not in shown.stdout and "set to run daily at 06:15 once enabled" in shown.stdout
    assert f"$ systemctl --user enable --now {cron.unit_name(home)}.timer" in shown.stdout
    (entry,) = json.loads(Run(home)("cron", "show", "--json").stdout)
    assert entry["action"] == "not enabled" and entry["next_run"] is None
    monkeypatch.setenv("PATH", "/nonexistent")  # no systemctl at all
    assert "not known to be enabled (systemctl is not on PATH)" in Run(home)("cron", "show").stdout


def test_is_enabled_answers_are_read_as_systemctl_gives_them() -> None:
    assert cron.enabled_state(0, "enabled\n", "") == (True, "enabled")
    assert cron.enabled_state(1, "disabled\n", "") == (False, "disabled")
    assert cron.enabled_state(1, "", "Failed to connect to bus: No medium found\n") == (
        None,
        "Failed to connect to bus: No medium found",
    )
    assert cron.enabled_state(4, "", "") == (None, "exit status 4")
