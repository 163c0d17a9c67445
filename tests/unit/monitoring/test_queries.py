"""The query layer against a fake Prometheus: real HTTP on loopback, canned answers in the HTTP API's format."""

from __future__ import annotations

import json
import math
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pandas as pd
import pytest

from gxlib.monitoring.catalog import SLOS, slo
from gxlib.monitoring.dashboard import outbox_queue_panel
from gxlib.monitoring.queries import (
    PanelQuery,
    PrometheusQueries,
    PrometheusQueryError,
    PrometheusResponseError,
    PrometheusUnreachableError,
    SloStatus,
    band_of,
    namespace_selector,
    panel_queries,
    parse_duration,
    slo_status,
)
from gxlib.monitoring.settings import MonitoringConfig

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
ALL = namespace_selector()


# --- the fake Prometheus ----------------------------------------------------------------------------------
@dataclass
class FakePrometheus:
    """Answers /api/v1/{query,query_range,rules,targets} from canned data; records what it was asked.

    An expression with no canned answer gets an empty result, as Prometheus gives for series that do not exist.
    """

    url: str = ""
    instant: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    ranges: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    refused: dict[str, tuple[int, str, str]] = field(default_factory=dict)  # expr → (HTTP status, type, error)
    rule_groups: list[dict[str, Any]] = field(default_factory=list)
    active_targets: list[dict[str, Any]] = field(default_factory=list)
    not_prometheus: bool = False  # answer every request with an HTML page (a wrong URL)
    runtime_info: dict[str, Any] = field(default_factory=lambda: {"reloadConfigSuccess": True,
                                                                  "lastConfigTime": "2026-11-25T12:00:00Z"})
    scrape_pools: list[str] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    reload_refusal: str | None = None  # the body of a refused /-/reload (HTTP 500)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def answer(self, path: str, params: dict[str, str]) -> tuple[int, str, bytes]:
        self.requests.append((path, params))
        if self.not_prometheus:
            return 200, "text/html", b"<html><body>Grafana login</body></html>"
        expression = params.get("query", "")
        if expression in self.refused:
            status, error_type, error = self.refused[expression]
            return self._json(status, {"status": "error", "errorType": error_type, "error": error})
        if path == "/api/v1/query":
            result = self.instant.get(expression, [])
            return self._json(200, {"status": "success", "data": {"resultType": "vector", "result": result}})
        if path == "/api/v1/query_range":
            result = self.ranges.get(expression, [])
            return self._json(200, {"status": "success", "data": {"resultType": "matrix", "result": result}})
        if path == "/api/v1/rules":
            return self._json(200, {"status": "success", "data": {"groups": self.rule_groups}})
        if path == "/api/v1/status/runtimeinfo":
            return self._json(200, {"status": "success", "data": self.runtime_info})
        if path == "/api/v1/scrape_pools":
            return self._json(200, {"status": "success", "data": {"scrapePools": self.scrape_pools}})
        if path == "/api/v1/alerts":
            return self._json(200, {"status": "success", "data": {"alerts": self.alerts}})
        if path == "/-/ready":
            return 200, "text/plain", b"Prometheus Server is Ready.\n"
        if path == "/-/reload":
            refused = self.reload_refusal is not None
            return (500 if refused else 200), "text/plain", (self.reload_refusal or "").encode()
        if path == "/api/v1/targets":
            return self._json(200, {"status": "success",
                                    "data": {"activeTargets": self.active_targets, "droppedTargets": []}})
        return 404, "text/plain", b"404 page not found\n"

    @staticmethod
    def _json(status: int, body: dict[str, Any]) -> tuple[int, str, bytes]:
        return status, "application/json", json.dumps(body).encode()


def fake_prometheus_handler(fake: FakePrometheus) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self, params: dict[str, str]) -> None:
            split = urlsplit(self.path)
            params = {**{k: v[-1] for k, v in parse_qs(split.query).items()}, **params}
            status, content_type, body = fake.answer(split.path, params)
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            self._serve({})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            form = parse_qs(self.rfile.read(length).decode())
            self._serve({k: v[-1] for k, v in form.items()})

        def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
            pass

    return Handler


