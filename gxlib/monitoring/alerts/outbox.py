"""Outbox alerts: the PENDING queue and the dead-letter queue (SPEC §6 rules 6–9)."""

from __future__ import annotations

from gxlib.monitoring.alerts.rule import NAMESPACE, AlertRule, Severity, number, value
from gxlib.monitoring.catalog import series
from gxlib.monitoring.settings import MonitoringConfig

ALERT_NAMES: tuple[str, ...] = (
    "OutboxQueueBuildup",
    "OutboxQueueCritical",
    "DeadLetterQueueAccumulating",
    "DeadLetterQueueCritical",
)


def outbox_rules(config: MonitoringConfig) -> list[AlertRule]:
    """The outbox alerts, in SPEC §6 order."""
    t = config.thresholds
    pending = series("outbox_pending_commands", config.selectors.backend_series)
    dlq = series("outbox_dlq_commands", config.selectors.backend_series)
    return [
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
    ]
