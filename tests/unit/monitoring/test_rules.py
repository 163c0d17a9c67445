"""The 18 alert rules of SPEC §6: names, order, for, severity, annotations, runbooks, configuration."""

from __future__ import annotations

import pytest

from gxlib.monitoring.alerts import ALERT_NAMES, DeploymentTarget, alert_rules, rule_groups_document
from gxlib.monitoring.settings import AlertThresholds, MonitoringConfig

from .conftest import REPO_ROOT

SPEC_TABLE = [
    ("TransactionSuccessRateBelowSLO", "5m", "critical"),
    ("ProjectionLagExceedsSLO", "2m", "warning"),
    ("ProjectionLagCritical", "1m", "critical"),
    ("APIResponseTimeSlow", "5m", "warning"),
    ("APIResponseTimeCritical", "2m", "critical"),
    ("OutboxQueueBuildup", "5m", "warning"),
    ("OutboxQueueCritical", "2m", "critical"),
    ("DeadLetterQueueAccumulating", "1m", "warning"),
    ("DeadLetterQueueCritical", "1m", "critical"),
    ("FabricCircuitBreakerOpen", "1m", "critical"),
    ("FabricTransactionFailureRate", "3m", "warning"),
    ("FabricTransactionFailureCritical", "1m", "critical"),
    ("EventProcessingFailures", "3m", "warning"),
    ("BackendServiceDown", "1m", "critical"),
    ("BackendHighCPU", "5m", "warning"),
    ("BackendHighMemory", "5m", "warning"),
    ("BackendPodRestartLoop", "5m", "warning"),
    ("DatabaseConnectionPoolExhausted", "2m", "critical"),
]


@pytest.mark.parametrize("target", list(DeploymentTarget))
def test_group_holds_the_18_spec_rules_in_order_with_for_and_severity(target: DeploymentTarget) -> None:
    (group,) = rule_groups_document(MonitoringConfig(), target)["groups"]
    assert group["name"] == "gx_backend_cqrs_alerts"
    assert [(r["alert"], r["for"], r["labels"]["severity"]) for r in group["rules"]] == SPEC_TABLE


@pytest.mark.parametrize("target", list(DeploymentTarget))
def test_every_rule_has_summary_description_with_value_and_runbook(target: DeploymentTarget) -> None:
    for rule in rule_groups_document(MonitoringConfig(), target)["groups"][0]["rules"]:
        annotations = rule["annotations"]
        assert annotations["summary"], rule["alert"]
        assert "$value" in annotations["description"], rule["alert"]
        assert annotations["runbook_url"] == (
            f"https://gxlib.example/blob/main/docs/runbooks/alerts/{rule['alert']}.md")


@pytest.mark.parametrize("alert", ALERT_NAMES)
def test_runbook_url_points_at_a_written_response_with_the_four_parts(alert: str) -> None:
    runbook = REPO_ROOT / "docs" / "runbooks" / "alerts" / f"{alert}.md"
    assert runbook.is_file(), f"no written response for {alert} at {runbook}"
    text = runbook.read_text(encoding="utf-8")
    assert text.startswith(f"# {alert}\n")
    for heading in ("## What it means", "## How to confirm", "## What to do", "## How to verify"):
        assert heading in text, f"{runbook.name} lacks {heading!r}"
    assert "```" in text, f"{runbook.name} gives no concrete query or command"


def test_spec_expressions_in_their_essence() -> None:
    rules = {r.name: r.expr for r in alert_rules(MonitoringConfig(), DeploymentTarget.LOCAL)}
    assert rules["ProjectionLagCritical"] == 'projector_lag_milliseconds{namespace=~"backend-.*"} > 10000'
    assert rules["DeadLetterQueueAccumulating"] == 'delta(outbox_dlq_commands{namespace=~"backend-.*"}[5m]) > 10'
    assert rules["FabricCircuitBreakerOpen"] == 'min_over_time(circuit_breaker_state{namespace=~"backend-.*"}[1m]) > 0'
    assert rules["BackendServiceDown"] == 'up{job=~"gx-.*"} == 0'
    assert rules["DatabaseConnectionPoolExhausted"] == (
        'db_pool_connections_in_use{namespace=~"backend-.*"} >= db_pool_connections_max{namespace=~"backend-.*"}')
    assert rules["TransactionSuccessRateBelowSLO"].endswith("* 100 < 99.9")


def test_thresholds_and_selectors_are_configuration() -> None:
    config = MonitoringConfig(thresholds=AlertThresholds(projection_lag_critical_ms=20000),
                              runbook_base_url="https://runbooks.internal/gx/")
    config.selectors.backend_series = 'namespace="backend-testnet"'
    rules = {r["alert"]: r for r in rule_groups_document(config, DeploymentTarget.KUBERNETES)["groups"][0]["rules"]}
    assert rules["ProjectionLagCritical"]["expr"] == 'projector_lag_milliseconds{namespace="backend-testnet"} > 20000'
    assert rules["ProjectionLagCritical"]["annotations"]["runbook_url"] == (
        "https://runbooks.internal/gx/ProjectionLagCritical.md")


def test_resource_alerts_read_containers_on_kubernetes_and_processes_locally() -> None:
    kubernetes = {r.name: r.expr for r in alert_rules(MonitoringConfig(), DeploymentTarget.KUBERNETES)}
    local = {r.name: r.expr for r in alert_rules(MonitoringConfig(), DeploymentTarget.LOCAL)}
    assert "container_cpu_usage_seconds_total" in kubernetes["BackendHighCPU"]
    assert "kube_pod_container_resource_limits" in kubernetes["BackendHighMemory"]
    assert "kube_pod_container_status_restarts_total" in kubernetes["BackendPodRestartLoop"]
    assert "process_cpu_seconds_total" in local["BackendHighCPU"]
    assert "process_resident_memory_bytes" in local["BackendHighMemory"]
    assert "changes(process_start_time_seconds" in local["BackendPodRestartLoop"]
    same = set(ALERT_NAMES) - {"BackendHighCPU", "BackendHighMemory", "BackendPodRestartLoop"}
    assert {name: kubernetes[name] for name in same} == {name: local[name] for name in same}
