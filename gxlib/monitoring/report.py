"""The SLO report (SPEC §8 runbook 5): one self-contained HTML file with plotly charts.

It shows the four SLO gauges with the colour bands of SPEC §7, projection lag, the outbox queue, Fabric
transaction duration quantiles and scrape-target health over a window, and the state of every alert rule.
plotly.js is inlined once, so the file opens on a machine without internet. A series with no data is drawn as
an empty chart carrying a "no data" note (and the query that returned nothing), never left blank.

Two halves, so the rendering is testable without Prometheus: :func:`collect_report` asks Prometheus
(:mod:`gxlib.monitoring.queries`) and returns a :class:`ReportData` of DataFrames; :func:`render_report_html`
turns any ``ReportData`` into the page. :func:`build_slo_report` does both and writes the file.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from gxlib.monitoring.catalog import SLOS, slo
from gxlib.monitoring.dashboard import fabric_duration_panel, outbox_queue_panel, projection_lag_panel
from gxlib.monitoring.drills import Drill, DrillLog
from gxlib.monitoring.queries import (
    ALL_NAMESPACES,
    PanelQuery,
    PrometheusQueries,
    SloStatus,
    format_duration,
    panel_queries,
    target_up_query,
)
from gxlib.monitoring.scrape import FABRIC_ORDERER_JOB, FABRIC_PEER_JOB
from gxlib.monitoring.settings import MonitoringConfig

REPORT_TITLE = "GX CQRS Backend — SLO Report"
NO_DATA = "no data"
# Grafana's named colours, so the gauges read like the dashboard's (SPEC §7 bands).
PALETTE: dict[str, str] = {"green": "#73BF69", "yellow": "#FADE2A", "orange": "#FF9830", "red": "#F2495C",
                           "transparent": "rgba(0,0,0,0)"}
STATUS_COLOURS: dict[str, str] = {SloStatus.OK: "#73BF69", SloStatus.WARN: "#E0B400", SloStatus.BREACH: "#F2495C",
                                  SloStatus.NO_DATA: "#8E8E8E"}
ALERT_STATE_FILL: dict[str, str] = {"firing": "#FCD7DB", "pending": "#FFE7CC", "inactive": "#FFFFFF"}
TARGET_HEALTH_FILL: dict[str, str] = {"up": "#FFFFFF", "down": "#FCD7DB", "unknown": "#EFEFEF"}
UNIT_SUFFIX: dict[str, str] = {"ms": " ms", "percent": "%", "short": ""}
GAUGES_HEIGHT, CHART_HEIGHT = 330, 380
ROW_HEIGHT, LINE_HEIGHT, TABLE_WIDTH_PX, CHAR_WIDTH_PX = 28, 18, 1000, 7
PLOTLY_CONFIG: dict[str, Any] = {"displaylogo": False, "responsive": True}
# The SLO a breaker drill's retries count against (``status="retry"`` is in its denominator).
DRILL_AFFECTED_SLO = "transaction_success_rate"
DRILL_FILL, DRILL_AFTERMATH_FILL = "rgba(242,73,92,0.18)", "rgba(242,73,92,0.07)"
CLOCK = "%H:%M:%S"


@dataclass(frozen=True)
class ThresholdLine:
    """A horizontal line on a chart: where an alert or SLO target lies."""

    label: str
    value: float
    color: str


@dataclass(frozen=True)
class ChartSpec:
    """What one time-series chart of the report shows and how it is asked for."""

    key: str  # the HTML id of its plot
    title: str
    description: str
    unit: str  # Grafana unit id (ms, short, percent)
    queries: tuple[PanelQuery, ...]
    thresholds: tuple[ThresholdLine, ...] = ()
    y_range: tuple[float, float] | None = None  # fixed y axis (a 0/1 series would sit on the frame's edges)


@dataclass(frozen=True)
class Chart:
    spec: ChartSpec
    frame: pd.DataFrame  # indexed by UTC time, one column per series; empty when nothing answered


@dataclass(frozen=True)
class ReportData:
    """Everything the page shows; each part a DataFrame in the shape :mod:`gxlib.monitoring.queries` returns."""

    prometheus_url: str
    generated_at: datetime
    window: timedelta
    slos: pd.DataFrame
    charts: tuple[Chart, ...]
    alerts: pd.DataFrame
    targets: pd.DataFrame
    namespace: str = ALL_NAMESPACES
    alert_group: str = "gx_backend_cqrs_alerts"
    # Circuit-breaker drills (runbook 05's deliberate Gateway outages) whose effect reaches into the window.
    drills: tuple[Drill, ...] = ()

    @property
    def start(self) -> datetime:
        return self.generated_at - self.window

    def drill_at(self, moment: datetime | pd.Timestamp | None) -> Drill | None:
        """The drill whose outage or aftermath ``moment`` lies in, if any."""
        if moment is None or pd.isna(moment):
            return None
        when = moment.to_pydatetime(warn=False) if isinstance(moment, pd.Timestamp) else moment
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return next((drill for drill in self.drills if drill.affects(when)), None)


def drill_text(drill: Drill) -> str:
    """``breaker drill 12:01:02–12:02:40 UTC``."""
    return f"breaker drill {drill.started.astimezone(UTC):{CLOCK}}–{drill.ended.astimezone(UTC):{CLOCK}} UTC"


def _panel_chart(key: str, panel: Any, namespace: str, thresholds: Sequence[ThresholdLine] = ()) -> ChartSpec:
    built = panel.build()
    return ChartSpec(key=key, title=built.title, description=built.description or "",
                     unit=built.field_config.defaults.unit or "short",
                     queries=tuple(panel_queries(built.targets, namespace)), thresholds=tuple(thresholds))


def report_charts(config: MonitoringConfig, namespace: str = ALL_NAMESPACES) -> tuple[ChartSpec, ...]:
    """The report's time-series charts, with the dashboard panels' queries and the alert thresholds."""
    lag_slo, limits = slo("projection_lag"), config.thresholds
    return (
        _panel_chart("projection-lag", projection_lag_panel(), namespace, (
            ThresholdLine(f"SLO target {lag_slo.target:g} ms", lag_slo.target, PALETTE["orange"]),
            ThresholdLine(f"critical {limits.projection_lag_critical_ms:g} ms", limits.projection_lag_critical_ms,
                          PALETTE["red"]))),
        _panel_chart("outbox-queue", outbox_queue_panel(config), namespace, (
            ThresholdLine(f"DLQ alert {limits.dlq_critical:g}", limits.dlq_critical, PALETTE["red"]),)),
        _panel_chart("fabric-tx-duration", fabric_duration_panel(), namespace),
        ChartSpec("targets-up", "Scrape Targets Up",
                  "1 when Prometheus scraped the target, 0 when the scrape failed (backend jobs and Fabric nodes).",
                  "short", (PanelQuery("{{job}} {{instance}}", targets_up_query(namespace)),), y_range=(-0.1, 1.1)),
    )


def targets_up_query(namespace: str = ALL_NAMESPACES) -> str:
    """``up`` of the backend's targets in ``namespace`` and of the Fabric nodes, which carry no backend namespace
    (a devnet's nodes have none; a cluster's live in the Fabric namespace)."""
    fabric = f'up{{job=~"{FABRIC_ORDERER_JOB}|{FABRIC_PEER_JOB}"}}'
    return f"{target_up_query(namespace)} or {fabric}"


# --- collecting -----------------------------------------------------------------------------------------
def collect_report(queries: PrometheusQueries, window: timedelta, config: MonitoringConfig | None = None,
                   *, end: datetime | None = None, drills: Sequence[Drill] | None = None) -> ReportData:
    """Ask Prometheus for everything the report shows, over ``window`` ending at ``end`` (default now).

    ``drills``: the circuit-breaker drills to mark; default those in the drill log of the local monitoring stack
    (``config.stack_state_dir``) whose effect reaches into the window.
    """
    config = config or MonitoringConfig()
    end = end or datetime.now(UTC)
    if drills is None:
        drills = DrillLog(config.stack_state_dir).affecting(end - window, end)
    charts = tuple(Chart(spec, queries.panel_window(spec.queries, window, end=end))
                   for spec in report_charts(config, queries.namespace))
    return ReportData(prometheus_url=queries.url, generated_at=end, window=window,
                      slos=queries.slo_values(at=end), charts=charts, alerts=queries.alert_states(),
                      targets=queries.target_health(), namespace=queries.namespace, alert_group=queries.alert_group,
                      drills=tuple(drills))


# --- figures --------------------------------------------------------------------------------------------
def _no_data_annotation(figure: go.Figure, text: str, *, x: float = 0.5, y: float = 0.5, size: int = 20) -> None:
    figure.add_annotation(text=text, x=x, y=y, xref="paper", yref="paper", showarrow=False,
                          font={"size": size, "color": STATUS_COLOURS[SloStatus.NO_DATA]}, name=NO_DATA)


def _gauge_steps(row: pd.Series) -> list[dict[str, Any]]:
    """The SLO's colour bands (its ``thresholds``: colour and start, ascending) as plotly gauge steps, clipped to
    the gauge's range."""
    bands: Sequence[tuple[str, float | None]] = row["thresholds"]
    low, high = float(row["min"]), float(row["max"])
    steps = []
    for index, (color, from_value) in enumerate(bands):
        start = low if from_value is None else max(low, from_value)
        next_start = bands[index + 1][1] if index + 1 < len(bands) else None
        stop = high if next_start is None else min(high, next_start)
        if stop > start:
            steps.append({"range": [start, stop], "color": PALETTE.get(color, color)})
    return steps


