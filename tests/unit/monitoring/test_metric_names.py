"""Every metric an alert or a dashboard panel reads is a SPEC §4 name, checked against a real registry.

Expressions are parsed with a PromQL parser (promql-parser), and the metric name of every vector selector
is compared with the series names of a registry built from the catalog (so ``_bucket``/``_total`` suffixes
and the ``process_*`` collectors are checked as Prometheus would see them). Only ``up`` and the
Kubernetes exporters' series (cAdvisor, kube-state-metrics) are allowed besides.
"""

from __future__ import annotations

import re
from typing import Any

import promql_parser
import pytest
from prometheus_client import CollectorRegistry

from gxlib.monitoring.alerts import DeploymentTarget, alert_rules
from gxlib.monitoring.catalog import (
    KUBERNETES_EXPORTER_METRICS,
    PROMETHEUS_SYNTHETIC_METRICS,
    build_metrics,
    registered_series_names,
)
from gxlib.monitoring.dashboard import dashboard_json_model
from gxlib.monitoring.settings import MonitoringConfig


def selected_metric_names(expr: str) -> set[str]:
    """The metric names of every vector selector in ``expr``."""
    names: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            name = node.name or next((m.value for m in node.matchers.matchers if m.name == "__name__"), None)
            assert name, f"selector without a metric name in {expr!r}"
            names.add(name)
        elif isinstance(node, promql_parser.MatrixSelector):
            visit(node.vector_selector)
        elif isinstance(node, promql_parser.Call):
            for arg in node.args:
                visit(arg)
        elif isinstance(node, promql_parser.AggregateExpr):
            visit(node.expr)
            if node.param is not None:
                visit(node.param)
        elif isinstance(node, promql_parser.BinaryExpr):
            visit(node.lhs)
            visit(node.rhs)
        elif isinstance(node, promql_parser.ParenExpr | promql_parser.UnaryExpr | promql_parser.SubqueryExpr):
            visit(node.expr)
        elif not isinstance(node, promql_parser.NumberLiteral | promql_parser.StringLiteral):
            raise AssertionError(f"unhandled PromQL node {type(node).__name__} in {expr!r}")

    visit(promql_parser.parse(expr))
    return names


@pytest.fixture(scope="module")
def allowed_names() -> frozenset[str]:
    registry = CollectorRegistry()
    build_metrics(registry)
    return registered_series_names(registry) | PROMETHEUS_SYNTHETIC_METRICS | KUBERNETES_EXPORTER_METRICS


def alert_expressions() -> list[tuple[str, str]]:
    config = MonitoringConfig()
    return [(f"{target.value}:{rule.name}", rule.expr) for target in DeploymentTarget
            for rule in alert_rules(config, target)]


def panel_expressions() -> list[tuple[str, str]]:
    model = dashboard_json_model(MonitoringConfig())
    return [(f"{panel['title']}:{target['refId']}", target["expr"])
            for panel in model["panels"] for target in panel.get("targets", [])]


def test_the_parser_finds_every_selector_including_histogram_buckets_and_both_sides() -> None:
    expr = ('histogram_quantile(0.95, sum by (le) (rate(a_bucket{x="1"}[5m]))) '
            '/ on(job) group_left max(b) > bool count_over_time(c[1h:5m])')
    assert selected_metric_names(expr) == {"a_bucket", "b", "c"}


@pytest.mark.parametrize(("where", "expr"), alert_expressions())
def test_alert_expression_reads_only_spec_metrics(where: str, expr: str, allowed_names: frozenset[str]) -> None:
    names = selected_metric_names(expr)
    assert names, where
    assert names <= allowed_names, f"{where} reads unknown metrics {sorted(names - allowed_names)}"


@pytest.mark.parametrize(("where", "expr"), panel_expressions())
def test_panel_query_reads_only_spec_metrics(where: str, expr: str, allowed_names: frozenset[str]) -> None:
    names = selected_metric_names(expr)
    assert names, where
    assert names <= allowed_names, f"{where} reads unknown metrics {sorted(names - allowed_names)}"


def test_namespace_variable_query_reads_up_only() -> None:
    model = dashboard_json_model(MonitoringConfig())
    variable = next(v for v in model["templating"]["list"] if v["name"] == "namespace")
    match = re.fullmatch(r"label_values\((.+), namespace\)", variable["query"])
    assert match, variable["query"]
    assert selected_metric_names(match.group(1)) == {"up"}


def test_backend_metrics_used_by_alerts_cover_each_component() -> None:
    used = set().union(*(selected_metric_names(expr) for _, expr in alert_expressions()))
    for expected in ("outbox_commands_processed_total", "projector_lag_milliseconds",
                     "http_request_duration_ms_bucket", "circuit_breaker_state", "db_pool_connections_max"):
        assert expected in used
