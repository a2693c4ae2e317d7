"""The daily job: a user crontab entry (the system ``crontab`` program) or a systemd user timer.

One function (``job_argv``) says what the job runs: this installation's
``healthcache run --quiet --home <home>``, absolute paths.  Each home has its
own entry, found again by a marker naming the home, so installing twice leaves
one entry, several homes get one each, and ``remove`` takes out only this
home's line and leaves every other line byte-identical.  The home is resolved
(symlinks, ``..``) before it names anything, and an entry whose marker names
another spelling of the same folder (written before homes were resolved) is
this home's too: ``show`` counts it, ``install`` and ``remove`` take it out.

The job's environment is nearly empty, so ``install`` carries the variables
that change where healthcache looks (``CARRIED_ENV``: paths, never a secret)
into the line or unit.

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
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from healthcache import atomic
from healthcache.errors import HealthcacheError, UsageError

DEFAULT_AT = "06:15"
MARKER = "# healthcache daily job, home="
_AT = re.compile(r"^(?P<h>[01]?\d|2[0-3]):(?P<m>[0-5]\d)$")
# Variables that change where healthcache looks and that the job must see as the user's shell does:
# each is a folder (checked: never a secret).  The endpoint and database overrides
# (config.ENV_OVERRIDES) are not carried: each has a healthcache.toml key the job reads, and the
# database URL may hold a password.
CARRIED_ENV: tuple[str, ...] = ("HEALTHCACHE_CREDENTIALS_DIR",)
_ENV_WORD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


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


def carried_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The ``CARRIED_ENV`` variables set here, each as the absolute folder healthcache would use."""
    out: dict[str, str] = {}
    for name in CARRIED_ENV:
        value = environ.get(name)
        if value:
            folder = str(Path(value).expanduser().absolute())  # as config.Paths.credentials reads it
            _check_text(Path(folder), what=f"${name}")
            out[name] = folder
    return out


def not_carried(environ: Mapping[str, str]) -> list[str]:
    """Overrides set here that the job will not see, each with the healthcache.toml key that would."""
    from healthcache.config import ENV_OVERRIDES

    return [f"{var} ([{sec}] {key})" for var, (sec, key) in ENV_OVERRIDES.items() if environ.get(var)]


def require_workspace(home: Path) -> None:
    """A job for a folder that is not a workspace (a typo) would make that folder every day: refuse."""
    from healthcache.config import workspace_marker

    if workspace_marker(home) is None:
        what = "does not exist" if not home.exists() else "is not a healthcache workspace"
        raise UsageError(
            f"{home} {what} (no healthcache.toml, no tracking/unified-cache.json): no daily job installed",
            hint=f"Check the path, or make it a workspace first: healthcache init {shlex.quote(str(home))}",
        )


# --------------------------------------------------------------------------- crontab


def _check_text(home: Path, what: str = "a home") -> None:
    if "\n" in str(home) or "\r" in str(home):
        raise UsageError(f"{what} whose path holds a line break cannot be scheduled: {str(home)!r}")


def marker(home: Path) -> str:
    # cron turns an unescaped % anywhere in the command part into a newline
    return (MARKER + str(home.absolute())).replace("%", "\\%")


def cron_line(
    home: Path, hour: int, minute: int, exe: list[str] | None = None, env: Mapping[str, str] | None = None
) -> str:
    """The crontab line for this home: the variables it carries, the job, then the marker that finds it
    again (a shell comment)."""
    _check_text(home)
    assigns = [f"{name}={shlex.quote(value)}" for name, value in (env or {}).items()]
    command = " ".join([*assigns, shlex.join(job_argv(home, exe))]).replace("%", "\\%")
    return f"{minute} {hour} * * * {command} {marker(home)}\n"


def line_home(line: str) -> str | None:
    """The home a live healthcache line names in its marker; None for any other line (or a commented one)."""
    text = line.rstrip("\r\n")
    at = text.rfind(MARKER)
    if at < 0 or text.lstrip().startswith("#"):
        return None
    return text[at + len(MARKER) :].replace("\\%", "%")