def slo_gauges_figure(slos: pd.DataFrame, drill_now: Drill | None = None) -> go.Figure:
    """The four SLO gauges side by side, coloured by band, with the target marked; "no data" where empty; the
    success rate marked when ``drill_now`` (a breaker drill) still counts in it."""
    figure = go.Figure()
    count = max(len(slos), 1)
    for index, (key, row) in enumerate(slos.iterrows()):
        left, right = index / count + 0.015, (index + 1) / count - 0.015
        value = float(row["value"])
        has_value = not math.isnan(value)
        status = str(row["status"])
        comparison = "≥" if row["comparison"] == ">=" else "<"
        suffix = UNIT_SUFFIX.get(str(row["unit"]), f" {row['unit']}")
        subtitle = (f"<span style='font-size:12px'>target {comparison} {row['target']:g}{suffix} · "
                    f"<b style='color:{STATUS_COLOURS.get(status, '#000')}'>{status}</b></span>")
        if drill_now is not None and key == DRILL_AFFECTED_SLO and status != SloStatus.OK:
            subtitle += f"<br><span style='font-size:11px;color:#a1121b'>caused by the {drill_text(drill_now)}</span>"
        figure.add_trace(go.Indicator(
            mode="gauge+number" if has_value else "gauge",
            value=value if has_value else None,
            name=str(key),
            title={"text": f"{row['title']}<br>{subtitle}", "font": {"size": 15}},
            number={"suffix": suffix, "valueformat": ".2f" if row["unit"] == "percent" else ".0f"},
            domain={"x": [left, right], "y": [0.0, 0.78]},
            gauge={
                "axis": {"range": [float(row["min"]), float(row["max"])]},
                "bar": {"color": "#1F2937" if has_value else "rgba(0,0,0,0)", "thickness": 0.25},
                "steps": _gauge_steps(row),
                "threshold": {"line": {"color": "#111111", "width": 3}, "thickness": 0.9,
                              "value": float(row["target"])},
            },
        ))
        if not has_value:
            _no_data_annotation(figure, NO_DATA, x=(left + right) / 2, y=0.12, size=18)
    if slos.empty:
        _no_data_annotation(figure, f"{NO_DATA}: no SLO was evaluated")
    figure.update_layout(title={"text": "SLO / SLA overview (now)", "x": 0.01}, height=GAUGES_HEIGHT,
                         margin={"l": 30, "r": 30, "t": 60, "b": 10}, paper_bgcolor="white")
    return figure


