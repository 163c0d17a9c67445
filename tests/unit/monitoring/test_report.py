"""The SLO report, built from DataFrames (no Prometheus), and `gx monitoring report` against a fake Prometheus."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner
from plotly.offline import get_plotlyjs_version

from gxlib.monitoring.catalog import SLOS, slo
from gxlib.monitoring.cli import monitoring
from gxlib.monitoring.dashboard import fabric_duration_panel, outbox_queue_panel, projection_lag_panel
from gxlib.monitoring.queries import (
    PrometheusUnreachableError,
    alert_state_frame,
    band_of,
    empty_window,
    namespace_selector,
    slo_status,
    target_health_frame,
)
from gxlib.monitoring.report import (
    NO_DATA,
    PALETTE,
    Chart,
    ReportData,
    alert_states_figure,
    chart_figure,
    collect_report,
    render_report_html,
    report_charts,
    slo_gauges_figure,
    targets_up_query,
    write_report,
)
from gxlib.monitoring.settings import MonitoringConfig
from tests.unit.monitoring.test_queries import FakePrometheus, alerting_rule, matrix, serving, vector

END = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
WINDOW = timedelta(hours=1)
PLOT_IDS = ("slo-gauges", "projection-lag", "outbox-queue", "fabric-tx-duration", "targets-up", "alert-states",
            "target-health")


def slo_frame(values: dict[str, float | None]) -> pd.DataFrame:
    """The shape PrometheusQueries.slo_values returns."""
    rows = []
    for spec in SLOS:
        value = values.get(spec.key)
        rows.append({"slo": spec.key, "title": spec.title, "value": math.nan if value is None else value,
                     "unit": spec.unit, "target": spec.target, "comparison": ">=" if spec.higher_is_better else "<",
                     "thresholds": tuple((step.color, step.from_value) for step in spec.steps),
                     "band": band_of(spec, value).color if value is not None else "",
                     "status": slo_status(spec, value).value, "target_met": None if value is None else spec.met(value),
                     "min": spec.min_value, "max": spec.max_value, "query": spec.query()})
    return pd.DataFrame(rows).set_index("slo")


def report_data(*, with_data: bool) -> ReportData:
    """Fabric duration and target health with data when ``with_data``; everything else empty, as today."""
    charts = []
    times = pd.date_range(END - WINDOW, END, freq="15s", tz="UTC", name="time")
    for spec in report_charts(MonitoringConfig()):
        frame = empty_window()
        if with_data and spec.key == "fabric-tx-duration":
            frame = pd.DataFrame({"P50": 120.0, "P95": 400.0, "P99": 900.0}, index=times)
        if with_data and spec.key == "targets-up":
            frame = pd.DataFrame({"fabric-peer 127.0.0.1:29443": 1.0, "gx-projector 127.0.0.1:9102": 0.0}, index=times)
        charts.append(Chart(spec, frame))
    groups = [{"name": "gx_backend_cqrs_alerts", "rules": [
        alerting_rule("BackendServiceDown", "critical", "firing",
                      [{"state": "firing", "activeAt": "2026-11-25T11:50:00Z", "value": "0e+00", "labels": {}}]),
        alerting_rule("OutboxQueueBuildup", "warning", "inactive", []),
    ]}] if with_data else []
    return ReportData(
        prometheus_url="http://127.0.0.1:19090", generated_at=END, window=WINDOW,
        slos=slo_frame({"transaction_success_rate": 99.95, "api_p95": 420.0} if with_data else {}),
        charts=tuple(charts), alerts=alert_state_frame(groups, "gx_backend_cqrs_alerts"),
        targets=target_health_frame([]))


def annotation_texts(figure: Any) -> list[str]:
    return [annotation.text for annotation in figure.layout.annotations]


# --- the page ---------------------------------------------------------------------------------------------
def test_report_is_one_self_contained_html_file_with_plotly_inlined(tmp_path: Path) -> None:
    path = write_report(report_data(with_data=True), tmp_path / "deep" / "slo-report.html")
    page = path.read_text(encoding="utf-8")

    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    # No script, stylesheet or image is loaded from anywhere: every <script> is inline.
    assert not re.search(r"<script[^>]*\bsrc=", page)
    assert not re.search(r"<link[^>]*\bhref=", page)
    # plotly.js itself is in the file, once (only the first chart carries it), before any chart is drawn.
    banner = f"plotly.js v{get_plotlyjs_version()}"
    assert page.count(banner) == 1
    assert page.index(banner) < page.index("Plotly.newPlot(")
    assert len(page) > 1_000_000  # the minified library
    assert page.count("Plotly.newPlot(") == len(PLOT_IDS)
    for plot_id in PLOT_IDS:
        assert page.count(f'id="{plot_id}"') == 1, plot_id


def test_header_names_the_generation_time_prometheus_url_and_window() -> None:
    page = render_report_html(report_data(with_data=True))
    header = page[page.index("<header>"):page.index("</header>")]
    assert "2026-11-25 12:00:00 UTC" in header
    assert "http://127.0.0.1:19090" in header
    assert "1h — 2026-11-25 11:00:00 UTC → 2026-11-25 12:00:00 UTC" in header
    assert "<title>GX CQRS Backend — SLO Report" in page


def test_every_chart_shows_the_promql_it_ran() -> None:
    page = render_report_html(report_data(with_data=False))
    for spec in report_charts(MonitoringConfig()):
        for query in spec.queries:
            assert query.expression.replace('"', "&quot;") in page
    for objective in SLOS:
        assert objective.query().replace('"', "&quot;") in page


def test_report_with_no_data_anywhere_renders_no_data_notes_not_an_error() -> None:
    data = report_data(with_data=False)
    page = render_report_html(data)
    gauges = slo_gauges_figure(data.slos)
    assert annotation_texts(gauges).count(NO_DATA) == 4
    for chart in data.charts:
        assert NO_DATA in annotation_texts(chart_figure(chart, data.start, data.generated_at)), chart.spec.key
    assert NO_DATA in annotation_texts(alert_states_figure(data.alerts, data.alert_group))
    assert page.count(f'"text":"{NO_DATA}"') == 4 + len(data.charts) + 2


def test_a_chart_with_data_has_one_line_per_series_and_no_no_data_note() -> None:
    data = report_data(with_data=True)
    fabric = next(chart for chart in data.charts if chart.spec.key == "fabric-tx-duration")
    figure = chart_figure(fabric, data.start, data.generated_at)
    assert [trace.name for trace in figure.data] == ["P50", "P95", "P99"]
    assert NO_DATA not in annotation_texts(figure)
    assert list(figure.layout.xaxis.range) == [data.start, data.generated_at]


def test_series_that_are_all_nan_count_as_no_data() -> None:
    spec = report_charts(MonitoringConfig())[0]
    times = pd.date_range(END - WINDOW, END, freq="1min", tz="UTC", name="time")
    chart = Chart(spec, pd.DataFrame({"processing P95": math.nan}, index=times))
    assert NO_DATA in annotation_texts(chart_figure(chart, END - WINDOW, END))


def test_gauges_are_coloured_with_the_catalog_bands_and_mark_the_target() -> None:
    figure = slo_gauges_figure(slo_frame({"transaction_success_rate": 99.95, "projection_lag": 4000.0,
                                          "api_p95": 700.0, "availability": 99.0}))
    assert [trace.name for trace in figure.data] == [spec.key for spec in SLOS]
    for trace, spec in zip(figure.data, SLOS, strict=True):
        steps = trace.gauge.steps
        assert [step.color for step in steps] == [PALETTE[band.color] for band in spec.steps]
        assert steps[0].range[0] == spec.min_value and steps[-1].range[1] == spec.max_value
        inner_edges = [step.range[0] for step in steps[1:]]
        assert inner_edges == [band.from_value for band in spec.steps[1:]]
        assert trace.gauge.threshold.value == spec.target
    lag = figure.data[1]
    assert lag.value == 4000.0 and "warn" in lag.title.text
    assert "breach" in figure.data[2].title.text


def test_charts_reuse_the_dashboard_queries_and_alert_thresholds() -> None:
    config = MonitoringConfig()
    specs = {spec.key: spec for spec in report_charts(config, "backend-local")}
    for key, panel in (("projection-lag", projection_lag_panel()), ("outbox-queue", outbox_queue_panel(config)),
                       ("fabric-tx-duration", fabric_duration_panel())):
        built = panel.build()
        assert specs[key].title == built.title
        assert [q.expression for q in specs[key].queries] == [
            t.expr.replace("$namespace", "backend-local") for t in built.targets]
    assert [line.value for line in specs["outbox-queue"].thresholds] == [config.thresholds.dlq_critical]
    assert [line.value for line in specs["projection-lag"].thresholds] == [
        slo("projection_lag").target, config.thresholds.projection_lag_critical_ms]
    # "Scrape Targets Up" promises backend jobs and Fabric nodes: the namespace's targets, and the nodes (no namespace).
    assert [q.expression for q in specs["targets-up"].queries] == [
        f"up{{{namespace_selector('backend-local')}}} or up{{job=~\"fabric-orderer|fabric-peer\"}}"]


def test_alert_table_colours_rows_by_state() -> None:
    data = report_data(with_data=True)
    figure = alert_states_figure(data.alerts, data.alert_group)
    table = figure.data[0]
    assert list(table.cells.values[0]) == ["BackendServiceDown", "OutboxQueueBuildup"]
    assert list(table.cells.values[1]) == ["firing", "inactive"]
    assert table.cells.fill.color[0][0] != table.cells.fill.color[0][1]
    assert "1 firing, 0 pending, 1 inactive" in figure.layout.title.text


# --- `gx monitoring report` -------------------------------------------------------------------------------
@pytest.fixture
def prometheus_with_fabric_series() -> Iterator[FakePrometheus]:
    fake = FakePrometheus()
    fake.instant[slo("transaction_success_rate").query(namespace_selector())] = [vector("99.99")]
    fake.ranges[targets_up_query()] = [matrix([(END, "1")], job="fabric-peer", instance="p:1")]
    fake.rule_groups = [{"name": "gx_backend_cqrs_alerts", "rules": [
        alerting_rule("BackendServiceDown", "critical", "pending", [])]}]
    with serving(fake) as served:
        yield served


def test_report_command_writes_the_report_from_prometheus(prometheus_with_fabric_series: FakePrometheus,
                                                          tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = CliRunner().invoke(monitoring, ["report", "--out", str(out), "--window", "30m",
                                             "--prometheus-url", prometheus_with_fabric_series.url])
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    assert prometheus_with_fabric_series.url in page
    assert "Transaction Success Rate" in result.output and "ok" in result.output
    assert "1 alert rules, 0 firing" in result.output
    ranges = [params for path, params in prometheus_with_fabric_series.requests if path == "/api/v1/query_range"]
    assert {int(p["end"]) - int(p["start"]) for p in ranges} == {30 * 60}


def test_report_command_refuses_a_malformed_window(tmp_path: Path) -> None:
    result = CliRunner().invoke(monitoring, ["report", "--out", str(tmp_path / "r.html"), "--window", "soon"])
    assert result.exit_code == 2 and "--window" in result.output
    assert not (tmp_path / "r.html").exists()


def test_report_command_against_no_prometheus_fails_naming_the_url(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    result = CliRunner().invoke(monitoring, ["report", "--out", str(tmp_path / "r.html"), "--prometheus-url", url])
    assert isinstance(result.exception, PrometheusUnreachableError)
    assert url in str(result.exception)
    assert not (tmp_path / "r.html").exists()


# --- breaker drills and alert summaries --------------------------------------------------------------------
DRILL_START, DRILL_END = END - timedelta(minutes=4), END - timedelta(minutes=3)


def _prometheus_after_a_drill() -> FakePrometheus:
    """What Prometheus says right after runbook 05's drill: the success rate breached, the breaker alert firing."""
    fake = FakePrometheus()
    fake.instant[slo("transaction_success_rate").query(namespace_selector())] = [vector("50")]
    breaker = alerting_rule("FabricCircuitBreakerOpen", "critical", "firing", [{
        "state": "firing", "activeAt": "2026-11-25T11:56:30Z", "value": "2e+00",
        "labels": {"alertname": "FabricCircuitBreakerOpen", "namespace": "backend-local"}, "annotations": {}}])
    breaker["annotations"]["summary"] = "Fabric Gateway circuit breaker is open in {{ $labels.namespace }}"
    old = alerting_rule("BackendServiceDown", "critical", "firing", [{
        "state": "firing", "activeAt": "2026-11-25T11:10:00Z", "value": "0", "labels": {"job": "gx-api"},
        "annotations": {}}])
    quiet = alerting_rule("ProjectionLagHigh", "warning", "inactive", [])
    quiet["annotations"]["summary"] = "Projection lag in {{ $labels.namespace }} exceeds the 5000 ms SLO"
    fake.rule_groups = [{"name": "gx_backend_cqrs_alerts", "rules": [breaker, old, quiet]}]
    return fake


