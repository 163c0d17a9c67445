"""The Grafana dashboard "CQRS Backend Monitoring" (SPEC §7), built with grafana-foundation-sdk.

Four rows, eleven panels; every query is filtered by the ``namespace`` template variable
(``namespace=~"$namespace"``, so "All" and multi-selection work) and reads SPEC §4 metric names only.
The SLO gauges take their queries and colour bands from :mod:`gxlib.monitoring.catalog`.
"""

from __future__ import annotations

import json
from typing import Any

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.builders import gauge, prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import (
    DataSourceRef,
    Threshold,
    ThresholdsMode,
    ValueMap,
    ValueMappingResult,
    VariableRefresh,
    VariableSort,
)

from gxlib.monitoring.catalog import SLOS, Slo, series
from gxlib.monitoring.settings import MonitoringConfig

NAMESPACE_VARIABLE = "namespace"
DATASOURCE_VARIABLE = "datasource"
NAMESPACE_FILTER = f'namespace=~"${NAMESPACE_VARIABLE}"'
PROMETHEUS = DataSourceRef(type_val="prometheus", uid=f"${{{DATASOURCE_VARIABLE}}}")
DASHBOARD_FILE_NAME = "07-cqrs-backend-monitoring.json"

# Grid geometry: 24 columns; gauges a quarter each, time series half.
GAUGE_WIDTH, GAUGE_HEIGHT = 6, 8
HALF_WIDTH, CHART_HEIGHT = 12, 9
THIRD_WIDTH = 8


def _query(expr: str, legend: str, ref_id: str) -> prometheus.Dataquery:
    return prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref_id).datasource(PROMETHEUS)


def _thresholds(steps: list[tuple[float | None, str]]) -> dashboard_builders.ThresholdsConfig:
    return dashboard_builders.ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps(
        [Threshold(value=start, color=color) for start, color in steps])


def _quantile(q: float, histogram: str) -> str:
    return f"histogram_quantile({q}, sum(rate({series(histogram + '_bucket', NAMESPACE_FILTER)}[5m])) by (le))"


def slo_gauge(slo: Slo) -> gauge.Panel:
    """Row 1: one SLO as a gauge with the colour bands of SPEC §7."""
    comparison = "≥" if slo.higher_is_better else "<"
    unit_text = "%" if slo.unit == "percent" else f" {slo.unit}"
    return (
        gauge.Panel()
        .title(slo.title)
        .description(f"Target {comparison} {slo.target:g}{unit_text}.")
        .datasource(PROMETHEUS)
        .with_target(_query(slo.query(NAMESPACE_FILTER), slo.title, "A").instant())
        .unit(slo.unit)
        .min(slo.min_value)
        .max(slo.max_value)
        .decimals(2 if slo.unit == "percent" else 0)
        .thresholds(_thresholds([(step.from_value, step.color) for step in slo.steps]))
        .show_threshold_markers(True)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .height(GAUGE_HEIGHT)
        .span(GAUGE_WIDTH)
    )


def _timeseries(title: str, description: str, unit: str, width: int = HALF_WIDTH) -> timeseries.Panel:
    return (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(PROMETHEUS)
        .unit(unit)
        .fill_opacity(10)
        .legend(common_builders.VizLegendOptions().show_legend(True).display_mode(common.LegendDisplayMode.LIST)
                .placement(common.LegendPlacement.BOTTOM).calcs(["lastNotNull", "max"]))
        .height(CHART_HEIGHT)
        .span(width)
    )


def _stacked(panel: timeseries.Panel) -> timeseries.Panel:
    return panel.stacking(common_builders.StackingConfig().mode(common.StackingMode.NORMAL)).fill_opacity(60)


def outbox_queue_panel(config: MonitoringConfig) -> timeseries.Panel:
    dlq_critical = config.thresholds.dlq_critical
    return (
        _timeseries("Outbox Command Queue Status",
                    f"Commands PENDING, PROCESSING and in the DLQ; the line marks the DLQ alert at {dlq_critical:g}.",
                    "short")
        .with_target(_query(f"sum({series('outbox_pending_commands', NAMESPACE_FILTER)})", "pending", "A"))
        .with_target(_query(f"sum({series('outbox_processing_commands', NAMESPACE_FILTER)})", "processing", "B"))
        .with_target(_query(f"sum({series('outbox_dlq_commands', NAMESPACE_FILTER)})", "DLQ", "C"))
        .thresholds(_thresholds([(None, "transparent"), (dlq_critical, "red")]))
        .thresholds_style(common_builders.GraphThresholdsStyleConfig().mode(common.GraphThresholdsStyleMode.LINE))
    )


def command_rate_panel() -> timeseries.Panel:
    processed = series("outbox_commands_processed_total", NAMESPACE_FILTER)
    return _stacked(
        _timeseries("Command Processing Rate by Status",
                    "Outbox commands per second by outcome (success / failed / retry) and command type.", "ops")
        .with_target(_query(f"sum by (status, commandType) (rate({processed}[5m]))", "{{commandType}} {{status}}",
                            "A"))
    )


