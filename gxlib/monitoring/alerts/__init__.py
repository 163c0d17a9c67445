"""The 18 alert rules of group ``gx_backend_cqrs_alerts`` (SPEC §6), as data rendered to Prometheus YAML.

One module per area, as the monitoring mixins split their alerts: ``slo`` (success rate, projection lag, API
latency), ``outbox``, ``fabric``, ``projector`` and ``infrastructure``; ``rule`` holds what they share and
``group`` puts them together. Thresholds and selectors are configuration
(:class:`~gxlib.monitoring.settings.MonitoringConfig`). Aggregations keep the ``namespace`` label: one
Prometheus scrapes mainnet, testnet and devnet, and an alert must say which.
"""

from gxlib.monitoring.alerts.group import ALERT_NAMES, alert_rules, rule_groups_document
from gxlib.monitoring.alerts.rule import AlertRule, DeploymentTarget, Severity

__all__ = ["ALERT_NAMES", "AlertRule", "DeploymentTarget", "Severity", "alert_rules", "rule_groups_document"]
