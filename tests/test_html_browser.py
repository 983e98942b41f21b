"""`optbench report --format html` opened in a real browser: headless Chromium, driven over the
DevTools protocol (``--remote-debugging-pipe``: JSON messages on file descriptors 3 and 4, no
extra Python package).

One real ``--select`` run (momentum and sgd, 2 learning rates each, 2 seeds on test, a loss target)
gives every kind of chart: comparison, bars, curves, sensitivity, tuning budget, time to target
and the performance profile. The test loads report.html from disk and checks what a reader gets:
no console error or uncaught exception, no network request, every chart drawn as SVG with one
rendered trace per series it holds and both optimizers in it, the curves' time/epoch switch,
a table that sorts numerically on a header click, the optimizer checkboxes hiding rows and
series, and a screenshot. Skips only where no Chromium binary is installed.
"""

from __future__ import annotations

import base64
import json
import os
import re
import select
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from optbench.report.build import build_report
from conftest import CLI

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM = next((path for path in map(shutil.which, BROWSERS) if path), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium binary (chromium, chromium-browser or "
                                "google-chrome) on PATH: apt-get install chromium to run the browser test")

# Every chart a report of one group with sweeps, a target and a profile holds, in page order (each
# under the table it illustrates: cells, default vs tuned, time to target, trials needed, profile).
KINDS = ["comparison", "bars", "curves", "sensitivity", "time-to-target", "budget", "profile"]


class Browser:
    """Headless Chromium and one page, over the DevTools protocol on a pipe."""

    def __init__(self, profile: Path, width: int = 1280, height: int = 2000) -> None:
        to_browser_r, self._out = os.pipe()
        self._in, from_browser_w = os.pipe()

        def fds() -> None:  # the browser reads commands on fd 3 and answers on fd 4
            os.dup2(to_browser_r, 3)
            os.dup2(from_browser_w, 4)

        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
             "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--hide-scrollbars",
             f"--user-data-dir={profile}", f"--window-size={width},{height}", "about:blank"],
            pass_fds=(3, 4), preexec_fn=fds, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._id = 0
        self.events: list[dict[str, Any]] = []
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable", session=True)

    def send(self, method: str, params: dict[str, Any] | None = None, session: bool = False,
             timeout: float = 20.0) -> dict[str, Any]:
        self._id += 1
        message: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self.session
        os.write(self._out, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._id:
                assert "error" not in reply, (method, reply["error"])
                return reply["result"]
            self.events.append(reply)

    def wait_for(self, event: str, timeout: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        for seen in self.events:
            if seen.get("method") == event:
                return seen
        while True:
            message = self._read(deadline)
            self.events.append(message)
            if message.get("method") == event:
                return message

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                                "returnByValue": True}, session=True)
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"].get("value")

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self._in], [], [], max(left, 0))
            if not ready:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self._in, 1 << 20)
            if not chunk:
                raise EOFError("Chromium closed the DevTools pipe")
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(message)

    def problems(self) -> list[str]:
        """Console errors and warnings, uncaught exceptions and log errors seen so far."""
        out = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params["type"] in ("error", "warning", "assert"):
                out.append(f"console.{params['type']}: " + " ".join(str(a.get("value", a.get("description")))
                                                                    for a in params["args"]))
            elif method == "Runtime.exceptionThrown":
                out.append("uncaught: " + params["exceptionDetails"].get("exception", {}).get("description", ""))
            elif method == "Log.entryAdded" and params["entry"]["level"] in ("error", "warning"):
                out.append(f"log {params['entry']['level']}: {params['entry']['text']}")
        return out

    def requests(self) -> list[str]:
        return [e["params"]["request"]["url"] for e in self.events if e.get("method") == "Network.requestWillBeSent"]

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=5)
        except (TimeoutError, EOFError, OSError):
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._in)
        os.close(self._out)


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("browser")
    cli = CLI(root / "results", root / "data")
    result = cli.run("--opt", "momentum:lr=1e-3|1e-2", "sgd:lr=1e-3|1e-1", "--epochs", "2", "--select",
                     "--seeds", "2", "--target", "loss=0.5", "--quiet")
    assert result.exit_code == 0, result.output
    report = build_report([cli.results_dir], out_dir=root / "out", fmt="html", draw_charts=False)
    browser = Browser(root / "profile")
    try:
        browser.send("Page.navigate", {"url": report.export.as_uri()}, session=True)
        browser.wait_for("Page.loadEventFired")
        drawn = browser.evaluate("window.optbenchReady")
        yield report, browser, drawn
    finally:
        browser.close()


