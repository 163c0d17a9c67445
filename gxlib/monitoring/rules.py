"""The 18 alert rules of group ``gx_backend_cqrs_alerts`` (SPEC §6), as data rendered to Prometheus YAML.

Selectors and thresholds come from :class:`~gxlib.monitoring.settings.MonitoringConfig`. Aggregations keep
the ``namespace`` label: one Prometheus scrapes mainnet, testnet and devnet, and an alert must say which.

Three rules read container resources, which exist only on Kubernetes. On the ``local`` platform (backend
services as plain processes) they read the standard ``process_*`` collector of each backend process instead:

* BackendHighCPU — ``rate(process_cpu_seconds_total)`` against ``local_limits.cpu_cores`` (default one core);
* BackendHighMemory — ``process_resident_memory_bytes`` against ``local_limits.memory_bytes``;
* BackendPodRestartLoop — ``changes(process_start_time_seconds)`` per minute: a process that was restarted
  (by hand or by a supervisor) exposes a new start time.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from gxlib.monitoring.catalog import series
from gxlib.monitoring.settings import MonitoringConfig


class Platform(StrEnum):
    KUBERNETES = "kubernetes"
    LOCAL = "local"


class Severity(StrEnum):
    WARNING = "warning"
    CRITICAL = "critical"


# Go-template pieces of the annotations (Prometheus expands them when the alert fires).
NAMESPACE = "{{ $labels.namespace }}"
INSTANCE = "{{ $labels.instance }}"
JOB = "{{ $labels.job }}"
SERVICE = "{{ $labels.service }}"
CONTAINER = "{{ $labels.pod }}/{{ $labels.container }}"


def value(decimals: int) -> str:
    """The alert's current value, formatted with ``decimals`` digits after the point."""
    return f'{{{{ printf "%.{decimals}f" $value }}}}'


def number(threshold: float) -> str:
    """A threshold as it appears in PromQL and in text: no trailing ``.0``."""
    return f"{threshold:g}"


@dataclass(frozen=True)
class AlertRule:
    name: str
    expr: str
    for_: str
    severity: Severity
    component: str
    summary: str
    description: str

    def to_prometheus(self, runbook_url: str) -> dict[str, Any]:
        """The rule as one entry of a Prometheus rule group."""
        return {
            "alert": self.name,
            "expr": self.expr,
            "for": self.for_,
            "labels": {"severity": self.severity.value, "component": self.component},
            "annotations": {"summary": self.summary, "description": self.description, "runbook_url": runbook_url},
        }


ALERT_NAMES: tuple[str, ...] = (
    "TransactionSuccessRateBelowSLO",
    "ProjectionLagExceedsSLO",
    "ProjectionLagCritical",
    "APIResponseTimeSlow",
    "APIResponseTimeCritical",
    "OutboxQueueBuildup",
    "OutboxQueueCritical",
    "DeadLetterQueueAccumulating",
    "DeadLetterQueueCritical",
    "FabricCircuitBreakerOpen",
    "FabricTransactionFailureRate",
    "FabricTransactionFailureCritical",
    "EventProcessingFailures",
    "BackendServiceDown",
    "BackendHighCPU",
    "BackendHighMemory",
    "BackendPodRestartLoop",
    "DatabaseConnectionPoolExhausted",
)


