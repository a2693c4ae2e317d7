"""The daily job: a user crontab entry (the system ``crontab`` program) or a systemd user timer.

One function (``job_argv``) says what the job runs: this installation's
``healthcache run --quiet --home <home>``, absolute paths.  Each home has its
own entry, found again by a marker naming the home, so installing twice leaves
one entry, several homes get one each, and ``remove`` takes out only this
home's line and leaves every other line byte-identical.

The crontab is edited as text through ``crontab -l`` / ``crontab -`` rather
than python-crontab: that library re-renders every line it parses (it turns
``15  6`` into ``15 6`` and ``a%b`` into ``a %b``), and other people's lines
must come back exactly as they were.  The next run of a daily HH:MM is simple
enough to compute here (no croniter).
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from healthcache import atomic
from healthcache.errors import HealthcacheError, UsageError

DEFAULT_AT = "06:15"
MARKER = "# healthcache daily job, home="
_AT = re.compile(r"^(?P<h>[01]?\d|2[0-3]):(?P<m>[0-5]\d)$")


class CronError(HealthcacheError):
    """The scheduler could not be read or changed (crontab missing, refused)."""


def parse_at(text: str) -> tuple[int, int]:
    """``HH:MM`` (24 h) -> (hour, minute); anything else is a usage error."""
    m = _AT.match(text.strip())
    if m is None:
        raise UsageError(f"--at must be a time of day as HH:MM (24 h), got {text!r}")
    return int(m["h"]), int(m["m"])


def next_run(hour: int, minute: int, now: datetime) -> datetime:
    """The next daily HH:MM after ``now`` (local time, as cron and systemd read it)."""
    at = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    return at if at > now else at + timedelta(days=1)


def executable() -> list[str]:
    """This installation's ``healthcache``: the console script beside this Python, else ``python -m``."""
    script = Path(sys.executable).parent / "healthcache"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script.absolute())]
    return [str(Path(sys.executable).absolute()), "-m", "healthcache"]


def job_argv(home: Path, exe: list[str] | None = None) -> list[str]:
    """What the daily job runs: the whole daily loop, quietly, for this home."""
    return [*(exe or executable()), "run", "--quiet", "--home", str(home.absolute())]


# --------------------------------------------------------------------------- crontab


def _check_text(home: Path) -> None:
    if "\n" in str(home) or "\r" in str(home):
        raise UsageError(f"a home whose path holds a line break cannot be scheduled: {str(home)!r}")


def marker(home: Path) -> str:
    # cron turns an unescaped % anywhere in the command part into a newline
    return (MARKER + str(home.absolute())).replace("%", "\\%")


def cron_line(home: Path, hour: int, minute: int, exe: list[str] | None = None) -> str:
    """The crontab line for this home: the job, then the marker that finds it again (a shell comment)."""
    _check_text(home)
    command = shlex.join(job_argv(home, exe)).replace("%", "\\%")
    return f"{minute} {hour} * * * {command} {marker(home)}\n"


def _is_ours(line: str, home: Path) -> bool:
    return line.rstrip("\r\n").endswith(marker(home)) and not line.lstrip().startswith("#")


@dataclass(frozen=True)
class Edit:
    """A crontab before and after, and what changed (pure planning)."""

    before: str
    after: str
    action: str  # "added" | "replaced" | "unchanged" | "removed" | "absent"
    removed: tuple[str, ...] = ()


def plan_install(current: str, line: str, home: Path) -> Edit:
    """Put this home's line in ``current``: in place of its old one, else at the end."""
    lines = current.splitlines(keepends=True)
    ours = [i for i, text in enumerate(lines) if _is_ours(text, home)]
    if ours:
        if len(ours) == 1 and lines[ours[0]] == line:
            return Edit(current, current, "unchanged")
        first = ours[0]
        kept = [text for i, text in enumerate(lines) if i not in ours[1:]]
        kept[first] = line
        return Edit(current, "".join(kept), "replaced", tuple(lines[i] for i in ours))
    head = current if not current or current.endswith("\n") else current + "\n"
    return Edit(current, head + line, "added")


def plan_remove(current: str, home: Path) -> Edit:
    """``current`` without this home's line; every other line as it was, byte for byte."""
    lines = current.splitlines(keepends=True)
    gone = tuple(text for text in lines if _is_ours(text, home))
    if not gone:
        return Edit(current, current, "absent")
    return Edit(current, "".join(text for text in lines if not _is_ours(text, home)), "removed", gone)


