"""What every alert rule is made of: the rule type, its severity, the deployment target it is rendered for, and
the Go-template pieces its annotations share."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class DeploymentTarget(StrEnum):
    """Where the backend services run, which decides the series the resource alerts read: containers
    (cAdvisor, kube-state-metrics) on Kubernetes, the processes' own ``process_*`` collectors locally."""

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
    """One alerting rule; ``to_prometheus`` gives its entry in a rule group.

        rule = AlertRule("DeadLetterQueueCritical", "outbox_dlq_commands > 50", "1m", Severity.CRITICAL,
                         "outbox-submitter", "DLQ is full", f"{value(0)} commands are in the DLQ")
        rule.to_prometheus("https://runbooks.example/DeadLetterQueueCritical.md")  # {"alert": ..., "expr": ...}
    """

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