def alert_rules(config: MonitoringConfig, platform: Platform) -> list[AlertRule]:
    """The 18 rules, in SPEC §6 order, for ``platform``."""
    t = config.thresholds
    backend = config.selectors.backend_series
    processed = "outbox_commands_processed_total"
    submissions = "fabric_transaction_submissions_total"
    succeeded, errored = 'status="success"', 'status="error"'
    success_rate = (f"sum by (namespace) (rate({series(processed, succeeded, backend)}[5m])) "
                    f"/ sum by (namespace) (rate({series(processed, backend)}[5m])) * 100")
    api_p95 = ("histogram_quantile(0.95, sum by (le, namespace, service) "
               f"(rate({series('http_request_duration_ms_bucket', backend)}[5m])))")
    fabric_failure_ratio = (f"sum by (namespace) (rate({series(submissions, errored, backend)}[5m])) "
                            f"/ sum by (namespace) (rate({series(submissions, backend)}[5m]))")
    lag = series("projector_lag_milliseconds", backend)
    pending = series("outbox_pending_commands", backend)
    dlq = series("outbox_dlq_commands", backend)

    success_slo = number(t.transaction_success_rate_percent)

    rules = [
        AlertRule(
            "TransactionSuccessRateBelowSLO", f"{success_rate} < {success_slo}", "5m", Severity.CRITICAL,
            "outbox-submitter",
            f"Outbox command success rate in {NAMESPACE} is below the {success_slo}% SLO",
            f"Over the last 5 minutes {value(2)}% of the outbox commands in {NAMESPACE} succeeded "
            f"(SLO: {success_slo}%).",
        ),
        AlertRule(
            "ProjectionLagExceedsSLO", f"{lag} > {number(t.projection_lag_warning_ms)}", "2m", Severity.WARNING,
            "projector",
            f"Projection lag in {NAMESPACE} exceeds the {number(t.projection_lag_warning_ms)} ms SLO",
            f"The projector {INSTANCE} in {NAMESPACE} is {value(0)} ms behind the ledger "
            f"(SLO: below {number(t.projection_lag_warning_ms)} ms).",
        ),
        AlertRule(
            "ProjectionLagCritical", f"{lag} > {number(t.projection_lag_critical_ms)}", "1m", Severity.CRITICAL,
            "projector",
            f"Projection lag in {NAMESPACE} is above {number(t.projection_lag_critical_ms)} ms",
            f"The projector {INSTANCE} in {NAMESPACE} is {value(0)} ms behind the ledger; read models are stale "
            f"(critical above {number(t.projection_lag_critical_ms)} ms).",
        ),
        AlertRule(
            "APIResponseTimeSlow", f"{api_p95} > {number(t.api_p95_warning_ms)}", "5m", Severity.WARNING, "api",
            f"API P95 response time of {SERVICE} in {NAMESPACE} is above {number(t.api_p95_warning_ms)} ms",
            f"The 95th percentile of {SERVICE} request durations in {NAMESPACE} is {value(0)} ms over 5 minutes "
            f"(SLO: below {number(t.api_p95_warning_ms)} ms).",
        ),
        AlertRule(
            "APIResponseTimeCritical", f"{api_p95} > {number(t.api_p95_critical_ms)}", "2m", Severity.CRITICAL,
            "api",
            f"API P95 response time of {SERVICE} in {NAMESPACE} is above {number(t.api_p95_critical_ms)} ms",
            f"The 95th percentile of {SERVICE} request durations in {NAMESPACE} is {value(0)} ms over 5 minutes "
            f"(critical above {number(t.api_p95_critical_ms)} ms).",
        ),
        AlertRule(
            "OutboxQueueBuildup", f"{pending} > {number(t.outbox_pending_warning)}", "5m", Severity.WARNING,
            "outbox-submitter",
            f"Outbox queue is building up in {NAMESPACE}",
            f"{value(0)} commands are PENDING in the outbox of {NAMESPACE} "
            f"(warning above {number(t.outbox_pending_warning)}).",
        ),
        AlertRule(
            "OutboxQueueCritical", f"{pending} > {number(t.outbox_pending_critical)}", "2m", Severity.CRITICAL,
            "outbox-submitter",
            f"Outbox queue in {NAMESPACE} is critically long",
            f"{value(0)} commands are PENDING in the outbox of {NAMESPACE} "
            f"(critical above {number(t.outbox_pending_critical)}).",
        ),
        AlertRule(
            "DeadLetterQueueAccumulating", f"delta({dlq}[5m]) > {number(t.dlq_growth_in_5m)}", "1m",
            Severity.WARNING, "outbox-submitter",
            f"Dead-letter queue in {NAMESPACE} is growing",
            f"The DLQ of {NAMESPACE} grew by {value(0)} commands in 5 minutes "
            f"(warning above {number(t.dlq_growth_in_5m)}).",
        ),
        AlertRule(
            "DeadLetterQueueCritical", f"{dlq} > {number(t.dlq_critical)}", "1m", Severity.CRITICAL,
            "outbox-submitter",
            f"Dead-letter queue in {NAMESPACE} holds more than {number(t.dlq_critical)} commands",
            f"{value(0)} commands are in the DLQ of {NAMESPACE} (critical above {number(t.dlq_critical)}).",
        ),
        AlertRule(
            # The breaker probes (half-open, 0.5) after its cool-down and re-opens while Fabric is still down, so
            # `== 1` would restart `for` at every probe; "not closed at any sample for a minute" is the open state
            # the operator must act on.
            "FabricCircuitBreakerOpen", f"min_over_time({series('circuit_breaker_state', backend)}[1m]) > 0", "1m",
            Severity.CRITICAL, "outbox-submitter",
            f"Fabric Gateway circuit breaker is open in {NAMESPACE}",
            f"The outbox submitter {INSTANCE} in {NAMESPACE} has kept its Fabric Gateway circuit breaker open "
            f"(lowest state over the last minute {value(1)}; 1 open, 0.5 probing); nothing is submitted, "
            "commands stay PENDING.",
        ),
        AlertRule(
            "FabricTransactionFailureRate", f"{fabric_failure_ratio} > {number(t.fabric_failure_ratio_warning)}",
            "3m", Severity.WARNING, "fabric",
            f"Fabric transaction failure rate in {NAMESPACE} is above {number(t.fabric_failure_ratio_warning * 100)}%",
            f"{{{{ $value | humanizePercentage }}}} of the Fabric transactions submitted from {NAMESPACE} failed "
            f"over 5 minutes (warning above {number(t.fabric_failure_ratio_warning * 100)}%).",
        ),
        AlertRule(
            "FabricTransactionFailureCritical", f"{fabric_failure_ratio} > {number(t.fabric_failure_ratio_critical)}",
            "1m", Severity.CRITICAL, "fabric",
            f"Fabric transaction failure rate in {NAMESPACE} is above {number(t.fabric_failure_ratio_critical * 100)}%",
            f"{{{{ $value | humanizePercentage }}}} of the Fabric transactions submitted from {NAMESPACE} failed "
            f"over 5 minutes (critical above {number(t.fabric_failure_ratio_critical * 100)}%).",
        ),
        AlertRule(
            "EventProcessingFailures",
            f"sum by (namespace) (rate({series('projector_events_failed_total', backend)}[5m])) "
            f"> {number(t.projector_failed_events_per_second)}",
            "3m", Severity.WARNING, "projector",
            f"Projector in {NAMESPACE} is failing to project events",
            f"The projector in {NAMESPACE} fails {value(2)} events per second over 5 minutes "
            f"(warning above {number(t.projector_failed_events_per_second)}); progress stops at a failing event.",
        ),
        AlertRule(
            "BackendServiceDown", f"{series('up', config.selectors.backend_jobs)} == 0", "1m", Severity.CRITICAL,
            "platform",
            f"Backend target {JOB} in {NAMESPACE} is down",
            f"Prometheus cannot scrape {JOB} at {INSTANCE} in {NAMESPACE} (up = {value(0)}).",
        ),
        *_resource_rules(config, platform),
        AlertRule(
            "DatabaseConnectionPoolExhausted",
            f"{series('db_pool_connections_in_use', backend)} >= {series('db_pool_connections_max', backend)}",
            "2m", Severity.CRITICAL, "database",
            f"Database connection pool of {JOB} in {NAMESPACE} is exhausted",
            f"{JOB} at {INSTANCE} in {NAMESPACE} has all {value(0)} pool connections in use; "
            "requests wait for a connection.",
        ),
    ]
    assert tuple(rule.name for rule in rules) == ALERT_NAMES
    return rules