def _report_after_a_drill(tmp_path: Path) -> tuple[ReportData, str]:
    from gxlib.monitoring.drills import DrillLog
    from gxlib.monitoring.queries import PrometheusQueries

    state = tmp_path / "monitoring"
    DrillLog(state).record(DRILL_START, DRILL_END)
    with serving(_prometheus_after_a_drill()) as fake, PrometheusQueries(fake.url) as queries:
        data = collect_report(queries, WINDOW, MonitoringConfig(stack_state_dir=state), end=END)
    return data, render_report_html(data)


def test_a_recorded_breaker_drill_is_marked_in_the_report_with_what_it_caused(tmp_path: Path) -> None:
    data, page = _report_after_a_drill(tmp_path)
    assert len(data.drills) == 1
    assert 'id="section-drills"' in page and "breaker drill 11:56:00–11:57:00 UTC" in page
    assert "Transaction Success Rate: breach (caused by the breaker drill 11:56:00–11:57:00 UTC)" in page
    assert "It caused: Transaction Success Rate breach now, FabricCircuitBreakerOpen firing." in page
    # Each time-series chart shades the drill.
    for chart in data.charts:
        shapes = chart_figure(chart, data.start, END, data.drills).layout.shapes
        assert any(shape.x0 == DRILL_START and shape.x1 == DRILL_END for shape in shapes), chart.spec.key


