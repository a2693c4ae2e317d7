"""The HTML report in a real browser: Debian's Chromium, headless, with networking disabled.

Chromium is driven over the DevTools protocol (websocket-client): the page is
opened from a file:// URL, every console message, exception, log entry and
network request is recorded, and the charts are measured in the live,
laid-out DOM (how many data marks have a size on screen), not in the HTML text.
In CI (CI=true) a missing Chromium fails these tests; elsewhere it skips them.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest
import websocket

from healthcache.report import data as rd
from healthcache.report import write_report
from tests.test_report import build_workspace

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
TIMEOUT = 60.0

# Per chart: the data marks (bars, points, lines) that are laid out with a size, and the SVG's own box.
MEASURE = """
(() => {
  const visible = el => { const r = el.getBoundingClientRect(); return r.width > 0 || r.height > 0; };
  return {
    charts: [...document.querySelectorAll('figure.chart')].map(f => {
      const svg = f.querySelector(':scope > svg');
      const box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
      const marks = [...f.querySelectorAll('g.role-mark > path')].filter(visible);
      const painted = marks.filter(m => getComputedStyle(m).visibility !== 'hidden'
        && (m.getAttribute('fill') || m.getAttribute('stroke') || 'none') !== 'none');
      return {key: f.dataset.chart, width: box.width, height: box.height,
              x: box.left + scrollX, y: box.top + scrollY,
              marks: marks.length, painted: painted.length,
              texts: [...f.querySelectorAll('svg text')].filter(visible).length};
    }),
    empty: [...document.querySelectorAll('.empty-chart')].map(e => e.dataset.chart),
    scripts: document.scripts.length,
    resources: performance.getEntriesByType('resource').map(e => e.name),
    title: document.title,
    verify: (document.getElementById('verify-status') || {}).textContent,
  };
})()
"""


def find_browser() -> str | None:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    binary = find_browser()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("Chromium is not installed; .ci/run installs Debian's chromium package")
        pytest.skip("Chromium is not installed (apt-get install chromium); CI installs it")
    with tempfile.TemporaryDirectory(prefix="hc-chromium-") as profile:
        b = Browser.launch(binary, Path(profile))
        try:
            yield b
        finally:
            b.close()


@dataclass
class PageLoad:
    url: str
    console_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    measured: dict[str, Any] = field(default_factory=dict)
    screenshot: bytes = b""


class Browser:
    """One headless Chromium, offline, with a DevTools websocket; pages are opened one at a time."""

    def __init__(self, proc: subprocess.Popen[str], ws: websocket.WebSocket) -> None:
        self.proc = proc
        self.ws = ws
        self.ids = itertools.count(1)

    @classmethod
    def launch(cls, binary: str, profile: Path) -> Browser:
        args = [
            binary,
            "--headless=new",
            "--no-sandbox",  # CI runs as root
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            # Networking off: every host resolves to nothing, and any connection goes to a dead proxy.
            "--proxy-server=127.0.0.1:9",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            f"--user-data-dir={profile}",
            "--remote-debugging-port=0",
            "--window-size=1100,900",
            "about:blank",
        ]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        found: list[str] = []
        listening = threading.Event()

        def drain(stream: IO[str]) -> None:
            # Chromium prints the DevTools address once it listens; its other lines are noise, read
            # to the end so it never blocks on a full pipe.
            for line in stream:
                if line.startswith("DevTools listening on ") and not found:
                    found.append(line.split(" on ", 1)[1].strip())
                    listening.set()
            listening.set()  # exited without listening

        assert proc.stderr is not None
        threading.Thread(target=drain, args=(proc.stderr,), daemon=True).start()
        if not listening.wait(TIMEOUT) or not found:
            proc.kill()
            raise AssertionError(f"Chromium did not open DevTools (exit status {proc.wait()})")
        url = found[0]
        ws = websocket.create_connection(url, timeout=TIMEOUT, suppress_origin=True)
        return cls(proc, ws)

    def close(self) -> None:
        self.ws.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> int:
        msg: dict[str, Any] = {"id": next(self.ids), "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        self.ws.send(json.dumps(msg))
        return int(msg["id"])

    def call(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        session: str | None = None,
        events: list[Any] | None = None,
    ) -> dict[str, Any]:
        """Send a command and return its result; events arriving meanwhile go to ``events``."""
        want = self.send(method, params, session)
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == want:
                if "error" in msg:
                    raise AssertionError(f"{method}: {msg['error']}")
                result: dict[str, Any] = msg.get("result", {})
                return result
            if events is not None and "method" in msg:
                events.append(msg)

    def _clip(self, session: str, chart: dict[str, Any]) -> int:
        """The size of a PNG of one chart's area: a blank area compresses to almost nothing."""
        if not chart["width"] or not chart["height"]:
            return 0
        clip = {k: chart[k] for k in ("x", "y", "width", "height")} | {"scale": 1}
        data = self.call(
            "Page.captureScreenshot", {"format": "png", "clip": clip, "captureBeyondViewport": True}, session=session
        )["data"]
        return len(base64.b64decode(data))

    def open(self, url: str) -> PageLoad:
        """Load ``url`` in a fresh tab, wait for its load event, and record what happened."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        events: list[dict[str, Any]] = []
        try:
            for domain in ("Runtime", "Log", "Network", "Page"):
                self.call(f"{domain}.enable", session=session, events=events)
            self.call(
                "Network.emulateNetworkConditions",
                {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
                session=session,
                events=events,
            )
            self.call("Page.navigate", {"url": url}, session=session, events=events)
            while not any(e["method"] == "Page.loadEventFired" and e.get("sessionId") == session for e in events):
                msg = json.loads(self.ws.recv())
                if "method" in msg:
                    events.append(msg)
            measured = self.call(
                "Runtime.evaluate", {"expression": MEASURE, "returnByValue": True}, session=session, events=events
            )["result"]["value"]
            shot = self.call(
                "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}, session=session
            )["data"]
            # Pixels, not just DOM: each chart's area as drawn, then the same area with its SVG hidden.
            drawn = [self._clip(session, c) for c in measured["charts"]]
            self.call(
                "Runtime.evaluate",
                {
                    "expression": "document.querySelectorAll('figure.chart > svg').forEach(s => s.style.visibility = 'hidden')"
                },
                session=session,
            )
            hidden = [self._clip(session, c) for c in measured["charts"]]
            measured["png_bytes"] = {
                c["key"]: (d, h) for c, d, h in zip(measured["charts"], drawn, hidden, strict=True)
            }
        finally:
            self.call("Target.closeTarget", {"targetId": target})
        load = PageLoad(url=url, measured=measured, screenshot=base64.b64decode(shot))
        for e in events:
            if e.get("sessionId") != session:
                continue
            p = e.get("params", {})
            match e["method"]:
                case "Runtime.consoleAPICalled" if p.get("type") in ("error", "assert", "warning"):
                    load.console_errors.append(" ".join(str(a.get("value", a.get("description"))) for a in p["args"]))
                case "Runtime.exceptionThrown":
                    load.console_errors.append(p["exceptionDetails"].get("text", "exception"))
                case "Log.entryAdded" if p["entry"].get("level") in ("error", "warning"):
                    load.console_errors.append(p["entry"].get("text", ""))
                case "Network.requestWillBeSent" if not p["request"]["url"].startswith(("file:", "data:")):
                    load.requests.append(p["request"]["url"])
        return load


def expected_marks(data: rd.ReportData) -> dict[str, int]:
    """The data marks each chart must show, from the report's own figures (one per row at least)."""
    return {
        "weekly-distance": len(data.weekly),
        "monthly-distance": len(data.monthly),
        "hr-trend": len(data.hr_trend),
        "hr-drift": len(data.drift),
        "hr-coverage": 2 * len(data.hr_coverage),
        "records-over-time": len(data.records_over_time),
    }


