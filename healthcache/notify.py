"""Notifications: typed events from a run's history record, sent through apprise.

``events_of`` decides (pure) what a finished run means for a person: a
``Loss`` (a save refused by the guard, verify finding a loss or an outside
edit), a ``StepFailed`` (with how many runs in a row), an ``AuthExpired``
(naming the exact ``healthcache auth`` command), a ``Recovered`` (a step working
again after failures).  ``deliver`` sends each to every ``[notify] urls``
target (apprise: mailto, ntfy, Slack, Telegram, Matrix, JSON webhooks...) and
reports each delivery.  ``conclude`` is the one call ``main`` makes after a
command: events, delivery, and the record appended to the history.

A message says what happened and the next command, never a token, password or
URL credential (every text passes ``history.redact``).  A notification that
cannot be delivered is reported and recorded; it never changes what was saved
or the exit status.  apprise is imported only when something is to be sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import msgspec

from healthcache import history
from healthcache.config import NOTIFY_EVENTS, Config, Paths
from healthcache.history import Delivery, Record, redact
from healthcache.sources import registry

PREVIOUS = 200  # records read to count a streak (a longer one is told as 200)
ID_LINES = 20  # ids listed in a message; the rest are counted


# msgspec Structs rather than dataclasses: every recorded command imports this module, and a Struct
# class is built in C (a dataclass costs ~0.5 ms of generated code at each start).
class Event(msgspec.Struct, frozen=True, kw_only=True):
    """Something a person should act on; ``kind`` is its ``[notify] on`` name."""

    kind: ClassVar[str] = ""

    def title(self) -> str:
        raise NotImplementedError

    def lines(self) -> list[str]:
        raise NotImplementedError


class Loss(Event, frozen=True, kw_only=True):
    """A save refused because it would lose data, or a loss found by verify."""

    kind: ClassVar[str] = "loss"
    command: str
    ids: tuple[str, ...]
    count: int
    what: tuple[str, ...]
    next_steps: tuple[str, ...]

    def title(self) -> str:
        at_risk = f": {self.count} activit{'y' if self.count == 1 else 'ies'} lost or at risk" if self.count else ""
        return f"healthcache {self.command}: data at risk{at_risk}"

    def lines(self) -> list[str]:
        out = [f"`healthcache {self.command}` stopped a loss of data or found one; nothing was dropped by it."]
        out += [f"  {w}" for w in self.what]
        if self.ids:
            out.append("Activities lost or at risk:")
            out += [f"  - {i}" for i in self.ids[:ID_LINES]]
            if self.count > min(len(self.ids), ID_LINES):
                out.append(f"  ... and {self.count - min(len(self.ids), ID_LINES)} more (healthcache log --json)")
        out.append("Next step:")
        out += [f"  {s}" for s in self.next_steps] or ["  healthcache verify"]
        return out


class StepFailed(Event, frozen=True, kw_only=True):
    kind: ClassVar[str] = "failure"
    step: str
    reason: str | None
    consecutive: int  # this run included
    next_steps: tuple[str, ...] = ()  # a run that found something unreadable: what it told the person to do

    def title(self) -> str:
        runs = "" if self.consecutive < 2 else f" ({self.consecutive} runs in a row)"
        return f"healthcache: {self.step} failed{runs}"

    def lines(self) -> list[str]:
        when = "in this run" if self.consecutive < 2 else f"after {self.consecutive} consecutive runs"
        out = [f"{self.step} failed {when}."]
        if self.reason:
            out.append(f"  {self.reason}")
        if self.next_steps:  # unreadable input (the cache above all): another run would only fail again
            out.append("The next run cannot mend this by itself. Next step:")
            out += [f"  {line}" for hint in self.next_steps for line in hint.splitlines()]
        else:
            out.append("What was saved before stays saved; the next run tries again.")
        out.append("See the runs: healthcache log")
        return out


class AuthExpired(Event, frozen=True, kw_only=True):
    kind: ClassVar[str] = "auth"
    source: str
    reason: str | None

    @property
    def command(self) -> str:
        names = registry.names()
        return f"healthcache auth {self.source}" if self.source in names else f"healthcache auth {'|'.join(names)}"

    def title(self) -> str:
        return f"healthcache: log in to {self.source} again"

    def lines(self) -> list[str]:
        out = [f"The {self.source} login expired, was revoked or is missing: nothing new came from {self.source}."]
        if self.reason:
            out.append(f"  {self.reason}")
        out.append(f"Log in again with: {self.command}")
        return out


class Recovered(Event, frozen=True, kw_only=True):
    kind: ClassVar[str] = "recovered"
    step: str
    after: int  # failed runs before this one

    def title(self) -> str:
        return f"healthcache: {self.step} works again"

    def lines(self) -> list[str]:
        return [f"{self.step} worked again after {self.after} failed run{'s' if self.after != 1 else ''}."]


class TestMessage(Event, frozen=True, kw_only=True):
    kind: ClassVar[str] = "test"
    home: str

    def title(self) -> str:
        return "healthcache: test notification"

    def lines(self) -> list[str]:
        return ["This is a test from `healthcache notify --test`: this address gets healthcache's notifications."]


def events_of(record: Record, previous: Sequence[Record], on: Sequence[str] = NOTIFY_EVENTS) -> list[Event]:
    """What ``record`` (just finished) means for a person, given the runs before it (newest first)."""
    found: list[Event] = []
    unreadable = tuple(record.hints) if record.outcome == "corrupt" else ()
    if record.lost_count or record.outcome == "integrity":
        found.append(
            Loss(
                command=record.command,
                ids=tuple(record.lost),
                count=record.lost_count,
                what=tuple(record.errors),
                next_steps=tuple(record.hints),
            )
        )
    for step in record.steps:
        last, count = history.streak(previous, step.name)
        if step.status == "auth":
            found.append(AuthExpired(source=step.name.split()[-1], reason=step.reason))
        elif step.failed:
            n = count + 1 if last == "failed" else 1
            found.append(StepFailed(step=step.name, reason=step.reason, consecutive=n, next_steps=unreadable))
        elif step.status == "ok" and last == "failed":
            found.append(Recovered(step=step.name, after=count))
    return [e for e in found if e.kind in on]


def message(event: Event, home: str) -> tuple[str, str]:
    """(title, body) of one event; every line redacted, the workspace named (one person may have several)."""
    body = [*event.lines(), "", f"workspace: {home}"]
    return redact(event.title()), "\n".join(redact(line) for line in body)


# --------------------------------------------------------------------------- delivery


class Sent(msgspec.Struct):
    deliveries: list[Delivery] = msgspec.field(default_factory=list)

    @property
    def failed(self) -> list[Delivery]:
        return [d for d in self.deliveries if not d.ok]


def shown(url: str) -> str:
    """A target as it may be printed: no credentials, no query (where tokens hide)."""
    return redact(url.split("?", 1)[0])


def deliver(urls: Sequence[str], events: Sequence[Event], home: str) -> Sent:
    """Send every event to every URL, one apprise notification each; report each delivery."""
    sent = Sent()
    if not urls or not events:
        return sent
    import logging

    import apprise

    for url in urls:
        client = apprise.Apprise()
        if not client.add(url):
            sent.deliveries.append(
                Delivery(
                    target=shown(url.split("://", 1)[0] + "://..."),
                    ok=False,
                    events=[e.kind for e in events],
                    error="not a URL apprise understands (see apprise's list of services)",
                )
            )
            continue
        target = shown(client[0].url(privacy=True))
        for event in events:
            title, body = message(event, home)
            with apprise.LogCapture(level=logging.WARNING, fmt="%(message)s") as log:  # apprise's words only
                ok = bool(client.notify(title=title, body=body, body_format=apprise.NotifyFormat.TEXT))
            error = None if ok else _why(log.getvalue()) or "not delivered"
            sent.deliveries.append(Delivery(target=target, ok=ok, events=[event.kind], error=error))
    return sent


def _why(log: str) -> str | None:
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    return redact("; ".join(lines[-3:]))[: history.TEXT_LIMIT] if lines else None


# --------------------------------------------------------------------------- after a command


class Conclusion(msgspec.Struct):
    """What happened after a command: events sent, deliveries, the record, and what went wrong here."""

    record: Record
    events: list[Event] = msgspec.field(default_factory=list)
    sent: Sent = msgspec.field(default_factory=Sent)
    problems: list[str] = msgspec.field(default_factory=list)


def conclude(paths: Paths, config: Config | None, record: Record) -> Conclusion:
    """Notify what ``record`` means and append it (with the deliveries) to the history.

    Never raises for its own trouble: a history that cannot be read or written,
    or a notification that cannot be delivered, is returned in ``problems`` for
    the caller to print; the command's outcome stands.
    """
    done = Conclusion(record)
    # ``notify --test`` reports its own deliveries; its failure is not news to send to the others
    if config is not None and config.notify.urls and record.command != "notify":
        try:
            previous, _ = history.read(paths, limit=PREVIOUS)
        except OSError as exc:
            previous = []
            done.problems.append(f"the history could not be read ({exc.strerror or exc}): streaks are not counted")
        done.events = events_of(record, previous, config.notify.on)
        done.sent = deliver(config.notify.urls, done.events, str(paths.home))
        record.notifications = [*record.notifications, *done.sent.deliveries]
        for d in done.sent.failed:
            done.problems.append(f"notification to {d.target} ({', '.join(d.events)}) not delivered: {d.error}")
    try:
        history.append(paths, record)
    except OSError as exc:
        done.problems.append(
            f"this run was not recorded in the history ({history.folder(paths)}): {exc.strerror or exc}; "
            "what the command saved is unaffected"
        )
    return done


def send_test(paths: Paths, config: Config) -> Sent:
    """``notify --test``: one test message to every URL."""
    return deliver(config.notify.urls, [TestMessage(home=str(paths.home))], str(paths.home))