def installed_lines(current: str, home: Path) -> list[str]:
    return [text.rstrip("\n") for text in current.splitlines(keepends=True) if _is_ours(text, home)]


def line_time(line: str) -> tuple[int, int] | None:
    """(hour, minute) of a daily line this module wrote."""
    parts = line.split(None, 5)
    if len(parts) >= 5 and parts[0].isdigit() and parts[1].isdigit() and parts[2:5] == ["*", "*", "*"]:
        return int(parts[1]), int(parts[0])
    return None


def _crontab() -> str:
    found = shutil.which("crontab")
    if found is None:
        raise CronError(
            "the crontab program was not found on PATH",
            hint="Install cron (Debian/Ubuntu: apt-get install cron), or use a systemd timer: "
            "healthcache cron install --systemd",
        )
    return found


def read_crontab() -> str:
    """This user's crontab as text ('' when there is none)."""
    done = subprocess.run([_crontab(), "-l"], capture_output=True, text=True, check=False)
    if done.returncode == 0:
        return done.stdout
    if "no crontab for" in done.stderr.lower():
        return ""
    raise CronError(f"crontab -l failed: {done.stderr.strip() or done.returncode}")


def write_crontab(text: str) -> None:
    """Replace this user's crontab (the program installs it whole, as cron expects)."""
    done = subprocess.run([_crontab(), "-"], input=text, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise CronError(
            f"crontab refused the new table: {done.stderr.strip() or done.returncode}",
            hint="Your crontab was left as it was.",
        )


# --------------------------------------------------------------------------- systemd


def unit_name(home: Path) -> str:
    """One unit pair per home: the name carries a hash of its absolute path."""
    return "healthcache-" + hashlib.sha256(str(home.absolute()).encode()).hexdigest()[:12]


def systemd_dir(environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME") or Path.home()) / ".config")
    return Path(base) / "systemd" / "user"


def _unit_quote(arg: str) -> str:
    """One ExecStart word: specifiers (%) and variables ($) kept literal, quoted when needed."""
    arg = arg.replace("%", "%%").replace("$", "$$")
    if re.search(r'[\s"\'\\;]', arg) or not arg:
        return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return arg


def units(home: Path, hour: int, minute: int, exe: list[str] | None = None) -> dict[str, str]:
    """The service and timer for this home, file name -> text."""
    _check_text(home)
    name = unit_name(home)
    where = str(home.absolute()).replace("%", "%%")
    service = (
        "[Unit]\n"
        f"Description=healthcache daily run for {where}\n\n"
        "[Service]\n"
        "Type=oneshot\n"
        f"ExecStart={' '.join(_unit_quote(a) for a in job_argv(home, exe))}\n"
    )
    timer = (
        "[Unit]\n"
        f"Description=healthcache daily run for {where}\n\n"
        "[Timer]\n"
        f"OnCalendar=*-*-* {hour:02d}:{minute:02d}:00\n"
        "Persistent=true\n\n"
        "[Install]\n"
        "WantedBy=timers.target\n"
    )
    return {f"{name}.service": service, f"{name}.timer": timer}


def enable_commands(home: Path) -> list[list[str]]:
    return [
        ["systemctl", "--user", "daemon-reload"],
        ["systemctl", "--user", "enable", "--now", f"{unit_name(home)}.timer"],
    ]


def disable_commands(home: Path) -> list[list[str]]:
    return [
        ["systemctl", "--user", "disable", "--now", f"{unit_name(home)}.timer"],
        ["systemctl", "--user", "daemon-reload"],
    ]


def _systemctl(commands: list[list[str]]) -> tuple[bool, str | None]:
    """Run the systemctl commands when there is a user manager; (done, why not)."""
    if shutil.which("systemctl") is None:
        return False, "systemctl is not on PATH"
    for argv in commands:
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            return (
                False,
                f"{shlex.join(argv)}: {done.stderr.strip().splitlines()[0] if done.stderr.strip() else done.returncode}",
            )
    return True, None


def timer_time(text: str) -> tuple[int, int] | None:
    m = re.search(r"^OnCalendar=\*-\*-\* (\d\d):(\d\d)", text, re.M)
    return (int(m[1]), int(m[2])) if m else None


# --------------------------------------------------------------------------- the commands


@dataclass
class CronResult:
    """What ``cron install|show|remove`` did or found; ``commands`` are left for the user to run."""

    home: str
    kind: str  # "crontab" | "systemd"
    action: str
    dry_run: bool = False
    line: str | None = None
    at: str | None = None
    next_run: str | None = None
    files: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    note: str | None = None
    removed: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def install(home: Path, at: str, *, systemd: bool, dry_run: bool, now: datetime | None = None) -> CronResult:
    hour, minute = parse_at(at)
    home = home.absolute()
    now = now or datetime.now().astimezone()
    when = next_run(hour, minute, now).isoformat(timespec="minutes")
    if systemd:
        return _install_systemd(home, hour, minute, dry_run, when)
    line = cron_line(home, hour, minute)
    edit = plan_install(read_crontab(), line, home)
    if edit.action != "unchanged" and not dry_run:
        write_crontab(edit.after)
    return CronResult(
        str(home),
        "crontab",
        edit.action,
        dry_run,
        line=line.rstrip("\n"),
        at=f"{hour:02d}:{minute:02d}",
        next_run=when,
        removed=[r.rstrip("\n") for r in edit.removed],
    )


def _install_systemd(home: Path, hour: int, minute: int, dry_run: bool, when: str) -> CronResult:
    folder = systemd_dir()
    wanted = units(home, hour, minute)
    result = CronResult(str(home), "systemd", "unchanged", dry_run, at=f"{hour:02d}:{minute:02d}", next_run=when)
    result.files = [str(folder / name) for name in wanted]
    olds: dict[str, str | None] = {}
    for name in wanted:
        try:
            olds[name] = (folder / name).read_text(encoding="utf-8")
        except FileNotFoundError:
            olds[name] = None
    if all(old is None for old in olds.values()):
        result.action = "added"
    elif any(olds[name] != text for name, text in wanted.items()):
        result.action = "replaced"
    if not dry_run:
        for name, text in wanted.items():
            if olds[name] != text:
                atomic.save_atomic(folder / name, text.encode(), mode=0o644)
    commands = enable_commands(home)
    if dry_run:
        result.commands = [shlex.join(c) for c in commands]
        return result
    done, why = _systemctl(commands)
    if not done:
        result.commands = [shlex.join(c) for c in commands]
        result.note = f"not enabled here ({why}); run these commands in your user session"
    return result


def show(home: Path, now: datetime | None = None) -> list[CronResult]:
    """Every job installed for this home (crontab line, systemd timer) and when it runs next."""
    home = home.absolute()
    now = now or datetime.now().astimezone()
    found: list[CronResult] = []
    if shutil.which("crontab") is not None:
        for line in installed_lines(read_crontab(), home):
            t = line_time(line)
            found.append(
                CronResult(
                    str(home),
                    "crontab",
                    "installed",
                    line=line,
                    at=None if t is None else f"{t[0]:02d}:{t[1]:02d}",
                    next_run=None if t is None else next_run(*t, now).isoformat(timespec="minutes"),
                )
            )
    timer = systemd_dir() / f"{unit_name(home)}.timer"
    try:
        text = timer.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = None
    if text is not None:
        t = timer_time(text)
        found.append(
            CronResult(
                str(home),
                "systemd",
                "installed",
                at=None if t is None else f"{t[0]:02d}:{t[1]:02d}",
                next_run=None if t is None else next_run(*t, now).isoformat(timespec="minutes"),
                files=[str(timer.with_suffix(".service")), str(timer)],
            )
        )
    return found


def remove(home: Path, *, dry_run: bool) -> list[CronResult]:
    """Take out this home's crontab line and systemd units, and nothing else."""
    home = home.absolute()
    out: list[CronResult] = []
    if shutil.which("crontab") is not None:
        edit = plan_remove(read_crontab(), home)
        if edit.action == "removed" and not dry_run:
            write_crontab(edit.after)
        out.append(
            CronResult(str(home), "crontab", edit.action, dry_run, removed=[r.rstrip("\n") for r in edit.removed])
        )
    folder = systemd_dir()
    present = [folder / f"{unit_name(home)}.{kind}" for kind in ("timer", "service")]
    present = [p for p in present if p.exists()]
    if present:
        result = CronResult(str(home), "systemd", "removed", dry_run, files=[str(p) for p in present])
        if not dry_run:
            done, why = _systemctl(disable_commands(home)[:1])
            for p in present:
                p.unlink()
            _systemctl(disable_commands(home)[1:])
            if not done:
                result.note = f"systemctl could not disable the timer ({why}); the unit files are removed"
        out.append(result)
    return out
