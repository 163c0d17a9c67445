"""Fabric alerts: the submitter's Gateway circuit breaker and the share of failed submissions (SPEC §6 rules
10–12)."""

from __future__ import annotations

from gxlib.monitoring.alerts.rule import INSTANCE, NAMESPACE, AlertRule, Severity, number, value
from gxlib.monitoring.catalog import series
from gxlib.monitoring.settings import MonitoringConfig

ALERT_NAMES: tuple[str, ...] = (
    "FabricCircuitBreakerOpen",
    "FabricTransactionFailureRate",
    "FabricTransactionFailureCritical",
)


def fabric_rules(config: MonitoringConfig) -> list[AlertRule]:
    """The Fabric alerts, in SPEC §6 order."""
    t = config.thresholds
    backend = config.selectors.backend_series
    submissions, errored = "fabric_transaction_submissions_total", 'status="error"'
    failure_ratio = (f"sum by (namespace) (rate({series(submissions, errored, backend)}[5m])) "
                     f"/ sum by (namespace) (rate({series(submissions, backend)}[5m]))")
    return [
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
            "FabricTransactionFailureRate", f"{failure_ratio} > {number(t.fabric_failure_ratio_warning)}",
            "3m", Severity.WARNING, "fabric",
            f"Fabric transaction failure rate in {NAMESPACE} is above {number(t.fabric_failure_ratio_warning * 100)}%",
            f"{{{{ $value | humanizePercentage }}}} of the Fabric transactions submitted from {NAMESPACE} failed "
            f"over 5 minutes (warning above {number(t.fabric_failure_ratio_warning * 100)}%).",
        ),
        AlertRule(
            "FabricTransactionFailureCritical", f"{failure_ratio} > {number(t.fabric_failure_ratio_critical)}",
            "1m", Severity.CRITICAL, "fabric",
            f"Fabric transaction failure rate in {NAMESPACE} is above {number(t.fabric_failure_ratio_critical * 100)}%",
            f"{{{{ $value | humanizePercentage }}}} of the Fabric transactions submitted from {NAMESPACE} failed "
            f"over 5 minutes (critical above {number(t.fabric_failure_ratio_critical * 100)}%).",
        ),
    ]
