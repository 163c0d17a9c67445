"""alertmanager.yml of the local stack: every alert goes to the webhook receiver that records notifications."""

from __future__ import annotations

from typing import Any

from gxlib.monitoring.settings import MonitoringConfig

WEBHOOK_RECEIVER = "gx-webhook-recorder"
WEBHOOK_PATH = "/alerts"
WARNING_TWIN_OF_CRITICAL: dict[str, str] = {
    "ProjectionLagCritical": "ProjectionLagExceedsSLO",
    "APIResponseTimeCritical": "APIResponseTimeSlow",
    "OutboxQueueCritical": "OutboxQueueBuildup",
    "FabricTransactionFailureCritical": "FabricTransactionFailureRate",
}


def local_alertmanager_config(config: MonitoringConfig) -> dict[str, Any]:
    """alertmanager.yml of the local stack: every alert goes to the webhook receiver that records them."""
    stack = config.local_stack
    return {
        "route": {
            "receiver": WEBHOOK_RECEIVER,
            "group_by": ["alertname", "namespace"],
            "group_wait": f"{stack.group_wait_s}s",
            "group_interval": f"{stack.group_interval_s}s",
            "repeat_interval": f"{stack.repeat_interval_h}h",
        },
        "receivers": [{
            "name": WEBHOOK_RECEIVER,
            "webhook_configs": [{"url": f"http://{stack.host}:{stack.webhook_port}{WEBHOOK_PATH}",
                                 "send_resolved": True}],
        }],
        # A firing critical alert silences its warning twin for the same namespace (lag above 10 s implies
        # above 5 s); other alerts are never inhibited.
        "inhibit_rules": [{
            "source_matchers": [f'alertname="{critical}"'],
            "target_matchers": [f'alertname="{warning}"'],
            "equal": ["namespace"],
        } for critical, warning in WARNING_TWIN_OF_CRITICAL.items()],
    }