CHARTS = """Array.from(document.querySelectorAll("div.chart")).map(function (d) {
  var svg = d.querySelector("svg.main-svg");
  return {kind: d.getAttribute("data-kind"), traces: d.data.length,
          visible: d.data.filter(function (t) { return t.visible !== false; }).length,
          optimizers: Array.from(new Set(d.data.map(function (t) { return t.meta; }).filter(Boolean))).sort(),
          rendered: d.querySelectorAll("g.trace").length,
          width: svg ? svg.getBoundingClientRect().width : 0, height: svg ? svg.getBoundingClientRect().height : 0,
          marks: d.querySelectorAll("g.trace path, g.trace .point").length,
          legend: Array.from(d.querySelectorAll("g.legend .legendtext")).map(function (t) { return t.textContent; })};
})"""


def test_every_chart_renders_with_its_series_and_nothing_goes_wrong(page) -> None:
    report, browser, drawn = page
    text = report.export.read_text()
    assert report.export.name == "report.html"
    # Self-contained: one file; no src/href that is not inside the page; nothing fetched when opened.
    assert [p.name for p in report.export.parent.iterdir()] == ["report.html"]
    assert not re.search(r'<(?:script|link|img)[^>]+(?:src|href)\s*=', text)
    assert browser.requests() == [report.export.as_uri()]
    charts = browser.evaluate(CHARTS)
    assert drawn == len(charts)
    assert [c["kind"] for c in charts] == KINDS
    for chart in charts:
        assert chart["width"] > 600 and chart["height"] > 250, chart
        assert chart["traces"] == chart["visible"] == chart["rendered"] > 0, chart  # every series drawn
        assert chart["marks"] >= chart["rendered"], chart
        assert chart["optimizers"] == ["momentum", "sgd"], chart
    # The legends name the series (reference lines, "least-squares optimum: 1,469", aside).
    names = {c["kind"]: [n for n in c["legend"] if ": " not in n] for c in charts}
    tested = sorted(report.cells.loc[report.cells["split"] == "test", "name"])
    assert sorted(names["comparison"]) == sorted(names["bars"]) == sorted(names["curves"]) == tested
    assert len(tested) == 3  # sgd's default and tuned cells, momentum (its default won)
    assert sorted(names["sensitivity"]) == sorted(names["budget"]) == ["momentum", "sgd"]
    assert browser.problems() == []


def test_hover_names_seed_hyperparameters_status_and_value(page) -> None:
    _, browser, _ = page
    texts = browser.evaluate("""[].concat.apply([], Array.from(document.querySelectorAll("div.chart"))
        .filter(function (d) { return d.getAttribute("data-kind") === "comparison"; })
        .map(function (d) { return d.data.map(function (t) { return t.text || []; }); })).flat()""")
    seeds = [t for t in texts if "seed 1 · ok" in t]
    assert seeds and any(t.startswith("<b>sgd(lr=0.1)</b>") and "test RMSE: " in t for t in seeds), texts


