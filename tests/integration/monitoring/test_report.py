"""The SLO report from the live local stack, opened in headless Chromium (Debian's ``chromium``).

Prometheus scrapes the session devnet, so the Fabric peer/orderer series have data (the "Scrape Targets Up"
chart, and the peers' own metrics through the query layer); the backend services do not exist yet, so the SLO
gauges and the backend charts must say "no data". Chromium is driven through the DevTools protocol
(``websockets``): console errors and uncaught exceptions are collected, every network request is listed (the
report must need none), the plotly graph divs are counted, and a full-page screenshot is checked for ink in
every chart's rectangle against a blank page. Chromium missing is a failure, never a skip.

Run: ``GX_TEST_PORT_OFFSET=21000 .venv/bin/pytest tests/integration/monitoring/test_report.py``.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import shutil
import signal
import struct
import subprocess
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect

from gxlib.devnet.network import Devnet
from gxlib.monitoring.queries import PrometheusQueries, PrometheusQueryError
from gxlib.monitoring.report import NO_DATA, ReportData, build_slo_report
from gxlib.monitoring.scrape import BACKEND_JOBS, FABRIC_ORDERER_JOB, FABRIC_PEER_JOB
from gxlib.monitoring.settings import LocalStackSettings, LocalTargets, MonitoringConfig
from gxlib.monitoring.stack import LocalMonitoringStack
from tests.integration.monitoring.test_local_stack import eventually, free_ports

pytestmark = pytest.mark.integration

PLOT_IDS = ("slo-gauges", "projection-lag", "outbox-queue", "fabric-tx-duration", "targets-up", "alert-states",
            "target-health")
VIEWPORT_WIDTH = 1400
REPORT_WINDOW = timedelta(minutes=1)
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--enable-logging=stderr", "--v=0", "--remote-debugging-address=127.0.0.1",
                  "--remote-debugging-port=0")


# --- the live stack and the report -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def stack(devnet: Devnet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMonitoringStack]:
    """The local stack on free ports, scraping and evaluating every second (as in test_local_stack)."""
    prometheus_port, alertmanager_port, webhook_port, api, submitter, projector = free_ports(6)
    config = MonitoringConfig(
        stack_state_dir=tmp_path_factory.mktemp("monitoring-report"),
        # Free ports for the backend targets: they are down, whatever runs on the default ports.
        local_targets=LocalTargets(api_metrics_port=api, submitter_metrics_port=submitter,
                                   projector_metrics_port=projector),
        local_stack=LocalStackSettings(prometheus_port=prometheus_port, alertmanager_port=alertmanager_port,
                                       webhook_port=webhook_port, scrape_interval_s=1, evaluation_interval_s=1,
                                       group_wait_s=1, group_interval_s=5),
    )
    local_stack = LocalMonitoringStack(config, devnet.settings)
    try:
        local_stack.up()
        yield local_stack
    finally:
        local_stack.down()
        assert all(local_stack.running_pid(name) is None for name in ("webhook", "alertmanager", "prometheus"))


@pytest.fixture(scope="module")
def queries(stack: LocalMonitoringStack) -> Iterator[PrometheusQueries]:
    with PrometheusQueries(stack.prometheus_url) as client:
        # Enough history for lines across half of a one-minute report: 30 scrapes (one a second) of every node.
        def fabric_history() -> bool:
            frame = client.window(f'up{{job=~"{FABRIC_ORDERER_JOB}|{FABRIC_PEER_JOB}"}}', REPORT_WINDOW)
            return len(frame.columns) == 3 and int(frame.notna().sum().min()) >= 30

        eventually("30 scrapes of every devnet node", fabric_history, timeout_s=120)
        yield client


@pytest.fixture(scope="module")
def report(stack: LocalMonitoringStack, queries: PrometheusQueries,
           tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ReportData]:
    out = tmp_path_factory.mktemp("report") / "slo-report.html"
    data = build_slo_report(stack.prometheus_url, out, REPORT_WINDOW, config=stack.config)
    return out, data


def test_query_layer_reads_the_live_prometheus(queries: PrometheusQueries, devnet: Devnet) -> None:
    slos = queries.slo_values()
    # No backend yet: every SLO answers nothing, and says so instead of inventing a number.
    assert slos["status"].tolist() == ["no data"] * 4

    targets = queries.target_health()
    health = dict(zip(targets["job"], targets["health"], strict=False))
    assert {health[FABRIC_ORDERER_JOB], health[FABRIC_PEER_JOB]} == {"up"}
    assert all(health[job] == "down" for job in BACKEND_JOBS)

    alerts = queries.alert_states()
    assert len(alerts) == 18 and set(alerts["state"]) <= {"inactive", "pending", "firing"}
    assert alerts.loc["BackendServiceDown", "state"] in {"pending", "firing"}
    assert alerts.loc["ProjectionLagExceedsSLO", "state"] == "inactive"

    # A Fabric series over a window: the ledger height of every node, one column per node, indexed by time.
    height = queries.window("ledger_blockchain_height", timedelta(minutes=2), legend="{{node}}")
    assert set(height.columns) == {"orderer0", "peer0-org1", "peer0-org2"}
    assert height.index.is_monotonic_increasing and (height.dropna() >= 1).all().all()


def test_a_bad_expression_is_refused_by_name(queries: PrometheusQueries) -> None:
    with pytest.raises(PrometheusQueryError) as caught:
        queries.window("sum(rate(up[1m]) by", timedelta(minutes=1))
    assert caught.value.expression == "sum(rate(up[1m]) by" and caught.value.error_type == "bad_data"


def test_report_from_the_live_stack_has_fabric_data_and_no_data_notes(report: tuple[Path, ReportData]) -> None:
    path, data = report
    assert path.stat().st_size > 1_000_000
    charts = {chart.spec.key: chart.frame for chart in data.charts}
    up = charts["targets-up"]
    assert {column.split()[0] for column in up.columns} >= {FABRIC_ORDERER_JOB, FABRIC_PEER_JOB, *BACKEND_JOBS}
    assert up[[c for c in up.columns if c.startswith("fabric-")]].dropna().eq(1).all().all()
    for key in ("projection-lag", "outbox-queue", "fabric-tx-duration"):
        assert charts[key].empty, key
    page = path.read_text(encoding="utf-8")
    assert page.count(f'"text":"{NO_DATA}"') == 4 + 3  # four gauges, three backend charts


# --- Chromium through the DevTools protocol ------------------------------------------------------------------
def chromium_binary() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("chromium is not installed: it comes with Debian's chromium package "
                    "(scripts/ensure-system-packages scripts/system-packages.txt installs it)")
    return path


@dataclass
class DevTools:
    """A minimal DevTools-protocol client for one page: commands by id, events kept in order."""

    socket: ClientConnection
    events: list[dict[str, Any]] = field(default_factory=list)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def send(self, method: str, timeout_s: float = 30.0, **params: Any) -> dict[str, Any]:
        message_id = next(self._ids)
        self.socket.send(json.dumps({"id": message_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout_s
        while True:
            message = json.loads(self.socket.recv(timeout=max(0.1, deadline - time.monotonic())))
            if message.get("id") == message_id:
                if "error" in message:
                    raise AssertionError(f"{method} failed: {message['error']}")
                return dict(message.get("result", {}))
            self.events.append(message)

    def wait_for_event(self, method: str, timeout_s: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        seen = len(self.events)
        while True:
            for event in self.events[seen:]:
                if event.get("method") == method:
                    return event
            seen = len(self.events)
            with contextlib.suppress(TimeoutError):
                self.events.append(json.loads(self.socket.recv(timeout=max(0.1, deadline - time.monotonic()))))
            if time.monotonic() > deadline:
                raise AssertionError(f"no {method} within {timeout_s:.0f}s")

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def errors(self) -> list[str]:
        """Uncaught exceptions, console.error/assert calls and error-level log entries, as text."""
        found = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                found.append(json.dumps(params["exceptionDetails"])[:500])
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                found.append(" ".join(str(arg.get("value", arg.get("description"))) for arg in params["args"]))
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                found.append(f"{params['entry'].get('url', '')}: {params['entry']['text']}")
        return found

    def requested_urls(self) -> list[str]:
        return [e["params"]["request"]["url"] for e in self.events if e.get("method") == "Network.requestWillBeSent"]


@contextlib.contextmanager
def headless_chromium(profile_dir: Path, log_file: Path) -> Iterator[DevTools]:
    """Chromium with a fresh profile, its first page attached; the whole process group ended afterwards."""
    profile_dir.mkdir(parents=True)
    command = [chromium_binary(), *CHROMIUM_FLAGS, f"--user-data-dir={profile_dir}",
               f"--window-size={VIEWPORT_WIDTH},1000", "about:blank"]
    with log_file.open("wb") as log:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        port_file = profile_dir / "DevToolsActivePort"
        eventually("Chromium's DevTools port", lambda: port_file.is_file() and port_file.read_text().strip(),
                   timeout_s=30, interval_s=0.2)
        port = int(port_file.read_text().split()[0])
        pages = eventually("Chromium's first page", lambda: [t for t in httpx.get(
            f"http://127.0.0.1:{port}/json/list", timeout=5).json() if t["type"] == "page"], timeout_s=30,
            interval_s=0.2)
        with connect(pages[0]["webSocketDebuggerUrl"], max_size=None, open_timeout=10) as socket:
            devtools = DevTools(socket)
            for domain in ("Runtime", "Log", "Page", "Network"):
                devtools.send(f"{domain}.enable")
            yield devtools
    finally:
        # The browser process shuts its helpers (zygote, renderer, …) down on SIGTERM; whatever of its session
        # is left after that is killed.
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)
        if chromium_processes(process.pid, profile_dir):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        eventually("every Chromium process to exit", lambda: not chromium_processes(process.pid, profile_dir),
                   timeout_s=15, interval_s=0.2)


def chromium_processes(session: int, profile_dir: Path) -> list[int]:
    """Processes of the Chromium started here: in its session, or running with its profile directory."""
    marker = f"--user-data-dir={profile_dir}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text()
            fields = stat.rsplit(")", 1)[1].split()  # after "(comm)": state, ppid, pgrp, session, …
            alive = fields[0] not in ("Z", "X")
            if alive and (int(fields[3]) == session or marker in (entry / "cmdline").read_bytes()):
                found.append(int(entry.name))
    return found


@dataclass(frozen=True)
class Screenshot:
    width: int
    height: int
    rgb: bytes  # row-major, 3 bytes per pixel

    def ink(self, x: float, y: float, w: float, h: float, *, coloured: bool = False) -> int:
        """Pixels in the rectangle that are not (near) white; ``coloured``: only clearly saturated ones."""
        count = 0
        for row in range(max(0, int(y)), min(self.height, int(y + h))):
            start = row * self.width * 3
            for column in range(max(0, int(x)), min(self.width, int(x + w))):
                r, g, b = self.rgb[start + column * 3:start + column * 3 + 3]
                if coloured:
                    count += max(r, g, b) - min(r, g, b) > 60
                else:
                    count += min(r, g, b) < 225
        return count


def decode_png(data: bytes) -> Screenshot:
    """An 8-bit, non-interlaced RGB/RGBA PNG (what Chromium writes) as RGB bytes."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    offset, chunks, header = 8, [], b""
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset:offset + 4])
        kind, body = data[offset + 4:offset + 8], data[offset + 8:offset + 8 + length]
        offset += 12 + length
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            chunks.append(body)
    width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour_type in (2, 6) and interlace == 0, (depth, colour_type, interlace)
    channels = 4 if colour_type == 6 else 3
    stride = width * channels
    raw = zlib.decompress(b"".join(chunks))
    previous = bytearray(stride)
    rgb = bytearray()
    for row in range(height):
        filter_type = raw[row * (stride + 1)]
        line = bytearray(raw[row * (stride + 1) + 1:(row + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up, up_left = previous[i], previous[i - channels] if i >= channels else 0
            if filter_type == 1:
                line[i] = (line[i] + left) & 0xFF
            elif filter_type == 2:
                line[i] = (line[i] + up) & 0xFF
            elif filter_type == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif filter_type == 4:
                estimate = left + up - up_left
                pa, pb, pc = abs(estimate - left), abs(estimate - up), abs(estimate - up_left)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else up_left)) & 0xFF
        previous = line
        if channels == 3:
            rgb += line
        else:
            for i in range(0, stride, 4):
                rgb += line[i:i + 3]
    return Screenshot(width, height, bytes(rgb))


def open_and_capture(devtools: DevTools, url: str,
                     expected_plots: int) -> tuple[Screenshot, bytes, list[dict[str, Any]]]:
    """Load ``url``, wait for ``expected_plots`` rendered plotly graphs, size the viewport to the whole page,
    and return the screenshot with every graph's rectangle."""
    devtools.send("Emulation.setDeviceMetricsOverride", width=VIEWPORT_WIDTH, height=1000, deviceScaleFactor=1,
                  mobile=False)
    devtools.send("Page.navigate", url=url)
    devtools.wait_for_event("Page.loadEventFired", timeout_s=60)
    count = "document.querySelectorAll('.js-plotly-plot .plot-container').length"
    eventually(f"{expected_plots} rendered plotly graphs", lambda: devtools.evaluate(count) >= expected_plots,
               timeout_s=30, interval_s=0.25)
    height = int(devtools.evaluate("document.documentElement.scrollHeight"))
    devtools.send("Emulation.setDeviceMetricsOverride", width=VIEWPORT_WIDTH, height=height, deviceScaleFactor=1,
                  mobile=False)
    # plotly re-lays out responsive graphs on resize; let two frames pass before measuring.
    devtools.evaluate("new Promise(r => setTimeout(() => requestAnimationFrame(() => requestAnimationFrame(r)), 500))")
    rects = devtools.evaluate("""[...document.querySelectorAll('.js-plotly-plot')].map(e => {
        const r = e.getBoundingClientRect(); return {id: e.id, x: r.x, y: r.y, w: r.width, h: r.height}; })""")
    png = base64.b64decode(devtools.send("Page.captureScreenshot", format="png")["data"])
    return decode_png(png), png, rects


def test_report_renders_every_chart_in_headless_chromium(report: tuple[Path, ReportData], tmp_path: Path) -> None:
    path, _ = report
    blank_page = tmp_path / "blank.html"
    blank_page.write_text("<!DOCTYPE html><html><body style='background:white'></body></html>", encoding="utf-8")

    with headless_chromium(tmp_path / "chromium-profile", tmp_path / "chromium.log") as devtools:
        shot, png, rects = open_and_capture(devtools, path.as_uri(), expected_plots=len(PLOT_IDS))
        screenshot = tmp_path / "slo-report.png"
        screenshot.write_bytes(png)
        print(f"\nscreenshot: {screenshot} ({shot.width}x{shot.height})")
        graphs = devtools.evaluate("document.querySelectorAll('.js-plotly-plot').length")
        containers = devtools.evaluate("document.querySelectorAll('.plot-container').length")
        gauges = devtools.evaluate("document.querySelectorAll('#slo-gauges .indicatorlayer .trace').length")
        lines = devtools.evaluate("document.querySelectorAll('#targets-up .scatterlayer .trace').length")
        notes = devtools.evaluate("""[...document.querySelectorAll('.annotation-text')]
            .filter(e => e.textContent === 'no data').length""")
        title = devtools.evaluate("document.title")
        errors, requested = devtools.errors(), devtools.requested_urls()

        devtools.events.clear()
        blank, _, _ = open_and_capture(devtools, blank_page.as_uri(), expected_plots=0)
        blank_errors = devtools.errors()

    assert errors == [], errors
    assert blank_errors == []
    # Self-contained: the page asked for nothing but itself (no CDN, no font, no image).
    assert all(url.startswith(("file:", "data:")) for url in requested), requested
    assert (graphs, containers) == (len(PLOT_IDS), len(PLOT_IDS))
    assert gauges == 4
    assert lines >= 5  # three devnet nodes and the backend jobs
    assert notes == 4 + 3  # four gauges and three backend charts without data
    assert title.startswith("GX CQRS Backend — SLO Report")

    # Every graph's rectangle holds a drawing; a blank page of the same size holds none.
    assert [rect["id"] for rect in rects] == list(PLOT_IDS)
    assert blank.ink(0, 0, blank.width, blank.height) == 0
    for rect in rects:
        assert rect["w"] > 300 and rect["h"] > 150, rect
        assert shot.ink(rect["x"], rect["y"], rect["w"], rect["h"]) > 2000, rect["id"]
    by_id = {rect["id"]: rect for rect in rects}
    # The gauges' colour bands and the Fabric targets' lines are in colour, not just text.
    gauges_rect, up_rect = by_id["slo-gauges"], by_id["targets-up"]
    assert shot.ink(gauges_rect["x"], gauges_rect["y"], gauges_rect["w"], gauges_rect["h"], coloured=True) > 20000
    assert shot.ink(up_rect["x"], up_rect["y"], up_rect["w"], up_rect["h"], coloured=True) > 800


def test_report_command_writes_a_report_from_the_live_stack(stack: LocalMonitoringStack,
                                                                   tmp_path: Path) -> None:
    from click.testing import CliRunner

    from gxlib.monitoring.cli import monitoring

    out = tmp_path / "cli-report.html"
    result = CliRunner().invoke(monitoring, ["report", "--out", str(out), "--window", "2m",
                                             "--prometheus-url", stack.prometheus_url])
    assert result.exit_code == 0, result.output
    assert "18 alert rules" in result.output
    assert stack.prometheus_url in out.read_text(encoding="utf-8")
    assert datetime.now(UTC).strftime("%Y-%m-%d") in out.read_text(encoding="utf-8")