@contextmanager
def serving(fake: FakePrometheus) -> Iterator[FakePrometheus]:
    """``fake`` served on a free loopback port (its ``url`` set) until the block ends."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), fake_prometheus_handler(fake))
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def fake_prometheus() -> Iterator[FakePrometheus]:
    with serving(FakePrometheus()) as fake:
        yield fake


def vector(value: str, at: datetime = NOW, **labels: str) -> dict[str, Any]:
    return {"metric": labels, "value": [at.timestamp(), value]}


def matrix(values: list[tuple[datetime, str]], **labels: str) -> dict[str, Any]:
    return {"metric": labels, "values": [[at.timestamp(), value] for at, value in values]}


def alerting_rule(name: str, severity: str, state: str | None, alerts: list[dict[str, Any]]) -> dict[str, Any]:
    """An alerting rule as Prometheus 2.42 lists it in /api/v1/rules (``state`` left out when None)."""
    rule: dict[str, Any] = {
        "name": name, "query": f"{name.lower()} > 0", "duration": 60, "labels": {"severity": severity},
        "annotations": {"summary": f"{name} summary", "runbook_url": f"https://runbooks/{name}.md"},
        "alerts": alerts, "health": "ok", "evaluationTime": 0.0003, "lastEvaluation": "2026-11-25T12:00:00Z",
        "type": "alerting",
    }
    if state is not None:
        rule["state"] = state
    return rule


def active_alert(state: str, active_at: str, value: str) -> dict[str, Any]:
    return {"labels": {"alertname": "x"}, "annotations": {}, "state": state, "activeAt": active_at, "value": value}


# --- SLOs ---------------------------------------------------------------------------------------------------
def test_slo_values_carry_value_target_band_and_status(fake_prometheus: FakePrometheus) -> None:
    fake_prometheus.instant = {
        slo("transaction_success_rate").query(ALL): [vector("99.95")],
        slo("projection_lag").query(ALL): [vector("4000")],
        slo("api_p95").query(ALL): [vector("NaN")],  # histogram_quantile over zero rates
        # availability: no kube-state-metrics locally → empty result
    }
    with PrometheusQueries(fake_prometheus.url) as queries:
        slos = queries.slo_values(at=NOW)

    assert list(slos.index) == [s.key for s in SLOS]
    success = slos.loc["transaction_success_rate"]
    assert (success["value"], success["target"], success["band"], success["status"], success["target_met"]) == (
        99.95, 99.9, "green", "ok", True)
    assert success["thresholds"] == (("red", None), ("orange", 95), ("yellow", 99), ("green", 99.9))
    lag = slos.loc["projection_lag"]
    assert (lag["value"], lag["band"], lag["status"], lag["comparison"]) == (4000, "yellow", "warn", "<")
    for key in ("api_p95", "availability"):
        assert math.isnan(slos.loc[key, "value"]) and slos.loc[key, "status"] == "no data"
    # Each SLO was asked with the catalog's expression, at the requested time.
    asked = [params for path, params in fake_prometheus.requests if path == "/api/v1/query"]
    assert [p["query"] for p in asked] == [s.query(ALL) for s in SLOS]
    assert {float(p["time"]) for p in asked} == {NOW.timestamp()}


@pytest.mark.parametrize(("key", "value", "band", "status"), [
    ("transaction_success_rate", 99.95, "green", SloStatus.OK),
    ("transaction_success_rate", 99.9, "green", SloStatus.OK),
    ("transaction_success_rate", 99.5, "yellow", SloStatus.WARN),
    ("transaction_success_rate", 97.0, "orange", SloStatus.BREACH),
    ("transaction_success_rate", 50.0, "red", SloStatus.BREACH),
    ("projection_lag", 0.0, "green", SloStatus.OK),
    ("projection_lag", 3000.0, "yellow", SloStatus.WARN),
    ("projection_lag", 7000.0, "orange", SloStatus.BREACH),
    ("projection_lag", 12000.0, "red", SloStatus.BREACH),
    ("api_p95", 299.0, "green", SloStatus.OK),
    ("api_p95", 1000.0, "red", SloStatus.BREACH),
    ("availability", 99.97, "green", SloStatus.OK),
    ("availability", 99.92, "yellow", SloStatus.WARN),
    ("availability", 98.0, "red", SloStatus.BREACH),
])
def test_status_follows_the_catalog_colour_bands(key: str, value: float, band: str, status: SloStatus) -> None:
    assert band_of(slo(key), value).color == band
    assert slo_status(slo(key), value) is status


def test_missing_or_nan_value_has_status_no_data() -> None:
    assert slo_status(slo("api_p95"), None) is SloStatus.NO_DATA
    assert slo_status(slo("api_p95"), math.nan) is SloStatus.NO_DATA


def test_slo_queries_are_narrowed_to_the_namespace(fake_prometheus: FakePrometheus) -> None:
    with PrometheusQueries(fake_prometheus.url, namespace="backend-local") as queries:
        queries.slo_values()
    asked = [params["query"] for path, params in fake_prometheus.requests if path == "/api/v1/query"]
    assert asked == [s.query('namespace=~"backend-local"') for s in SLOS]


# --- a metric over a window -----------------------------------------------------------------------------------
def test_window_is_indexed_by_time_with_one_column_per_series(fake_prometheus: FakePrometheus) -> None:
    times = [NOW - timedelta(seconds=30), NOW - timedelta(seconds=15), NOW]
    fake_prometheus.ranges["up"] = [
        matrix([(t, "1") for t in times], __name__="up", job="fabric-peer", instance="127.0.0.1:29443"),
        matrix([(t, "0") for t in times[1:]], __name__="up", job="gx-projector", instance="127.0.0.1:9102"),
    ]
    with PrometheusQueries(fake_prometheus.url) as queries:
        frame = queries.window("up", timedelta(minutes=1), end=NOW, step=timedelta(seconds=15))

    assert isinstance(frame.index, pd.DatetimeIndex) and str(frame.index.tz) == "UTC"
    assert frame.index.name == "time"
    assert list(frame.index) == [pd.Timestamp(t) for t in times]
    peer = '{instance="127.0.0.1:29443", job="fabric-peer"}'
    projector = '{instance="127.0.0.1:9102", job="gx-projector"}'
    assert list(frame.columns) == [peer, projector]
    assert frame[peer].tolist() == [1.0, 1.0, 1.0]
    assert math.isnan(frame[projector].iloc[0]) and frame[projector].iloc[1:].tolist() == [0.0, 0.0]
    path, params = fake_prometheus.requests[-1]
    assert path == "/api/v1/query_range"
    assert (int(params["start"]), int(params["end"]), params["step"]) == (
        int((NOW - timedelta(minutes=1)).timestamp()), int(NOW.timestamp()), "15s")


def test_window_without_series_is_an_empty_frame_indexed_by_time(fake_prometheus: FakePrometheus) -> None:
    with PrometheusQueries(fake_prometheus.url) as queries:
        frame = queries.window("outbox_pending_commands", timedelta(hours=1), end=NOW)
    assert frame.empty and isinstance(frame.index, pd.DatetimeIndex) and list(frame.columns) == []
    # 1 h in ~240 points: a 15 s step.
    assert fake_prometheus.requests[-1][1]["step"] == "15s"


def test_panel_window_names_each_column_by_the_panel_legend(fake_prometheus: FakePrometheus) -> None:
    queries_of_panel = panel_queries(outbox_queue_panel(MonitoringConfig()).build().targets)
    pending, _, dlq = queries_of_panel
    fake_prometheus.ranges[pending.expression] = [matrix([(NOW, "3")])]
    fake_prometheus.ranges[dlq.expression] = [matrix([(NOW, "1")])]
    with PrometheusQueries(fake_prometheus.url) as queries:
        frame = queries.panel_window(queries_of_panel, timedelta(minutes=5), end=NOW)
    assert list(frame.columns) == ["pending", "DLQ"]  # processing answered nothing
    assert frame.loc[pd.Timestamp(NOW)].tolist() == [3.0, 1.0]


def test_panel_queries_set_the_dashboard_namespace_variable() -> None:
    targets = outbox_queue_panel(MonitoringConfig()).build().targets
    assert [q.expression for q in panel_queries(targets, "backend-local")] == [
        t.expr.replace("$namespace", "backend-local") for t in targets]
    assert all("$" not in q.expression for q in panel_queries(targets))
    assert [q.legend for q in panel_queries(targets)] == ["pending", "processing", "DLQ"]


def test_legend_templates_are_filled_from_the_labels(fake_prometheus: FakePrometheus) -> None:
    query = PanelQuery("{{job}} {{instance}}", "up")
    fake_prometheus.ranges["up"] = [matrix([(NOW, "1")], job="fabric-orderer", instance="127.0.0.1:29444")]
    with PrometheusQueries(fake_prometheus.url) as queries:
        frame = queries.panel_window([query], timedelta(minutes=1), end=NOW)
    assert list(frame.columns) == ["fabric-orderer 127.0.0.1:29444"]


# --- alert states and targets ---------------------------------------------------------------------------------
def test_alert_states_list_every_rule_of_the_group_with_its_state(fake_prometheus: FakePrometheus) -> None:
    fake_prometheus.rule_groups = [
        {"name": "other_group", "file": "other.yml", "interval": 15,
         "rules": [alerting_rule("SomethingElse", "info", "firing", [])]},
        {"name": "gx_backend_cqrs_alerts", "file": "rules/gx.yml", "interval": 15, "rules": [
            alerting_rule("TransactionSuccessRateBelowSLO", "critical", "inactive", []),
            alerting_rule("BackendServiceDown", "critical", "firing", [
                active_alert("firing", "2026-11-25T11:58:00.5Z", "0e+00"),
                active_alert("pending", "2026-11-25T11:59:30Z", "0e+00")]),
            alerting_rule("OutboxQueueBuildup", "warning", None, [  # no rule-level state: derived from alerts
                active_alert("pending", "2026-11-25T11:59:00Z", "1.5e+02")]),
        ]},
    ]
    with PrometheusQueries(fake_prometheus.url) as queries:
        alerts = queries.alert_states()

    assert list(alerts.index) == ["TransactionSuccessRateBelowSLO", "BackendServiceDown", "OutboxQueueBuildup"]
    assert alerts["state"].tolist() == ["inactive", "firing", "pending"]
    assert alerts["severity"].tolist() == ["critical", "critical", "warning"]
    assert alerts["active"].tolist() == [0, 2, 1]
    assert alerts.loc["BackendServiceDown", "active_since"] == pd.Timestamp("2026-11-25T11:58:00.5Z")
    assert alerts.loc["OutboxQueueBuildup", "value"] == 150.0
    assert alerts.loc["OutboxQueueBuildup", "runbook_url"] == "https://runbooks/OutboxQueueBuildup.md"
    assert fake_prometheus.requests[-1] == ("/api/v1/rules", {"type": "alert"})


def test_alert_states_are_empty_when_the_group_is_not_loaded(fake_prometheus: FakePrometheus) -> None:
    with PrometheusQueries(fake_prometheus.url) as queries:
        alerts = queries.alert_states()
    assert alerts.empty and "state" in alerts.columns


def test_target_health_lists_every_active_target(fake_prometheus: FakePrometheus) -> None:
    fake_prometheus.active_targets = [
        {"discoveredLabels": {}, "labels": {"instance": "127.0.0.1:9102", "job": "gx-projector",
                                            "namespace": "backend-local"},
         "scrapePool": "gx-projector", "scrapeUrl": "http://127.0.0.1:9102/metrics", "globalUrl": "",
         "lastError": 'Get "http://127.0.0.1:9102/metrics": dial tcp 127.0.0.1:9102: connect: connection refused',
         "lastScrape": "2026-11-25T11:59:59.1Z", "lastScrapeDuration": 0.0004, "health": "down",
         "scrapeInterval": "15s", "scrapeTimeout": "10s"},
        {"discoveredLabels": {}, "labels": {"instance": "127.0.0.1:29443", "job": "fabric-peer", "node": "peer0-org1"},
         "scrapePool": "fabric-peer", "scrapeUrl": "http://127.0.0.1:29443/metrics", "globalUrl": "",
         "lastError": "", "lastScrape": "2026-11-25T11:59:58Z", "lastScrapeDuration": 0.01, "health": "up",
         "scrapeInterval": "15s", "scrapeTimeout": "10s"},
    ]
    with PrometheusQueries(fake_prometheus.url) as queries:
        targets = queries.target_health()
    assert targets[["job", "health"]].values.tolist() == [["fabric-peer", "up"], ["gx-projector", "down"]]
    assert "connection refused" in targets.loc[1, "last_error"]
    assert targets.loc[1, "namespace"] == "backend-local"
    assert targets.loc[0, "last_scrape"] == pd.Timestamp("2026-11-25T11:59:58Z")
    assert fake_prometheus.requests[-1] == ("/api/v1/targets", {"state": "active"})


# --- errors -----------------------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_prometheus_is_an_error_naming_the_url() -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    with PrometheusQueries(url, retries=0) as queries, pytest.raises(PrometheusUnreachableError) as caught:
        queries.slo_values()
    assert url in str(caught.value) and caught.value.url == url
    with PrometheusQueries(url, retries=0) as queries, pytest.raises(PrometheusUnreachableError):
        queries.alert_states()


def test_a_refused_expression_is_a_query_error_naming_it(fake_prometheus: FakePrometheus) -> None:
    bad = "sum(rate(outbox_pending_commands[5m]) by"
    fake_prometheus.refused[bad] = (400, "bad_data", 'invalid parameter "query": 1:41: parse error: unexpected <by>')
    with PrometheusQueries(fake_prometheus.url) as queries, pytest.raises(PrometheusQueryError) as caught:
        queries.window(bad, timedelta(minutes=5), end=NOW)
    error = caught.value
    assert error.expression == bad and bad in str(error)
    assert (error.error_type, error.url) == ("bad_data", fake_prometheus.url)
    assert "parse error: unexpected <by>" in error.detail


def test_an_expression_prometheus_cannot_evaluate_is_a_query_error(fake_prometheus: FakePrometheus) -> None:
    clash = "up + on() up"
    fake_prometheus.refused[clash] = (422, "execution", "found duplicate series for the match group")
    with PrometheusQueries(fake_prometheus.url) as queries, pytest.raises(PrometheusQueryError) as caught:
        queries.instant(clash)
    assert caught.value.expression == clash and caught.value.error_type == "execution"


def test_a_url_that_is_not_prometheus_is_a_response_error(fake_prometheus: FakePrometheus) -> None:
    fake_prometheus.not_prometheus = True
    with PrometheusQueries(fake_prometheus.url) as queries, pytest.raises(PrometheusResponseError) as caught:
        queries.target_health()
    assert fake_prometheus.url in str(caught.value)


@pytest.mark.parametrize(("text", "seconds"), [("1h", 3600), ("30m", 1800), ("1h30m", 5400), ("2d", 172800),
                                               ("90s", 90), ("1.5h", 5400)])
def test_windows_are_read_as_prometheus_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "1", "h", "1x", "-1h", "0m", "1h 30m"])
def test_a_malformed_window_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


# --- the server itself: ready, reload, what it runs with ---------------------------------------------------
def test_ready_and_a_refused_reload_are_answers_the_operator_can_read(fake_prometheus: FakePrometheus) -> None:
    with PrometheusQueries(fake_prometheus.url) as prometheus:
        assert prometheus.unready() is None
        prometheus.reload()
        fake_prometheus.reload_refusal = "failed to reload config: parse error in rules.yml"
        with pytest.raises(PrometheusResponseError, match=r"HTTP 500: failed to reload config: parse error"):
            prometheus.reload()
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"
    with PrometheusQueries(url, retries=0) as nowhere:
        assert (nowhere.unready() or "").startswith(f"Prometheus at {url} is unreachable (GET /-/ready)")


def test_the_loaded_configuration_is_the_rendered_one_only_with_its_rules_and_jobs(
        fake_prometheus: FakePrometheus) -> None:
    rendered = [{"alert": "A", "for": "1m", "labels": {"severity": "critical"}, "annotations": {"summary": "a"}}]
    fake_prometheus.rule_groups = [{"name": "gx", "rules": [
        {"name": "A", "duration": 60, "labels": {"severity": "critical"}, "annotations": {"summary": "a"}}]}]
    fake_prometheus.scrape_pools = ["gx-projector"]
    with PrometheusQueries(fake_prometheus.url) as prometheus:
        loaded = prometheus.loaded_configuration()
    assert loaded.loaded_at == datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    assert loaded.state("gx", rendered, ["gx-projector"]) == (True, "last reload successful; 1 rules in gx")
    ok, state = loaded.state("gx", rendered, ["gx-projector", "gx-outbox-submitter"])
    assert not ok and state.endswith("scrape jobs missing: gx-outbox-submitter")
    assert loaded.state("gx", rendered, None)[0], "jobs unchecked (Prometheus 2.42 lists no scrape pools)"
    changed = [{**rendered[0], "annotations": {"summary": "a (new threshold)"}}]
    assert loaded.state("gx", changed, None) == (False, "last reload successful; 1 rules in gx, not as rendered: A")
    fake_prometheus.runtime_info["reloadConfigSuccess"] = False
    with PrometheusQueries(fake_prometheus.url) as prometheus:
        assert prometheus.loaded_configuration().state("gx", rendered, None)[1].startswith("last reload FAILED")


def test_an_alerts_state_is_its_most_advanced_instances(fake_prometheus: FakePrometheus) -> None:
    fake_prometheus.alerts = [{"labels": {"alertname": "B"}, "state": "pending"},
                              {"labels": {"alertname": "B"}, "state": "firing"},
                              {"labels": {"alertname": "C"}, "state": "pending"}]
    with PrometheusQueries(fake_prometheus.url) as prometheus:
        assert [prometheus.alert_state(name) for name in ("B", "C", "D")] == ["firing", "pending", "inactive"]