def chart_figure(chart: Chart, start: datetime, end: datetime, drills: Sequence[Drill] = ()) -> go.Figure:
    """One time-series chart over [start, end]; its threshold lines; a "no data" note when nothing answered; each
    breaker drill shaded (the outage, then lighter while its retries stay in the success rate's window)."""
    spec, frame = chart.spec, chart.frame.dropna(axis="columns", how="all")
    figure = go.Figure()
    for drill in drills:
        figure.add_vrect(x0=max(drill.started, start), x1=min(drill.ended, end), fillcolor=DRILL_FILL, line_width=0,
                         layer="below", annotation_text="breaker drill", annotation_position="top left",
                         annotation_font={"size": 10, "color": "#a1121b"}, name="breaker drill")
        if drill.ended < end:
            figure.add_vrect(x0=max(drill.ended, start), x1=min(drill.affects_until, end),
                             fillcolor=DRILL_AFTERMATH_FILL, line_width=0, layer="below", name="drill aftermath")
    for column in frame.columns:
        values = frame[column].dropna()
        figure.add_trace(go.Scatter(x=values.index, y=values.to_numpy(), name=str(column), mode="lines",
                                    line={"width": 2}))
    has_data = not frame.empty and len(frame.columns) > 0
    for line in spec.thresholds:
        figure.add_hline(y=line.value, line={"color": line.color, "dash": "dash", "width": 1.5},
                         annotation_text=line.label, annotation_position="top left",
                         annotation_font={"color": line.color, "size": 11})
    yaxis: dict[str, Any] = {"range": list(spec.y_range)} if spec.y_range else {"rangemode": "tozero"}
    if not has_data:
        _no_data_annotation(figure, NO_DATA)
        _no_data_annotation(figure, "no series answered in this window", y=0.36, size=12)
        # An empty frame with the thresholds in view (so it is clear where an alert would be), no invented ticks.
        top = max((line.value for line in spec.thresholds), default=0.0)
        yaxis = {"range": [0, top * 1.25]} if top else {"range": [0, 1], "showticklabels": False}
    suffix = UNIT_SUFFIX.get(spec.unit, f" {spec.unit}").strip()
    description = html.escape(spec.description, quote=False)
    figure.update_layout(
        title={"text": f"{spec.title}<br><span style='font-size:12px;color:#555'>{description}</span>", "x": 0.01},
        height=CHART_HEIGHT, margin={"l": 60, "r": 30, "t": 80, "b": 40}, paper_bgcolor="white",
        plot_bgcolor="#FAFAFA", showlegend=has_data, legend={"orientation": "h", "y": -0.15},
        xaxis={"range": [start, end], "type": "date", "title": None},
        yaxis={"title": suffix or None, **yaxis},
    )
    return figure