def projection_lag_panel() -> timeseries.Panel:
    lag = series("projector_lag_milliseconds", NAMESPACE_FILTER)
    return (
        _timeseries("Projection Lag and Processing Time",
                    "How far the read models are behind the ledger, and how long one event takes to apply.", "ms")
        .with_target(_query(f"max({lag})", "lag", "A"))
        .with_target(_query(_quantile(0.95, "projector_event_processing_duration_ms"), "processing P95", "B"))
        .with_target(_query(_quantile(0.99, "projector_event_processing_duration_ms"), "processing P99", "C"))
    )


def event_rate_panel() -> timeseries.Panel:
    processed = series("projector_events_processed_total", NAMESPACE_FILTER)
    return _stacked(
        _timeseries("Event Processing Rate by Type",
                    "Chaincode events projected per second (UserCreated, TransferEvent, CoinsMinted, …).", "ops")
        .with_target(_query(f"sum by (eventType) (rate({processed}[5m]))", "{{eventType}}", "A"))
    )


def circuit_breaker_panel() -> stat.Panel:
    states = {"0": ("CLOSED", "green"), "0.5": ("HALF-OPEN", "yellow"), "1": ("OPEN", "red")}
    return (
        stat.Panel()
        .title("Circuit Breaker State")
        .description("Fabric Gateway circuit breaker of the outbox submitter: 0 closed, 0.5 half-open, 1 open.")
        .datasource(PROMETHEUS)
        .with_target(_query(f"max({series('circuit_breaker_state', NAMESPACE_FILTER)})", "state", "A").instant())
        .mappings([ValueMap(options={value: ValueMappingResult(text=text, color=color, index=index)
                                     for index, (value, (text, color)) in enumerate(states.items())})])
        .thresholds(_thresholds([(None, "green"), (0.5, "yellow"), (1, "red")]))
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .graph_mode(common.BigValueGraphMode.NONE)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .height(CHART_HEIGHT)
        .span(THIRD_WIDTH)
    )


def fabric_success_panel() -> timeseries.Panel:
    submissions = series("fabric_transaction_submissions_total", NAMESPACE_FILTER)
    total = f"sum(rate({submissions}[5m]))"

    def share(status: str) -> str:
        selected = series("fabric_transaction_submissions_total", f'status="{status}"', NAMESPACE_FILTER)
        return f"sum(rate({selected}[5m])) / {total} * 100"

    return (
        _timeseries("Fabric Transaction Success Rate", "Share of Fabric submissions that succeeded and failed.",
                    "percent", width=THIRD_WIDTH)
        .with_target(_query(share("success"), "success %", "A"))
        .with_target(_query(share("error"), "error %", "B"))
        .min(0)
        .max(100)
    )


def fabric_duration_panel() -> timeseries.Panel:
    histogram = "fabric_transaction_duration_ms"
    return (
        _timeseries("Fabric Transaction Duration", "Endorse + submit + commit time of one transaction.", "ms",
                    width=THIRD_WIDTH)
        .with_target(_query(_quantile(0.5, histogram), "P50", "A"))
        .with_target(_query(_quantile(0.95, histogram), "P95", "B"))
        .with_target(_query(_quantile(0.99, histogram), "P99", "C"))
    )


def backend_dashboard(config: MonitoringConfig) -> dashboard_builders.Dashboard:
    """The dashboard builder (call ``.build()`` for the model)."""
    namespace_variable = (
        dashboard_builders.QueryVariable(NAMESPACE_VARIABLE)
        .label("Namespace")
        .datasource(PROMETHEUS)
        .query(f'label_values(up{{{config.selectors.backend_jobs}}}, namespace)')
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
    )
    datasource_variable = dashboard_builders.DatasourceVariable(DATASOURCE_VARIABLE).label("Data source").type(
        "prometheus")

    rows: list[tuple[str, list[Any]]] = [
        ("SLO / SLA Overview", [slo_gauge(slo) for slo in SLOS]),
        ("Write Path — Outbox", [outbox_queue_panel(config), command_rate_panel()]),
        ("Read Path — Projection", [projection_lag_panel(), event_rate_panel()]),
        ("Fabric Integration", [circuit_breaker_panel(), fabric_success_panel(), fabric_duration_panel()]),
    ]
    board = (
        dashboard_builders.Dashboard(config.dashboard_title)
        .uid(config.dashboard_uid)
        .description("GX CQRS backend: SLOs, outbox write path, projection read path, Fabric integration.")
        .tags(["gx", "cqrs", "backend", "fabric"])
        .editable()
        .refresh("30s")
        .time("now-1h", "now")
        .timezone("browser")
        .with_variable(datasource_variable)
        .with_variable(namespace_variable)
    )
    # Expanded rows: Grafana keeps the panels of an expanded row after it in the top-level list.
    for title, panels in rows:
        board = board.with_row(dashboard_builders.Row(title).collapsed(False))
        for panel in panels:
            board = board.with_panel(panel)
    return board


def dashboard_json_model(config: MonitoringConfig) -> dict[str, Any]:
    """The dashboard as Grafana's JSON model, with panel IDs assigned in reading order."""
    model: dict[str, Any] = json.loads(json.dumps(backend_dashboard(config).build(), cls=JSONEncoder))
    for panel_id, panel in enumerate(model["panels"], start=1):
        panel["id"] = panel_id
    return model


def render_dashboard_json(config: MonitoringConfig) -> str:
    return json.dumps(dashboard_json_model(config), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
