"""The "CQRS Backend Monitoring" dashboard (SPEC §7) as rendered JSON."""

from __future__ import annotations

import json
from typing import Any

import pytest
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard

from gxlib.monitoring.dashboard import dashboard_json_model
from gxlib.monitoring.render import K8S_DASHBOARD_FILE, Artifact
from gxlib.monitoring.settings import MonitoringConfig


@pytest.fixture(scope="module")
def model(rendered: dict[str, Artifact]) -> dict[str, Any]:
    return json.loads(rendered[str(K8S_DASHBOARD_FILE)].content)


def rows_and_panels(model: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rows = [p for p in model["panels"] if p["type"] == "row"]
    panels = [p for p in model["panels"] if p["type"] != "row"] + [p for r in rows for p in r.get("panels", [])]
    return rows, panels


def steps(panel: dict[str, Any]) -> list[tuple[float | None, str]]:
    return [(s["value"], s["color"]) for s in panel["fieldConfig"]["defaults"]["thresholds"]["steps"]]


def test_title_and_uid_are_stable(model: dict[str, Any]) -> None:
    assert model["title"] == "CQRS Backend Monitoring"
    assert model["uid"] == "gx-cqrs-backend"
    assert dashboard_json_model(MonitoringConfig())["uid"] == model["uid"]


def test_four_rows_and_eleven_panels_in_spec_order(model: dict[str, Any]) -> None:
    rows, panels = rows_and_panels(model)
    assert [r["title"] for r in rows] == [
        "SLO / SLA Overview", "Write Path — Outbox", "Read Path — Projection", "Fabric Integration"]
    assert [(p["type"], p["title"]) for p in panels] == [
        ("gauge", "Transaction Success Rate"), ("gauge", "Projection Lag"), ("gauge", "API Response Time P95"),
        ("gauge", "System Availability"),
        ("timeseries", "Outbox Command Queue Status"), ("timeseries", "Command Processing Rate by Status"),
        ("timeseries", "Projection Lag and Processing Time"), ("timeseries", "Event Processing Rate by Type"),
        ("stat", "Circuit Breaker State"), ("timeseries", "Fabric Transaction Success Rate"),
        ("timeseries", "Fabric Transaction Duration"),
    ]


def test_panel_ids_are_unique_and_panels_do_not_overlap(model: dict[str, Any]) -> None:
    ids = [p["id"] for p in model["panels"]]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for panel in model["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24
        columns, lines = range(grid["x"], grid["x"] + grid["w"]), range(grid["y"], grid["y"] + grid["h"])
        area = {(x, y) for x in columns for y in lines}
        assert not cells & area, f"{panel['title']} overlaps another panel"
        cells |= area


def test_slo_gauges_have_the_spec_thresholds(model: dict[str, Any]) -> None:
    gauges = {p["title"]: p for p in model["panels"] if p["type"] == "gauge"}
    assert steps(gauges["Transaction Success Rate"]) == [(None, "red"), (95, "orange"), (99, "yellow"), (99.9, "green")]
    assert steps(gauges["Projection Lag"]) == [(None, "green"), (3000, "yellow"), (5000, "orange"), (10000, "red")]
    assert steps(gauges["API Response Time P95"]) == [(None, "green"), (300, "yellow"), (500, "orange"), (1000, "red")]
    assert steps(gauges["System Availability"]) == [(None, "red"), (99, "orange"), (99.9, "yellow"), (99.95, "green")]
    assert gauges["Projection Lag"]["fieldConfig"]["defaults"]["unit"] == "ms"
    assert gauges["Transaction Success Rate"]["fieldConfig"]["defaults"]["unit"] == "percent"


def test_gauge_queries_are_the_spec_queries_filtered_by_namespace(model: dict[str, Any]) -> None:
    gauges = {p["title"]: p["targets"][0]["expr"] for p in model["panels"] if p["type"] == "gauge"}
    ns = 'namespace=~"$namespace"'
    assert gauges["Transaction Success Rate"] == (
        f'(sum(rate(outbox_commands_processed_total{{status="success",{ns}}}[5m])) '
        f"/ sum(rate(outbox_commands_processed_total{{{ns}}}[5m]))) * 100")
    assert gauges["API Response Time P95"] == (
        f"histogram_quantile(0.95, sum(rate(http_request_duration_ms_bucket{{{ns}}}[5m])) by (le))")
    assert gauges["System Availability"] == (
        f"(1 - (sum(rate(kube_pod_container_status_restarts_total{{{ns}}}[1h])) "
        f"/ count(kube_pod_container_status_running{{{ns}}}))) * 100")


def test_every_target_is_filtered_by_the_namespace_variable(model: dict[str, Any]) -> None:
    _, panels = rows_and_panels(model)
    targets = [t for p in panels for t in p["targets"]]
    assert len(targets) >= 11
    for target in targets:
        assert target["expr"].count("{") == target["expr"].count('namespace=~"$namespace"'), target["expr"]


def test_namespace_variable_is_multi_select_with_all(model: dict[str, Any]) -> None:
    variables = {v["name"]: v for v in model["templating"]["list"]}
    namespace = variables["namespace"]
    assert namespace["type"] == "query" and namespace["multi"] and namespace["includeAll"]
    assert namespace["allValue"] == ".*"
    assert variables["datasource"]["query"] == "prometheus"


def test_circuit_breaker_stat_maps_the_three_states_to_colours(model: dict[str, Any]) -> None:
    stat = next(p for p in model["panels"] if p["title"] == "Circuit Breaker State")
    (mapping,) = stat["fieldConfig"]["defaults"]["mappings"]
    assert {value: (o["text"], o["color"]) for value, o in mapping["options"].items()} == {
        "0": ("CLOSED", "green"), "0.5": ("HALF-OPEN", "yellow"), "1": ("OPEN", "red")}
    assert steps(stat) == [(None, "green"), (0.5, "yellow"), (1, "red")]


def test_outbox_queue_panel_draws_the_dlq_threshold_line(model: dict[str, Any]) -> None:
    panel = next(p for p in model["panels"] if p["title"] == "Outbox Command Queue Status")
    assert [t["legendFormat"] for t in panel["targets"]] == ["pending", "processing", "DLQ"]
    assert (50, "red") in steps(panel)
    assert panel["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"] == "line"


def test_stacked_rate_panels(model: dict[str, Any]) -> None:
    for title in ("Command Processing Rate by Status", "Event Processing Rate by Type"):
        panel = next(p for p in model["panels"] if p["title"] == title)
        assert panel["fieldConfig"]["defaults"]["custom"]["stacking"]["mode"] == "normal"


def test_json_reads_back_through_the_sdk_schema(model: dict[str, Any]) -> None:
    """The SDK's typed model reads every field and writes the same JSON back (nothing unknown, nothing lost)."""
    parsed = Dashboard.from_json(model)
    assert parsed.uid == "gx-cqrs-backend"
    assert json.loads(json.dumps(parsed, cls=JSONEncoder)) == model