def _table_figure(title: str, frame: pd.DataFrame, columns: Sequence[tuple[str, str, float]], fills: list[str],
                  empty_note: str) -> go.Figure:
    """A table of ``frame``'s columns (name, header, relative width), rows filled with ``fills``."""
    figure = go.Figure()
    if frame.empty:
        _no_data_annotation(figure, NO_DATA)
        _no_data_annotation(figure, html.escape(empty_note, quote=False), y=0.36, size=12)
        figure.update_xaxes(visible=False)
        figure.update_yaxes(visible=False)
        height = 220
    else:
        cells = [[_cell(value) for value in frame[column]] for column, _, _ in columns]
        weights = [weight for _, _, weight in columns]
        figure.add_trace(go.Table(
            columnwidth=weights,
            header={"values": [f"<b>{header}</b>" for _, header, _ in columns], "fill_color": "#E5E7EB",
                    "align": "left", "height": ROW_HEIGHT},
            cells={"values": cells, "fill_color": [fills] * len(columns), "align": "left", "height": ROW_HEIGHT},
        ))
        height = 90 + ROW_HEIGHT + sum(_row_height(row, weights) for row in zip(*cells, strict=True))
    figure.update_layout(title={"text": title, "x": 0.01}, height=height, paper_bgcolor="white",
                         plot_bgcolor="white", margin={"l": 20, "r": 20, "t": 60, "b": 10})
    return figure


def _row_height(row: Sequence[str], weights: Sequence[float]) -> int:
    """How tall a table row gets when its longest cell wraps (plotly sizes rows to their text, but the figure's
    height must be set beforehand; estimated for a narrow 1000 px table, so it errs on the tall side)."""
    lines = 1
    for text, weight in zip(row, weights, strict=True):
        chars_per_line = max(8, int(weight / sum(weights) * TABLE_WIDTH_PX / CHAR_WIDTH_PX))
        lines = max(lines, math.ceil(len(text) / chars_per_line))
    return ROW_HEIGHT + LINE_HEIGHT * (lines - 1)


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
        return ""
    if isinstance(value, pd.Timestamp):
        return str(value.strftime("%Y-%m-%d %H:%M:%S UTC"))
    if isinstance(value, float):
        return f"{value:g}"
    return html.escape(str(value), quote=False)


def alert_notes(alerts: pd.DataFrame, data: ReportData | None) -> list[str]:
    """Per alert row: what caused it, when an active alert became active during a breaker drill or its aftermath."""
    notes = []
    for _, row in alerts.iterrows():
        drill = data.drill_at(row.get("active_since")) if data is not None and row.get("state") != "inactive" else None
        notes.append(f"caused by the {drill_text(drill)} (a deliberate outage)" if drill is not None else "")
    return notes