def test_only_the_alerts_that_started_during_a_drill_are_put_down_to_it(tmp_path: Path) -> None:
    data, _ = _report_after_a_drill(tmp_path)
    table = alert_states_figure(data.alerts, data.alert_group, data).data[0]
    names, notes = list(table.cells.values[0]), list(table.cells.values[-1])
    assert notes[names.index("FabricCircuitBreakerOpen")].startswith("caused by the breaker drill 11:56:00")
    assert notes[names.index("BackendServiceDown")] == ""  # active since 11:10, long before the drill


def test_a_drill_long_before_the_window_is_not_marked(tmp_path: Path) -> None:
    from gxlib.monitoring.drills import DrillLog
    from gxlib.monitoring.queries import PrometheusQueries

    state = tmp_path / "monitoring"
    DrillLog(state).record(END - timedelta(hours=3), END - timedelta(hours=3) + timedelta(minutes=1))
    with serving(_prometheus_after_a_drill()) as fake, PrometheusQueries(fake.url) as queries:
        data = collect_report(queries, WINDOW, MonitoringConfig(stack_state_dir=state), end=END)
    page = render_report_html(data)
    assert data.drills == () and "section-drills" not in page and "caused by the breaker drill" not in page


def test_alert_summaries_are_filled_in_not_shown_as_templates(tmp_path: Path) -> None:
    data, page = _report_after_a_drill(tmp_path)
    summaries = data.alerts["summary"].to_dict()
    assert summaries["FabricCircuitBreakerOpen"] == "Fabric Gateway circuit breaker is open in backend-local"
    assert summaries["ProjectionLagHigh"] == "Projection lag in <namespace> exceeds the 5000 ms SLO"
    assert "$labels" not in page and "Fabric Gateway circuit breaker is open in backend-local" in page