def line_env(line: str) -> dict[str, str]:
    """The variables a healthcache line sets before its command (what ``cron_line`` wrote)."""
    parts = line.split(None, 5)
    command = parts[5] if len(parts) == 6 else ""
    command = command[: command.rfind(MARKER)] if MARKER in command else command
    try:
        words = shlex.split(command.replace("\\%", "%"))
    except ValueError:
        return {}
    env: dict[str, str] = {}
    for word in words:
        if not _ENV_WORD.match(word):
            break
        name, _, value = word.partition("=")
        env[name] = value
    return env


def same_home(named: str | None, home: Path) -> bool:
    """Whether a path an entry names is this (resolved) home under any spelling: symlinks, ``..``."""
    if named is None or not Path(named).is_absolute():
        return False
    target = home.absolute()
    try:
        return Path(named) == target or Path(named).resolve() == target.resolve()
    except (OSError, RuntimeError):  # a symlink loop, an unreadable folder: not provably this home
        return False


def _is_ours(line: str, home: Path) -> bool:
    return same_home(line_home(line), home)


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


def _env_line(name: str, value: str) -> str:
    """One ``Environment=`` assignment, specifiers (%) kept literal, quoted as systemd reads it."""
    text = f"{name}={value}".replace("%", "%%")
    return 'Environment="' + text.replace("\\", "\\\\").replace('"', '\\"') + '"\n'