def _resource_rules(config: MonitoringConfig, platform: Platform) -> list[AlertRule]:
    t = config.thresholds
    if platform is Platform.KUBERNETES:
        containers = config.selectors.backend_containers
        by_container = "sum by (namespace, pod, container)"
        cpu_limit, memory_limit = 'resource="cpu"', 'resource="memory"'
        cpu = (f"{by_container} (rate({series('container_cpu_usage_seconds_total', containers)}[5m])) "
               f"/ {by_container} ({series('kube_pod_container_resource_limits', cpu_limit, containers)}) "
               "* 100")
        memory = (f"{by_container} ({series('container_memory_working_set_bytes', containers)}) "
                  f"/ {by_container} ({series('kube_pod_container_resource_limits', memory_limit, containers)})"
                  " * 100")
        restarts = f"rate({series('kube_pod_container_status_restarts_total', containers)}[15m]) * 60"
        where = f"container {CONTAINER} in {NAMESPACE}"
        cpu_of, memory_of = "of its CPU limit", "of its memory limit"
    else:
        jobs = config.selectors.backend_jobs
        limits = config.local_limits
        cpu = f"rate({series('process_cpu_seconds_total', jobs)}[5m]) * 100 / {number(limits.cpu_cores)}"
        memory = f"{series('process_resident_memory_bytes', jobs)} * 100 / {limits.memory_bytes}"
        window = limits.restart_window_minutes
        restarts = f"changes({series('process_start_time_seconds', jobs)}[{window}m]) / {window}"
        where = f"process {JOB} at {INSTANCE} in {NAMESPACE}"
        cpu_of = f"of {number(limits.cpu_cores)} CPU core(s)"
        memory_of = f"of its {limits.memory_bytes // (1024 * 1024)} MiB memory budget"
    return [
        AlertRule(
            "BackendHighCPU", f"{cpu} > {number(t.cpu_percent)}", "5m", Severity.WARNING, "platform",
            f"Backend {where} uses more than {number(t.cpu_percent)}% CPU",
            f"The backend {where} uses {value(1)}% {cpu_of} (warning above {number(t.cpu_percent)}%).",
        ),
        AlertRule(
            "BackendHighMemory", f"{memory} > {number(t.memory_percent_of_limit)}", "5m", Severity.WARNING,
            "platform",
            f"Backend {where} is close to its memory limit",
            f"The backend {where} uses {value(1)}% {memory_of} (warning above {number(t.memory_percent_of_limit)}%).",
        ),
        AlertRule(
            "BackendPodRestartLoop", f"{restarts} > {number(t.restarts_per_minute)}", "5m", Severity.WARNING,
            "platform",
            f"Backend {where} is restarting repeatedly",
            f"The backend {where} restarts {value(2)} times per minute "
            f"(warning above {number(t.restarts_per_minute)}).",
        ),
    ]


def rule_groups_document(config: MonitoringConfig, platform: Platform) -> dict[str, Any]:
    """A Prometheus rules file (``groups:``) holding the one group."""
    return {
        "groups": [{
            "name": config.alert_group,
            "rules": [rule.to_prometheus(config.runbook_url(rule.name)) for rule in alert_rules(config, platform)],
        }]
    }