def test_the_report_loads_offline_without_console_errors_and_every_chart_is_drawn(
    browser: Browser, home: Path, tmp_path: Path
) -> None:
    store = build_workspace(home)  # its clock is fixed, so the figures below are the page's own
    out = tmp_path / "report.html"
    write_report(store, out)
    load = browser.open(out.as_uri())
    assert load.console_errors == []
    assert load.requests == []
    m = load.measured
    assert m["title"] == "healthcache report" and m["scripts"] == 0
    assert m["resources"] == []  # the browser fetched nothing at all for this page
    assert m["verify"] == "OK" and m["empty"] == []
    want = expected_marks(rd.collect(store))
    assert sorted(c["key"] for c in m["charts"]) == sorted(want)
    for chart in m["charts"]:
        assert chart["width"] > 300 and chart["height"] > 150, chart
        assert chart["painted"] >= want[chart["key"]] > 0, chart  # every datum is a painted mark with a size
        assert chart["texts"] >= 5, chart  # axis labels and titles laid out
        drawn, hidden = m["png_bytes"][chart["key"]]
        assert drawn > 4 * hidden, (chart["key"], drawn, hidden)  # the screenshot shows it: not a blank area
    assert load.screenshot.startswith(b"\x89PNG") and len(load.screenshot) > 50_000
    (tmp_path / "report.png").write_bytes(load.screenshot)


def test_the_harness_sees_console_errors_network_requests_and_undrawn_charts(browser: Browser, tmp_path: Path) -> None:
    """The browser test can fail: a page that fetches, logs an error and draws nothing is caught."""
    page = tmp_path / "bad.html"
    page.write_text(
        "<!DOCTYPE html><html><head><title>bad</title></head><body>"
        '<img src="http://report-assets.example/logo.png">'
        "<script>console.error('boom')</script>"
        '<figure class="chart" data-chart="x"><svg width="0" height="0"><g class="role-mark"><path d=""/></g></svg></figure>'
        "</body></html>"
    )
    load = browser.open(page.as_uri())
    assert "boom" in load.console_errors
    assert load.requests == ["http://report-assets.example/logo.png"]
    assert load.measured["scripts"] == 1
    [chart] = load.measured["charts"]
    assert chart["painted"] == 0 and chart["width"] == 0 and load.measured["png_bytes"]["x"] == (0, 0)