def units(
    home: Path, hour: int, minute: int, exe: list[str] | None = None, env: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The service and timer for this home, file name -> text."""
    _check_text(home)
    name = unit_name(home)
    where = str(home.absolute()).replace("%", "%%")
    service = (
        "[Unit]\n"
        f"Description={_DESCRIPTION}{where}\n\n"
        "[Service]\n"
        "Type=oneshot\n"
        + "".join(_env_line(k, v) for k, v in (env or {}).items())
        + f"ExecStart={' '.join(_unit_quote(a) for a in job_argv(home, exe))}\n"
    )
    timer = (
        "[Unit]\n"
        f"Description={_DESCRIPTION}{where}\n\n"
        "[Timer]\n"
        f"OnCalendar=*-*-* {hour:02d}:{minute:02d}:00\n"
        "Persistent=true\n\n"
        "[Install]\n"
        "WantedBy=timers.target\n"
    )
    return {f"{name}.service": service, f"{name}.timer": timer}


_DESCRIPTION = "healthcache daily run for "


def unit_home(text: str) -> str | None:
    """The home a unit this module wrote names in its Description."""
    m = re.search(rf"^Description={_DESCRIPTION}(.*)$", text, re.M)
    return m[1].replace("%%", "%") if m else None


def unit_env(text: str) -> dict[str, str]:
    """The variables a service this module wrote sets (what ``_env_line`` wrote)."""
    env: dict[str, str] = {}
    for m in re.finditer(r'^Environment="((?:[^"\\]|\\.)*)"$', text, re.M):
        name, _, value = re.sub(r"\\(.)", r"\1", m[1]).replace("%%", "%").partition("=")
        env[name] = value
    return env


def units_for(folder: Path, home: Path) -> list[str]:
    """The unit names (no suffix) of every timer in ``folder`` for this home under any spelling, its own first."""
    own = unit_name(home)
    found: list[str] = [own] if (folder / f"{own}.timer").exists() else []
    for timer in sorted(folder.glob("healthcache-*.timer")) if folder.is_dir() else ():
        if timer.stem != own and same_home(unit_home(_read(timer) or ""), home):
            found.append(timer.stem)
    return found


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def enable_commands(name: str) -> list[list[str]]:
    """Load and start the timer of the unit pair ``name``."""
    return [
        ["systemctl", "--user", "daemon-reload"],
        ["systemctl", "--user", "enable", "--now", f"{name}.timer"],
    ]


def disable_commands(name: str) -> list[list[str]]:
    """Stop and disable the timer of the unit pair ``name``."""
    return [
        ["systemctl", "--user", "disable", "--now", f"{name}.timer"],
        ["systemctl", "--user", "daemon-reload"],
    ]


def enabled_state(returncode: int, stdout: str, stderr: str) -> tuple[bool | None, str]:
    """``systemctl --user is-enabled`` answered -> (enabled, the state or why it is not known)."""
    state = stdout.strip().splitlines()[0] if stdout.strip() else ""
    if state in ("enabled", "enabled-runtime"):
        return True, state
    if state in ("disabled", "masked", "masked-runtime", "linked", "linked-runtime", "static", "indirect"):
        return False, state
    return None, (stderr.strip().splitlines() or [f"exit status {returncode}"])[0]


def timer_enabled(name: str) -> tuple[bool | None, str]:
    """Whether the user manager has this timer enabled: True, False, or None (no systemctl or no answer)."""
    if shutil.which("systemctl") is None:
        return None, "systemctl is not on PATH"
    try:
        done = subprocess.run(
            ["systemctl", "--user", "is-enabled", f"{name}.timer"], capture_output=True, text=True, check=False
        )
    except OSError as exc:
        return None, str(exc)
    return enabled_state(done.returncode, done.stdout, done.stderr)


def _systemctl(commands: list[list[str]]) -> tuple[bool, str | None]:
    """Run the systemctl commands when there is a user manager; (done, why not)."""
    if shutil.which("systemctl") is None:
        return False, "systemctl is not on PATH"
    for argv in commands:
        try:
            done = subprocess.run(argv, capture_output=True, text=True, check=False)
        except OSError as exc:
            return False, f"{shlex.join(argv)}: {exc}"
        if done.returncode != 0:
            why = done.stderr.strip().splitlines()[0] if done.stderr.strip() else done.returncode
            return False, f"{shlex.join(argv)}: {why}"
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
    action: str  # install: added|replaced|unchanged; show: installed|not enabled; remove: removed|absent
    dry_run: bool = False
    line: str | None = None
    at: str | None = None
    next_run: str | None = None
    files: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    note: str | None = None
    removed: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def _when(t: tuple[int, int] | None, now: datetime) -> tuple[str | None, str | None]:
    if t is None:
        return None, None
    return f"{t[0]:02d}:{t[1]:02d}", next_run(*t, now).isoformat(timespec="minutes")


def install(
    home: Path,
    at: str,
    *,
    systemd: bool,
    dry_run: bool,
    now: datetime | None = None,
    environ: Mapping[str, str] | None = None,
) -> CronResult:
    """Install this home's daily job (refused for a folder that is not a workspace), carrying ``CARRIED_ENV``."""
    hour, minute = parse_at(at)
    home = home.resolve()
    require_workspace(home)
    environ = os.environ if environ is None else environ
    env = carried_env(environ)
    now = now or datetime.now().astimezone()
    if systemd:
        result = _install_systemd(home, hour, minute, dry_run, env)
    else:
        line = cron_line(home, hour, minute, env=env)
        edit = plan_install(read_crontab(), line, home)
        if edit.action != "unchanged" and not dry_run:
            write_crontab(edit.after)
        removed = [r.rstrip("\n") for r in edit.removed]
        result = CronResult(str(home), "crontab", edit.action, dry_run, line=line.rstrip("\n"), removed=removed)
    result.at, result.next_run = _when((hour, minute), now)
    result.env = env
    skipped = not_carried(environ)
    if skipped:
        extra = "not carried into the job (set in healthcache.toml if the job needs it): " + ", ".join(skipped)
        result.note = f"{result.note}; {extra}" if result.note else extra
    return result


def _install_systemd(home: Path, hour: int, minute: int, dry_run: bool, env: dict[str, str]) -> CronResult:
    folder = systemd_dir()
    wanted = units(home, hour, minute, env=env)
    result = CronResult(str(home), "systemd", "unchanged", dry_run)
    result.files = [str(folder / name) for name in wanted]
    olds = {name: _read(folder / name) for name in wanted}
    stale = [name for name in units_for(folder, home) if name != unit_name(home)]
    if all(old is None for old in olds.values()):
        result.action = "added"
    elif any(olds[name] != text for name, text in wanted.items()) or stale:
        result.action = "replaced"
    result.removed = [str(folder / f"{name}.{kind}") for name in stale for kind in ("timer", "service")]
    commands = enable_commands(unit_name(home))
    if dry_run:
        result.commands = [shlex.join(c) for c in commands]
        return result
    for name, text in wanted.items():
        if olds[name] != text:
            atomic.save_atomic(folder / name, text.encode(), mode=0o644)
    for name in stale:  # this home's pair under another spelling, once its own is written: one job per home
        _remove_units(folder, name)
    done, why = _systemctl(commands)
    if not done:
        result.commands = [shlex.join(c) for c in commands]
        result.note = f"not enabled here ({why}); run these commands in your user session"
    return result


def _remove_units(folder: Path, name: str) -> str | None:
    """Disable and delete the unit pair ``name``; why systemctl could not disable it, if it could not."""
    done, why = _systemctl(disable_commands(name)[:1])
    for kind in ("timer", "service"):
        (folder / f"{name}.{kind}").unlink(missing_ok=True)
    _systemctl(disable_commands(name)[1:])
    return None if done else why


def _show_crontab(home: Path, now: datetime) -> list[CronResult]:
    found: list[CronResult] = []
    for line in installed_lines(read_crontab(), home):
        at, when = _when(line_time(line), now)
        found.append(CronResult(str(home), "crontab", "installed", line=line, at=at, next_run=when, env=line_env(line)))
    return found


def _show_systemd(home: Path, now: datetime) -> list[CronResult]:
    folder = systemd_dir()
    found: list[CronResult] = []
    for name in units_for(folder, home):
        timer = folder / f"{name}.timer"
        at, when = _when(timer_time(_read(timer) or ""), now)
        result = CronResult(str(home), "systemd", "installed", at=at, next_run=when)
        result.files = [str(timer.with_suffix(".service")), str(timer)]
        result.env = unit_env(_read(timer.with_suffix(".service")) or "")
        enabled, why = timer_enabled(name)
        if not enabled:
            result.action, result.next_run = "not enabled", None
            result.commands = [shlex.join(c) for c in enable_commands(name)]
            result.note = (
                f"the unit files are written but the timer is not enabled ({why}): run"
                if enabled is False
                else f"the unit files are written; the timer is not known to be enabled ({why}): run"
            )
        found.append(result)
    return found


def show(home: Path, now: datetime | None = None) -> list[CronResult]:
    """Every job installed for this home under any spelling (crontab line, systemd timer), when it runs next."""
    home = home.resolve()
    now = now or datetime.now().astimezone()
    found = _show_crontab(home, now) if shutil.which("crontab") is not None else []
    found += _show_systemd(home, now)
    if len(found) > 1:
        found[-1].note = (f"{found[-1].note}; " if found[-1].note else "") + (
            f"{len(found)} daily jobs point at this home: healthcache cron remove takes them all, "
            "then healthcache cron install puts back one"
        )
    return found


def remove(home: Path, *, dry_run: bool) -> list[CronResult]:
    """Take out every crontab line and systemd unit pair of this home (any spelling), and nothing else."""
    home = home.resolve()
    out: list[CronResult] = []
    if shutil.which("crontab") is not None:
        edit = plan_remove(read_crontab(), home)
        if edit.action == "removed" and not dry_run:
            write_crontab(edit.after)
        out.append(
            CronResult(str(home), "crontab", edit.action, dry_run, removed=[r.rstrip("\n") for r in edit.removed])
        )
    folder = systemd_dir()
    names = units_for(folder, home)
    if names:
        present = [folder / f"{n}.{kind}" for n in names for kind in ("timer", "service")]
        result = CronResult(str(home), "systemd", "removed", dry_run, files=[str(p) for p in present if p.exists()])
        if not dry_run:
            whys = [why for why in (_remove_units(folder, n) for n in names) if why]
            if whys:
                result.note = f"systemctl could not disable the timer ({whys[0]}); the unit files are removed"
        out.append(result)
    return out