def test_curves_switch_between_training_time_and_epochs(page) -> None:
    _, browser, _ = page
    axis = """(function () { var d = document.querySelector('div.chart[data-kind="curves"]');
        return [d.layout.xaxis.title.text,
                Array.from(d.data.filter(function (t) { return t.mode !== "lines"; })[0].x)]; })()"""
    title, xs = browser.evaluate(axis)
    assert title == "training time (s)" and all(0 < x < 60 for x in xs)
    browser.evaluate("""Array.from(document.querySelectorAll('div.chart[data-kind="curves"] .updatemenu-button'))
        .filter(function (b) { return b.textContent === "x: epochs"; })[0]
        .dispatchEvent(new MouseEvent("click", {bubbles: true}))""")
    browser.evaluate("new Promise(function (r) { setTimeout(r, 300); })")
    title, xs = browser.evaluate(axis)
    assert title == "epoch" and xs == [1, 2]


def _numbers(column: list[str]) -> list[float]:
    out = []
    for text in column:
        m = re.match(r"[-+]?[\d,]*\.?\d+(?:e[-+]?\d+)?", text.replace("⚠", "").strip())
        out.append(float(m.group().replace(",", "")) if m else float("inf"))
    return out


def test_a_header_click_sorts_the_table_numerically_both_ways(page) -> None:
    _, browser, _ = page
    column = """(function (title) { var t = document.querySelector('table[data-kind="cells"]');
        var heads = Array.from(t.tHead.rows[0].cells).map(function (h) { return h.textContent; });
        var i = heads.indexOf(title);
        return Array.from(t.tBodies[0].rows).map(function (r) { return r.cells[i].textContent; }); })"""
    click = """(function (title) { var t = document.querySelector('table[data-kind="cells"]');
        Array.from(t.tHead.rows[0].cells).filter(function (h) { return h.textContent === title; })[0].click();
        return Array.from(t.tHead.rows[0].cells).map(function (h) { return h.getAttribute("aria-sort"); }); })"""
    for title in ("steps/s", "test RMSE"):
        before = browser.evaluate(f"{column}({json.dumps(title)})")
        assert browser.evaluate(f"{click}({json.dumps(title)})").count("ascending") == 1
        ascending = browser.evaluate(f"{column}({json.dumps(title)})")
        assert sorted(ascending) == sorted(before) and _numbers(ascending) == sorted(_numbers(before))
        browser.evaluate(f"{click}({json.dumps(title)})")
        descending = browser.evaluate(f"{column}({json.dumps(title)})")
        assert _numbers(descending) == sorted(_numbers(before), reverse=True)
    names = browser.evaluate(f"{click}('optimizer'), {column}('optimizer')")
    assert names == sorted(names)


def test_unticking_an_optimizer_hides_its_rows_and_series_everywhere(page, tmp_path: Path) -> None:
    report, browser, _ = page
    state = """(function () {
        var rows = Array.from(document.querySelectorAll("tr[data-optimizer]"));
        return {shown: rows.filter(function (r) { return r.offsetParent !== null; })
                           .map(function (r) { return r.getAttribute("data-optimizer"); }),
                series: Array.from(document.querySelectorAll("div.chart")).map(function (d) {
                    return d.data.filter(function (t) { return t.visible !== false; })
                                 .map(function (t) { return t.meta; }); }),
                rendered: document.querySelectorAll("div.chart g.trace").length}; })()"""
    toggle = """document.querySelector('#filter input[value="sgd"]').click()"""
    before = browser.evaluate(state)
    assert {"sgd", "momentum"} <= set(before["shown"])
    browser.evaluate(toggle)
    after = browser.evaluate(state)
    assert "sgd" not in after["shown"] and "momentum" in after["shown"]
    assert all("sgd" not in series and "momentum" in series for series in after["series"])
    assert 0 < after["rendered"] < before["rendered"]
    browser.evaluate(toggle)
    assert browser.evaluate(state) == before
    shot = base64.b64decode(browser.send("Page.captureScreenshot", {"format": "png"}, session=True)["data"])
    (tmp_path / "report-html.png").write_bytes(shot)
    assert shot.startswith(b"\x89PNG") and len(shot) > 50_000  # a blank 1280x2000 page is a few KB
    assert browser.problems() == []
