"""The rule group ``gx_backend_cqrs_alerts`` (SPEC §6): the five areas' rules in SPEC order, as a rules file."""

from __future__ import annotations

from typing import Any

from gxlib.monitoring.alerts import fabric, infrastructure, outbox, projector, slo
from gxlib.monitoring.alerts.rule import AlertRule, DeploymentTarget
from gxlib.monitoring.settings import MonitoringConfig

# SPEC §6 numbers the rules area by area, so the areas in this order give the SPEC order.
ALERT_NAMES: tuple[str, ...] = (*slo.ALERT_NAMES, *outbox.ALERT_NAMES, *fabric.ALERT_NAMES,
                                *projector.ALERT_NAMES, *infrastructure.ALERT_NAMES)


def alert_rules(config: MonitoringConfig, target: DeploymentTarget) -> list[AlertRule]:
    """The 18 rules, in SPEC §6 order, for ``target``."""
    rules = [
        *slo.slo_rules(config),
        *outbox.outbox_rules(config),
        *fabric.fabric_rules(config),
        *projector.projector_rules(config),
        *infrastructure.infrastructure_rules(config, target),
    ]
    assert tuple(rule.name for rule in rules) == ALERT_NAMES
    return rules


def rule_groups_document(config: MonitoringConfig, target: DeploymentTarget) -> dict[str, Any]:
    """A Prometheus rules file (``groups:``) holding the one group."""
    return {
        "groups": [{
            "name": config.alert_group,
            "rules": [rule.to_prometheus(config.runbook_url(rule.name)) for rule in alert_rules(config, target)],
        }]
    }
