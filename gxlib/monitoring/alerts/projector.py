"""Projector alerts: events that fail to project (SPEC §6 rule 13). The projector's lag is an SLO (``slo``)."""

from __future__ import annotations

from gxlib.monitoring.alerts.rule import NAMESPACE, AlertRule, Severity, number, value
from gxlib.monitoring.catalog import series
from gxlib.monitoring.settings import MonitoringConfig

ALERT_NAMES: tuple[str, ...] = ("EventProcessingFailures",)


def projector_rules(config: MonitoringConfig) -> list[AlertRule]:
    """The projector alerts, in SPEC §6 order."""
    t = config.thresholds
    failed = series("projector_events_failed_total", config.selectors.backend_series)
    return [
        AlertRule(
            "EventProcessingFailures",
            f"sum by (namespace) (rate({failed}[5m])) > {number(t.projector_failed_events_per_second)}",
            "3m", Severity.WARNING, "projector",
            f"Projector in {NAMESPACE} is failing to project events",
            f"The projector in {NAMESPACE} fails {value(2)} events per second over 5 minutes "
            f"(warning above {number(t.projector_failed_events_per_second)}); progress stops at a failing event.",
        ),
    ]