def alert_states_figure(alerts: pd.DataFrame, alert_group: str, data: ReportData | None = None) -> go.Figure:
    """Every alert rule of the group: state (row coloured: firing red, pending orange), severity, since when, its
    summary (filled in), and whether a breaker drill caused it."""
    frame = alerts.reset_index()
    fills = [ALERT_STATE_FILL.get(str(state), "#FFFFFF") for state in frame.get("state", [])]
    if "summary" not in frame:
        frame["summary"] = ""
    frame["note"] = alert_notes(frame, data)
    columns = [("alert", "alert", 3), ("state", "state", 1), ("severity", "severity", 1), ("for_s", "for (s)", 1),
               ("active", "active alerts", 1), ("active_since", "active since", 2), ("value", "value", 1),
               ("summary", "summary", 5), ("note", "note", 4)]
    counts = frame["state"].value_counts().to_dict() if not frame.empty else {}
    tally = ", ".join(f"{counts.get(state, 0)} {state}" for state in ("firing", "pending", "inactive"))
    return _table_figure(f"Alert rules — group {alert_group}" + (f" ({tally})" if tally else ""), frame, columns,
                         fills, f"alert group {alert_group} is not loaded in Prometheus")


def target_health_figure(targets: pd.DataFrame) -> go.Figure:
    fills = [TARGET_HEALTH_FILL.get(str(health), "#FFFFFF") for health in targets.get("health", [])]
    columns = [("job", "job", 2), ("instance", "instance", 2), ("namespace", "namespace", 1.5), ("health", "health", 1),
               ("last_scrape", "last scrape", 2), ("last_error", "last error", 5)]
    return _table_figure("Scrape targets (now)", targets, columns, fills, "Prometheus has no active scrape target")


# --- the page -------------------------------------------------------------------------------------------
PAGE_STYLE = """
body { font-family: -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; margin: 24px; color: #111827;
       background: #F3F4F6; }
header { background: white; padding: 16px 20px; border-radius: 6px; margin-bottom: 16px; }
h1 { font-size: 22px; margin: 0 0 8px 0; }
dl { display: grid; grid-template-columns: max-content auto; gap: 4px 16px; margin: 0; font-size: 14px; }
dt { color: #6B7280; } dd { margin: 0; font-family: monospace; }
section { background: white; padding: 8px; border-radius: 6px; margin-bottom: 16px; }
.row { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }
.row section { margin-bottom: 0; }
details.queries { font-size: 12px; color: #4B5563; margin: 4px 8px; }
details.queries pre { white-space: pre-wrap; word-break: break-all; }
footer { color: #6B7280; font-size: 12px; margin-top: 16px; }
"""


def _figure_html(figure: go.Figure, div_id: str, include_plotlyjs: bool) -> str:
    return str(figure.to_html(full_html=False, include_plotlyjs=include_plotlyjs, div_id=div_id,
                              config=PLOTLY_CONFIG, include_mathjax=False))


def _queries_html(queries: Sequence[PanelQuery]) -> str:
    if not queries:
        return ""
    lines = "\n".join(f"{html.escape(query.legend or '-')}: {html.escape(query.expression)}" for query in queries)
    return f'<details class="queries"><summary>PromQL</summary><pre>{lines}</pre></details>'


