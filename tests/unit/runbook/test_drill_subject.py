"""Runbook 05's breaker drill in its Kubernetes form (env=devnet): what it acts on comes from the platform (the API
and the submitter's /metrics through port-forwards, the token from the cluster's Secret, the Gateway peer of the
backend's own network among this machine's devnet peers), and the drill runs the same stages against that
subject — with the cluster, the devnet, the API, Prometheus and Alertmanager as stand-ins (no network)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from gxlib.backend.api.schemas import CommandView
from gxlib.backend.commands import CommandType
from gxlib.errors import Unavailable
from gxlib.progress import Progress
from gxlib.runbook import prepare, runbook
from gxlib.runbook.checks import CheckStatus
from gxlib.runbook.drill_subject import DrillSubject, cluster_drill_subject, gateway_org
from gxlib.runbook.parameters import ValidateMonitoringParameters
from gxlib.runbook.session import Runbook
from gxlib.runbook.validate_monitoring import BREAKER_ALERT, ValidateMonitoring
from tests.unit.runbook.test_backend_in_cluster import CLUSTER_TOKEN, FORWARD_URL, Connector, FakeClusterBackend

SUBMITTER_FORWARD = "http://127.0.0.1:40124"


def _network(service_org: str) -> dict[str, Any]:
    return {"identities": [{"name": "svc", "org": service_org}, {"name": "admin1", "org": "org1"}],
            "roles": {"service": "svc"}}


def test_the_gateway_peer_is_of_the_service_identitys_org_and_org1_without_a_network() -> None:
    assert gateway_org(_network("org2")) == "org2"
    assert gateway_org(None) == "org1"
    assert gateway_org({"identities": [], "roles": {}}) == "org1"


# --- the subject from the platform --------------------------------------------------------------------------
class FakeDevnet:
    def __init__(self) -> None:
        self.layout = self
        self.root = Path("/state/devnet")
        self.peers = {org: SimpleNamespace(name=f"peer0.{org}.gx.local", endpoint=f"127.0.0.1:{port}")
                      for org, port in (("org1", 7051), ("org2", 9051))}

    def peer_of(self, org: str) -> Any:
        return self.peers[org]

    def up(self) -> None:
        pass


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    seen: dict[str, Any] = {"metrics": []}
    monkeypatch.setattr("gxlib.runbook.drill_subject.local_devnet", lambda params, progress: FakeDevnet())
    monkeypatch.setattr("gxlib.runbook.drill_subject.connected_api",
                        lambda url, token, progress, *, start_hint: SimpleNamespace(base_url=url, token=token,
                                                                                    close=lambda: None))

    def breaker_state(url: str) -> tuple[float, str]:
        seen["metrics"].append(url)
        return 0.0, "circuit_breaker_state 0 (closed)"
    monkeypatch.setattr("gxlib.runbook.drill_subject.breaker_state", breaker_state)
    return seen


def _params(**raw: object) -> ValidateMonitoringParameters:
    _, params = prepare("05-validate-monitoring", {"env": "devnet", "breaker_drill": "true", **raw}, environ={})
    assert isinstance(params, ValidateMonitoringParameters)
    return params


def test_on_devnet_the_drill_reaches_the_backend_pods_through_the_platform(world: dict[str, Any],
                                                                           tmp_path: Path) -> None:
    network = tmp_path / "network.json"
    network.write_text(json.dumps(_network("org2")))
    cluster = FakeClusterBackend(network)
    subject = cluster_drill_subject(_params(), Progress(quiet=True), connect=Connector(cluster))
    assert (subject.api.base_url, subject.token) == (FORWARD_URL, CLUSTER_TOKEN)
    assert cluster.asked == ["api", "token of role admin", "submitter", "network"]  # MINT needs admin
    assert subject.gateway == "peer0.org2.gx.local (127.0.0.1:9051)"
    subject.breaker()
    assert world["metrics"] == [SUBMITTER_FORWARD]
    subject.close()
    assert cluster.closed


def test_given_urls_and_token_win_over_the_port_forwards_and_the_secret(world: dict[str, Any]) -> None:
    cluster = FakeClusterBackend(None)
    subject = cluster_drill_subject(_params(api_url="http://127.0.0.1:8080", api_token="given",
                                            submitter_metrics_url="http://127.0.0.1:9101"),
                                    Progress(quiet=True), connect=Connector(cluster))
    assert cluster.asked == ["network"]
    assert (subject.api.base_url, subject.token) == ("http://127.0.0.1:8080", "given")
    assert subject.gateway.startswith("peer0.org1.gx.local")
    subject.breaker()
    assert world["metrics"] == ["http://127.0.0.1:9101"]


@pytest.mark.usefixtures("world")
def test_a_gateway_org_the_devnet_does_not_have_stops_the_drill_naming_the_devnet_and_closes_the_cluster(
        tmp_path: Path) -> None:
    network = tmp_path / "network.json"
    network.write_text(json.dumps(_network("org7")))
    cluster = FakeClusterBackend(network)
    with pytest.raises(Unavailable) as refused:
        cluster_drill_subject(_params(), Progress(quiet=True), connect=Connector(cluster))
    assert refused.value.parameter == "devnet_state_dir" and "org org7" in refused.value.reason
    assert cluster.closed


# --- the drill against such a subject -----------------------------------------------------------------------
class Outage:
    """The backend, Prometheus and Alertmanager as the stopped and restarted Gateway peer leaves them."""

    def __init__(self) -> None:
        self.down = False
        self.events: list[str] = []
        self.moment = datetime(2026, 12, 6, 19, 0, tzinfo=UTC)

    # the subject
    def stop(self) -> None:
        self.down = True
        self.events.append("stopped")

    def restore(self) -> None:
        self.down = False
        self.events.append("restored")

    def breaker(self) -> tuple[float, str]:
        return (1.0, "open") if self.down else (0.0, "closed")

    # the API
    def submit(self, command_type: str, payload: dict[str, Any], key: str) -> Any:
        return SimpleNamespace(commandId="c-drill", duplicate=False, status="PENDING")

    def command(self, command_id: str) -> CommandView:
        committed = not self.down and "restored" in self.events
        return CommandView(commandId=command_id, type=CommandType.MINT, status="COMMITTED" if committed else "PENDING",
                           payload={}, idempotencyKey="k", attempts=1, fabricTxId="tx" if committed else None,
                           blockNumber=9 if committed else None, errorCode=None, errorMessage=None,
                           createdAt=self.moment, firstSubmittedAt=self.moment,
                           committedAt=self.moment if committed else None, nextAttemptAt=self.moment)

    def system_status(self) -> Any:
        return SimpleNamespace(outbox={"COMMITTED": 5, "DLQ": 0})

    # Prometheus and Alertmanager
    def alert_state(self, name: str) -> str:
        return "firing" if self.down else "inactive"

    def active(self, name: str) -> list[dict[str, Any]]:
        return [{"labels": {"alertname": name}, "receivers": [{"name": "gx-webhook"}]}] if self.down else []

    def close(self) -> None:
        pass


def test_the_drill_on_devnet_runs_every_stage_against_the_platforms_subject() -> None:
    params = _params(prometheus_url="http://127.0.0.1:29090", alertmanager_url="http://127.0.0.1:29093")
    rb = Runbook(runbook("05-validate-monitoring"), params, dry_run=False, progress=Progress(quiet=True))
    outage = Outage()
    monitoring = ValidateMonitoring(rb)
    monitoring.queries = outage  # type: ignore[assignment]
    alertmanager = SimpleNamespace(alertmanager=lambda: outage)
    monitoring.endpoints = SimpleNamespace(alertmanager=alertmanager)  # type: ignore[assignment]
    monitoring.drill = DrillSubject(api=outage, breaker=outage.breaker,  # type: ignore[arg-type]
                                    gateway="peer0.org1.gx.local (127.0.0.1:7051)", stop_gateway=outage.stop,
                                    restore_gateway=outage.restore, where="the backend pods of backend-devnet")
    monitoring.breaker_drill()
    assert outage.events == ["stopped", "restored"]
    checks = {c.name: c for c in rb.checks}
    expected = ["circuit breaker open (1)", "command kept while the breaker is open", f"{BREAKER_ALERT} pending",
                f"{BREAKER_ALERT} firing", f"{BREAKER_ALERT} active in Alertmanager",
                f"{BREAKER_ALERT} routed to a receiver by Alertmanager", "circuit breaker closed (0)",
                "drill command committed", "nothing lost", "no command sent to the DLQ", f"{BREAKER_ALERT} resolved"]
    assert {f"drill: {name}": checks[f"drill: {name}"].status for name in expected} == {
        f"drill: {name}": CheckStatus.PASSED for name in expected}
    assert [step.name for step in rb.steps] == ["make the gateway unreachable", "restore the gateway"]
