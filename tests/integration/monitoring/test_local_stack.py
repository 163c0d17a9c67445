"""`gx monitoring up`: Debian's Prometheus and Alertmanager on loopback, scraping the session devnet.

Run with the other integration tests, e.g. ``GX_TEST_PORT_OFFSET=20600 pytest tests/integration/monitoring``.
Prometheus, Alertmanager and the webhook receiver take free ports (never 9090/9093), so a developer's own
stack keeps running. The backend services do not exist yet, so their three targets are down — which is
exactly what the BackendServiceDown drill needs.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from gxlib.devnet.network import Devnet
from gxlib.monitoring.dashboard import dashboard_json_model
from gxlib.monitoring.scrape import BACKEND_JOBS, FABRIC_ORDERER_JOB, FABRIC_PEER_JOB, devnet_operations_targets
from gxlib.monitoring.settings import LocalStackSettings, LocalTargets, MonitoringConfig
from gxlib.monitoring.stack import LocalMonitoringStack, StackStatus

pytestmark = pytest.mark.integration

T = TypeVar("T")


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct ports nothing listens on (all bound at once, so they differ)."""
    with contextlib.ExitStack() as sockets:
        ports = []
        for _ in range(count):
            sock = sockets.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((host, 0))
            ports.append(int(sock.getsockname()[1]))
    return ports


def eventually(what: str, probe: Callable[[], T | None], timeout_s: float, interval_s: float = 1.0) -> T:
    deadline = time.monotonic() + timeout_s
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(interval_s)


@pytest.fixture(scope="module")
def stack(devnet: Devnet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMonitoringStack]:
    prometheus_port, alertmanager_port, webhook_port, api, submitter, projector = free_ports(6)
    config = MonitoringConfig(
        stack_state_dir=tmp_path_factory.mktemp("monitoring"),
        # Free ports for the backend targets: nothing listens there, whatever runs on the default ports.
        local_targets=LocalTargets(api_metrics_port=api, submitter_metrics_port=submitter,
                                   projector_metrics_port=projector),
        local_stack=LocalStackSettings(prometheus_port=prometheus_port, alertmanager_port=alertmanager_port,
                                       webhook_port=webhook_port, scrape_interval_s=1, evaluation_interval_s=1,
                                       group_wait_s=1, group_interval_s=5),
    )
    local_stack = LocalMonitoringStack(config, devnet.settings)
    try:
        report = local_stack.up()
        assert report.started == ["webhook", "alertmanager", "prometheus"]
        yield local_stack
    finally:
        local_stack.down()
        assert all(local_stack.running_pid(name) is None for name in ("webhook", "alertmanager", "prometheus"))


def test_stack_uses_configured_ports_not_the_defaults(stack: LocalMonitoringStack) -> None:
    ports = {stack.config.local_stack.prometheus_port, stack.config.local_stack.alertmanager_port}
    assert not ports & {9090, 9093}
    status = stack.status()
    assert status.all_ready, status


def test_the_18_rules_are_loaded(stack: LocalMonitoringStack) -> None:
    assert stack.status().rule_groups == {"gx_backend_cqrs_alerts": 18}
    rules = httpx.get(f"{stack.prometheus_url}/api/v1/rules", timeout=5).json()["data"]["groups"][0]["rules"]
    assert sorted(r["name"] for r in rules) == sorted({r["name"] for r in rules})
    assert all(r["annotations"]["runbook_url"].endswith(f"/{r['name']}.md") for r in rules)


def test_devnet_peer_and_orderer_operations_targets_are_up(stack: LocalMonitoringStack, devnet: Devnet) -> None:
    expected = {target.address for target in devnet_operations_targets(devnet.settings)}

    def fabric_targets_up() -> StackStatus | None:
        status = stack.status()
        fabric = [t for t in status.targets if t.job in (FABRIC_ORDERER_JOB, FABRIC_PEER_JOB)]
        return status if {t.instance for t in fabric} == expected and all(t.health == "up" for t in fabric) else None

    status = eventually("the devnet's operations targets to be up", fabric_targets_up, timeout_s=60)
    # The devnet of the test session runs on shifted ports; the stack scrapes those, not the defaults.
    assert all(int(address.rsplit(":", 1)[1]) > 20000 for address in expected)
    # The backend jobs are configured (same names as on Kubernetes) with their static local targets.
    assert {t.job for t in status.targets} >= set(BACKEND_JOBS)

    query = httpx.get(f"{stack.prometheus_url}/api/v1/query", params={"query": 'up{job=~"fabric-.*"}'}, timeout=5)
    samples = query.json()["data"]["result"]
    assert sorted((s["metric"]["node"], s["value"][1]) for s in samples) == [
        ("orderer0", "1"), ("peer0-org1", "1"), ("peer0-org2", "1")]


def test_backend_service_down_goes_pending_then_firing_then_reaches_the_webhook(stack: LocalMonitoringStack) -> None:
    def submitter_down_alert(state: str) -> Any:
        return next((a for a in stack.status().alerts if a.name == "BackendServiceDown" and a.state == state
                     and a.labels.get("job") == "gx-outbox-submitter"), None)

    pending = eventually("BackendServiceDown to be pending", lambda: submitter_down_alert("pending"), timeout_s=30)
    assert pending.labels["namespace"] == "backend-local"
    firing = eventually("BackendServiceDown to fire", lambda: submitter_down_alert("firing"), timeout_s=120)
    assert firing.labels["severity"] == "critical"

    def notification() -> dict[str, Any] | None:
        for record in stack.notifications():
            for alert in record["notification"]["alerts"]:
                if (alert["labels"]["alertname"] == "BackendServiceDown" and alert["status"] == "firing"
                        and alert["labels"].get("job") == "gx-outbox-submitter"):
                    return alert
        return None

    received = eventually("the webhook to receive the BackendServiceDown notification", notification, timeout_s=60)
    assert received["annotations"]["runbook_url"].endswith("/BackendServiceDown.md")
    assert "gx-outbox-submitter" in received["annotations"]["description"]


def test_every_dashboard_query_is_accepted_by_prometheus(stack: LocalMonitoringStack) -> None:
    """Valid PromQL for Prometheus 2.42 with the namespace variable set to the local namespace. Whether each
    returns data needs the backend services running (they do not exist yet); ``up`` already does."""
    model = dashboard_json_model(MonitoringConfig())
    queries = [target["expr"] for panel in model["panels"] for target in panel.get("targets", [])]
    for query in queries:
        response = httpx.get(f"{stack.prometheus_url}/api/v1/query", timeout=5,
                             params={"query": query.replace("$namespace", "backend-local")})
        assert response.status_code == 200 and response.json()["status"] == "success", (query, response.text)
    namespaces = httpx.get(f"{stack.prometheus_url}/api/v1/label/namespace/values", timeout=5,
                           params={"match[]": 'up{job=~"gx-.*"}'}).json()["data"]
    assert namespaces == ["backend-local"]  # what the dashboard's namespace variable offers


def test_up_again_changes_nothing(stack: LocalMonitoringStack) -> None:
    report = stack.up()
    assert report.started == [] and report.reloaded == []


def test_state_directory_holds_the_rendered_config(stack: LocalMonitoringStack, devnet: Devnet) -> None:
    prometheus_yml = Path(stack.layout.prometheus_config).read_text()
    for target in devnet_operations_targets(devnet.settings):
        assert target.address in prometheus_yml
    assert f"127.0.0.1:{stack.config.local_stack.alertmanager_port}" in prometheus_yml