def render_report_html(data: ReportData) -> str:
    """The whole report as one HTML document (plotly.js inlined in the first chart, no external request)."""
    stamp = "%Y-%m-%d %H:%M:%S UTC"
    generated = data.generated_at.astimezone(UTC)
    start = data.start.astimezone(UTC)
    drill_now = data.drill_at(generated)
    figures: list[tuple[str, go.Figure]] = [("slo-gauges", slo_gauges_figure(data.slos, drill_now))]
    figures += [(chart.spec.key, chart_figure(chart, start, generated, data.drills)) for chart in data.charts]
    figures += [("alert-states", alert_states_figure(data.alerts, data.alert_group, data)),
                ("target-health", target_health_figure(data.targets))]
    rendered = [(key, _figure_html(figure, key, include_plotlyjs=index == 0))
                for index, (key, figure) in enumerate(figures)]
    queries = {chart.spec.key: _queries_html(chart.spec.queries) for chart in data.charts}
    queries["slo-gauges"] = _queries_html([PanelQuery(str(title), str(query))
                                           for title, query in zip(data.slos.get("title", []),
                                                                   data.slos.get("query", []), strict=True)])
    sections = [f'<section id="section-{key}">{body}{queries.get(key, "")}</section>' for key, body in rendered]
    # Gauges full width, the time series two by two, the tables full width.
    charts = sections[1:1 + len(data.charts)]
    paired = [f'<div class="row">{"".join(charts[i:i + 2])}</div>' for i in range(0, len(charts), 2)]
    body = [*drills_html(data), sections[0], *paired, *sections[1 + len(data.charts):]]
    namespace = "all" if data.namespace == ALL_NAMESPACES else data.namespace
    meta = [
        ("Generated", generated.strftime(stamp)),
        ("Prometheus", data.prometheus_url),
        ("Window", f"{format_duration(data.window)} — {start.strftime(stamp)} → {generated.strftime(stamp)}"),
        ("Namespace", namespace),
        ("SLO status", ", ".join(f"{row['title']}: {row['status']}{_drill_caused(data, key, row, drill_now)}"
                                 for key, row in data.slos.iterrows()) or NO_DATA),
    ]
    if data.drills:
        meta.append(("Breaker drills", "; ".join(drill_text(drill) for drill in data.drills)))
    meta_html = "".join(f"<dt>{html.escape(name)}</dt><dd>{html.escape(value)}</dd>" for name, value in meta)
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(REPORT_TITLE)} · {html.escape(generated.strftime(stamp))}</title>",
        f"<style>{PAGE_STYLE}</style></head><body>",
        f'<header><h1>{html.escape(REPORT_TITLE)}</h1><dl id="report-meta">{meta_html}</dl></header>',
        *body,
        f"<footer>gx monitoring report · {len(SLOS)} SLOs (SPEC §7) · alert group {html.escape(data.alert_group)}"
        "</footer>",
        "</body></html>",
    ]) + "\n"


def _drill_caused(data: ReportData, key: Any, row: pd.Series, drill_now: Drill | None) -> str:
    if drill_now is None or key != DRILL_AFFECTED_SLO or row["status"] == SloStatus.OK:
        return ""
    return f" (caused by the {drill_text(drill_now)})"


def drills_html(data: ReportData) -> list[str]:
    """The section that says which breaker drills the window holds and what they caused, or nothing."""
    if not data.drills:
        return []
    items = []
    for drill in data.drills:
        caused = []
        if data.drill_at(data.generated_at) is drill:
            row = data.slos.loc[DRILL_AFFECTED_SLO] if DRILL_AFFECTED_SLO in data.slos.index else None
            if row is not None and row["status"] != SloStatus.OK:
                caused.append(f"{row['title']} {row['status']} now")
        alerts = data.alerts.reset_index()
        caused += [f"{name} {state}" for name, state, note in zip(alerts.get("alert", []), alerts.get("state", []),
                                                                  alert_notes(alerts, data), strict=True)
                   if note and drill_text(drill) in note]
        effect = f" It caused: {', '.join(caused)}." if caused else ""
        items.append(
            f'<li class="drill"><b>{html.escape(drill_text(drill))}</b>: the Gateway was made unreachable on '
            f"purpose (runbook 05), so the circuit breaker opened and commands were retried. Those retries count "
            f"against the Transaction Success Rate until {drill.affects_until.astimezone(UTC):{CLOCK}} UTC (they "
            f"leave its 5-minute rate window); alerts on the failure rate and the breaker that start in that time "
            f"are the drill's, not an incident.{html.escape(effect)}</li>")
    return [f'<section id="section-drills" style="padding:8px 20px;border-left:6px solid #F2495C">'
            f"<h2 style=\"font-size:16px;margin:4px 0\">Circuit-breaker drills in this window (shaded in the "
            f'charts)</h2><ul>{"".join(items)}</ul></section>']


def write_report(data: ReportData, path: Path) -> Path:
    """Write the report to ``path`` (parent directories created); returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report_html(data), encoding="utf-8")
    return path


def build_slo_report(prometheus_url: str, out: Path, window: timedelta, *, config: MonitoringConfig | None = None,
                     namespace: str = ALL_NAMESPACES, end: datetime | None = None) -> ReportData:
    """Query the Prometheus at ``prometheus_url`` and write the report to ``out``; returns what it showed."""
    config = config or MonitoringConfig()
    with PrometheusQueries(prometheus_url, namespace=namespace, alert_group=config.alert_group) as queries:
        data = collect_report(queries, window, config, end=end)
    write_report(data, out)
    return data
