"""The local monitoring stack watching the real backend: its three scrape jobs up, every dashboard query with
data once commands flow, and the BackendServiceDown drill (stop the submitter) from pending to a notification."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from gxlib.backend.local import LocalBackend
from gxlib.backend.settings import BackendSettings
from gxlib.chaincode.deploy import DeployReport
from gxlib.devnet import processes
from gxlib.devnet.network import Devnet
from gxlib.monitoring.dashboard import dashboard_json_model
from gxlib.monitoring.scrape import BACKEND_JOBS
from gxlib.monitoring.settings import LocalStackSettings, LocalTargets, MonitoringConfig
from gxlib.monitoring.stack import LocalMonitoringStack
from gxlib.progress import Progress
from tests.integration.monitoring.test_local_stack import eventually, free_ports

pytestmark = pytest.mark.integration
# Panels whose query reads Kubernetes-only series (kube-state-metrics): no data on the local profile.
KUBERNETES_ONLY_PANELS = {"System Availability"}


@pytest.fixture(scope="module")
def backend(devnet: Devnet, gx_deployed: DeployReport, bootstrapped: dict[str, Any]) -> Iterator[LocalBackend]:
    api, submitter, projector = free_ports(3)
    local = LocalBackend(devnet, BackendSettings(api_port=api, submitter_metrics_port=submitter,
                                                 projector_metrics_port=projector),
                         Progress(quiet=True), root=devnet.layout.root / "backend-monitored")
    local.up()
    try:
        yield local
    finally:
        local.down()


@pytest.fixture(scope="module")
def stack(devnet: Devnet, backend: LocalBackend,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMonitoringStack]:
    prometheus_port, alertmanager_port, webhook_port = free_ports(3)
    s = backend.settings
    config = MonitoringConfig(
        stack_state_dir=tmp_path_factory.mktemp("monitoring-with-backend"),
        local_targets=LocalTargets(api_metrics_port=s.api_port, submitter_metrics_port=s.submitter_metrics_port,
                                   projector_metrics_port=s.projector_metrics_port),
        local_stack=LocalStackSettings(prometheus_port=prometheus_port, alertmanager_port=alertmanager_port,
                                       webhook_port=webhook_port, scrape_interval_s=1, evaluation_interval_s=1,
                                       group_wait_s=1, group_interval_s=5),
    )
    local_stack = LocalMonitoringStack(config, devnet.settings)
    local_stack.up()
    try:
        yield local_stack
    finally:
        local_stack.down()


def _query(stack: LocalMonitoringStack, expr: str) -> list[Any]:
    response = httpx.get(f"{stack.prometheus_url}/api/v1/query", params={"query": expr}, timeout=5)
    assert response.status_code == 200, (expr, response.text)
    return list(response.json()["data"]["result"])


def test_the_three_backend_jobs_are_up(stack: LocalMonitoringStack) -> None:
    def all_up() -> list[Any] | None:
        samples = _query(stack, 'up{job=~"gx-.*"}')
        jobs = {s["metric"]["job"]: s["value"][1] for s in samples}
        return samples if jobs == dict.fromkeys(BACKEND_JOBS, "1") else None

    samples = eventually("the three backend jobs to be up", all_up, timeout_s=60)
    assert {s["metric"]["namespace"] for s in samples} == {"backend-local"}


def test_every_dashboard_panel_returns_data_once_commands_flow(stack: LocalMonitoringStack,
                                                               backend: LocalBackend) -> None:
    token = next(iter(backend.api_tokens()))
    with httpx.Client(base_url=backend.services[0].url, headers={"Authorization": f"Bearer {token}"},
                      timeout=10) as api:
        for i in range(10):
            response = api.post("/api/v1/commands", json={
                "type": "MINT", "payload": {"accountId": f"monitored-{i % 3}", "amount": 1000 + i,
                                            "remark": "dashboard data"},
                "idempotencyKey": f"monitored-mint-{time.time_ns()}-{i}"})
            assert response.status_code == 202, response.text
    model = dashboard_json_model(MonitoringConfig())
    panels = {panel["title"]: [t["expr"].replace("$namespace", "backend-local") for t in panel.get("targets", [])]
              for panel in model["panels"] if panel.get("targets")}
    assert len(panels) == 11

    def missing() -> dict[str, list[str]] | None:
        empty = {title: [q for q in queries if not _query(stack, q)] for title, queries in panels.items()}
        empty = {title: queries for title, queries in empty.items() if queries and title not in KUBERNETES_ONLY_PANELS}
        return None if empty else {"ok": []}

    try:
        eventually("every dashboard query to return data", missing, timeout_s=90, interval_s=2)
    except AssertionError:
        still = {title: [q for q in queries if not _query(stack, q)] for title, queries in panels.items()}
        raise AssertionError(f"queries without data: {still}") from None


def test_stopping_the_submitter_fires_backend_service_down_and_notifies(stack: LocalMonitoringStack,
                                                                       backend: LocalBackend) -> None:
    submitter = next(s for s in backend.services if s.name == "submitter")
    processes.stop_node(submitter)

    def alert(state: str) -> Any:
        return next((a for a in stack.status().alerts if a.name == "BackendServiceDown" and a.state == state
                     and a.labels.get("job") == "gx-outbox-submitter"), None)

    try:
        eventually("BackendServiceDown pending", lambda: alert("pending"), timeout_s=30)
        firing = eventually("BackendServiceDown firing", lambda: alert("firing"), timeout_s=120)
        assert firing.labels["namespace"] == "backend-local"

        def notified() -> dict[str, Any] | None:
            for record in stack.notifications():
                for item in record["notification"]["alerts"]:
                    if item["labels"]["alertname"] == "BackendServiceDown" and item["status"] == "firing" \
                            and item["labels"].get("job") == "gx-outbox-submitter":
                        return dict(item)
            return None

        received = eventually("the webhook to receive the notification", notified, timeout_s=60)
        assert received["annotations"]["runbook_url"].endswith("/BackendServiceDown.md")
    finally:
        backend.up()
