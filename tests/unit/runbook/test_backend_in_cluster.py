"""Runbooks 03/04 with env=devnet and no api_url / api_token / fabric_network_file: the backend is found in the
cluster through the platform (a port-forward, the tokens Secret, the fabric-client Secret), explicit parameters
win, each value's source is recorded without the secret, and a cluster that has nothing to give stops the run
naming the parameter. The cluster, the API and the ledger are stand-ins (no network)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gxlib.backend.commands import CommandType
from gxlib.backend.settings import ApiRole
from gxlib.config import Environment
from gxlib.errors import Unavailable
from gxlib.fabric.lifecycle.definition import CommittedChaincode
from gxlib.platform.backend_access import Sourced
from gxlib.platform.settings import KubernetesPlatformSettings
from gxlib.progress import Progress
from gxlib.runbook import prepare, runbook
from gxlib.runbook.bootstrap_system import BootstrapSystem
from gxlib.runbook.checks import CheckStatus
from gxlib.runbook.parameters import BootstrapSystemParameters, CommandParameters
from gxlib.runbook.session import Runbook
from gxlib.runbook.steps_backend import BackendTarget, api_role_for, backend_endpoints, remote_backend
from gxlib.runbook.validate_cqrs import ValidateCqrs

CLUSTER_TOKEN = "cluster-token-7f3a"
FORWARD_URL = "http://127.0.0.1:40123"
FORWARD = "port-forward 127.0.0.1:40123 → service backend-devnet/api → pod api-5c9d:8080"
TOKEN_SOURCE = "Secret backend-devnet/backend-api-tokens key GX_BACKEND_API_TOKENS, a token of role admin"


def _document() -> dict[str, Any]:
    return {"channel": "gxchannel-devnet",
            "peers": [{"name": "peer0.org1", "org": "org1", "msp_id": "Org1DevnetMSP", "endpoint": "peer0:7051"}],
            "identities": [{"name": "service", "org": "org1"}],
            "roles": {"service": "service", "org_admins": {"org1": "admin1"}}}


class FakeClusterBackend:
    """What ClusterBackend gives runbooks, from fixed values; records what it was asked."""

    namespace = "backend-devnet"
    settings = KubernetesPlatformSettings()

    def __init__(self, network: Path | None, *, submitter: bool = True) -> None:
        self.network = network
        self.submitter = submitter
        self.asked: list[str] = []
        self.closed = False

    def api_forward(self) -> Sourced[str]:
        self.asked.append("api")
        return Sourced(FORWARD_URL, FORWARD)

    def api_token(self, needed: ApiRole) -> Sourced[str]:
        self.asked.append(f"token of role {needed.value}")
        return Sourced(CLUSTER_TOKEN, TOKEN_SOURCE)

    def fabric_network_file(self) -> Sourced[Path] | None:
        self.asked.append("network")
        return None if self.network is None else Sourced(self.network, "Secret backend-devnet/backend-fabric-client")

    def submitter_metrics_forward(self) -> Sourced[str]:
        self.asked.append("submitter")
        if not self.submitter:
            raise Unavailable("no Ready pod behind service backend-devnet/outbox-submitter-metrics to forward to: "
                              "its selector matches no pod", parameter="submitter_metrics_url")
        return Sourced("http://127.0.0.1:40124", "port-forward → service backend-devnet/outbox-submitter-metrics")

    def close(self) -> None:
        self.closed = True


class Connector:
    """The ``connect`` of remote_backend: hands out one FakeClusterBackend (or refuses, like a missing cluster)."""

    def __init__(self, backend: FakeClusterBackend | None) -> None:
        self.backend = backend
        self.calls = 0

    def __call__(self, env: Environment, settings: KubernetesPlatformSettings) -> Any:
        self.calls += 1
        if self.backend is None:
            raise Unavailable("env=devnet: no Kubernetes cluster to act on: the kubeconfig ~/.kube/config gives "
                              "none", parameter="kubeconfig")
        return self.backend


class FakeApi:
    def __init__(self, url: str, token: str) -> None:
        self.base_url, self.token = url, token

    def close(self) -> None:
        pass


class FakeLedger:
    def __init__(self, document: dict[str, Any], channel: str, chaincode: str) -> None:
        self.document = document

    def close(self) -> None:
        pass


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """The API client and the Gateway are stand-ins that remember what they were given."""
    monkeypatch.setattr("gxlib.runbook.steps_backend.connected_api",
                        lambda url, token, progress, *, start_hint: FakeApi(url, token))
    monkeypatch.setattr("gxlib.runbook.steps_backend.LedgerReader", FakeLedger)


@pytest.fixture
def network_file(tmp_path: Path) -> Path:
    path = tmp_path / "network.json"
    path.write_text(json.dumps(_document()))
    return path


def _params(**raw: object) -> BootstrapSystemParameters:
    _, params = prepare("03-bootstrap-system", {"env": "devnet", **raw}, environ={})
    assert isinstance(params, BootstrapSystemParameters)
    return params


def _find(params: CommandParameters, connector: Connector, role: ApiRole = ApiRole.ADMIN) -> BackendTarget:
    return remote_backend(params, Progress(quiet=True), role, connect=connector)


def test_with_nothing_given_the_api_token_and_network_come_from_the_cluster(network_file: Path) -> None:
    cluster = FakeClusterBackend(network_file)
    target = _find(_params(), Connector(cluster))
    assert (target.api.base_url, target.api.token) == (FORWARD_URL, CLUSTER_TOKEN)  # type: ignore[attr-defined]
    assert (target.token, target.token_source) == (CLUSTER_TOKEN, TOKEN_SOURCE)
    assert target.sources == {"api_url": FORWARD, "fabric_network_file": "Secret backend-devnet/backend-fabric-client",
                              "submitter_metrics_url": "port-forward → service backend-devnet/outbox-submitter-metrics"}
    assert target.submitter is not None and target.submitter.metrics_url == "http://127.0.0.1:40124"
    effective = target.effective()
    assert f"api_url={FORWARD_URL} (from {FORWARD})" in effective
    assert f"api_token=*** (from {TOKEN_SOURCE})" in effective and CLUSTER_TOKEN not in effective
    # What was opened in the cluster lives as long as the target.
    assert target.cluster is cluster and not cluster.closed
    target.close()
    assert cluster.closed


def test_explicit_parameters_win_and_then_the_cluster_is_not_even_asked(network_file: Path) -> None:
    connector = Connector(FakeClusterBackend(network_file))
    target = _find(_params(api_url="https://api.devnet.example", api_token="given-token",
                           fabric_network_file=str(network_file), submitter_metrics_url="http://127.0.0.1:9101"),
                   connector)
    assert (target.api.base_url, target.token) == ("https://api.devnet.example", "given-token")
    assert target.token_source == "api_token / $GX_API_TOKEN"
    assert target.sources["api_url"] == "api_url" and target.sources["fabric_network_file"] == "fabric_network_file"
    assert connector.calls == 0 and target.cluster is None


def test_only_what_is_missing_is_taken_from_the_cluster(network_file: Path) -> None:
    cluster = FakeClusterBackend(None)
    target = _find(_params(api_url="https://api.devnet.example", fabric_network_file=str(network_file),
                           prometheus_url="http://127.0.0.1:9090"), Connector(cluster), ApiRole.OPERATOR)
    assert cluster.asked == ["token of role operator"]
    assert target.api.base_url == "https://api.devnet.example" and target.token == CLUSTER_TOKEN


def test_without_a_cluster_a_missing_parameter_stops_the_run_naming_what_to_fix() -> None:
    with pytest.raises(Unavailable) as refused:
        _find(_params(api_token="given-token"), Connector(None))
    assert refused.value.reason.startswith("fabric_network_file is unset, and it cannot be found in the cluster: "
                                           "env=devnet: no Kubernetes cluster to act on")
    assert refused.value.parameter == "kubeconfig"


def test_a_cluster_without_the_fabric_client_secret_asks_for_the_network_file_and_closes_what_it_opened() -> None:
    cluster = FakeClusterBackend(None)
    with pytest.raises(Unavailable) as refused:
        _find(_params(), Connector(cluster))
    assert refused.value.parameter == "fabric_network_file"
    assert "the cluster has no Secret backend-devnet/backend-fabric-client" in refused.value.reason
    assert cluster.closed


def test_a_cluster_without_a_ready_submitter_pod_makes_its_checks_fail_with_the_reason(network_file: Path) -> None:
    target = _find(_params(), Connector(FakeClusterBackend(network_file, submitter=False)))
    assert target.submitter is not None
    state, said = target.submitter.breaker_state()
    assert state is None and "no Ready pod behind service backend-devnet/outbox-submitter-metrics" in said
    assert "submitter_metrics_url" not in target.sources


@pytest.mark.parametrize(("commands", "role"), [
    ((CommandType.BOOTSTRAP_SYSTEM,), ApiRole.ADMIN),
    ((CommandType.CREATE_USER, CommandType.DISTRIBUTE_GENESIS), ApiRole.OPERATOR),
    ((), ApiRole.READER),
])
def test_the_token_asked_for_has_the_least_role_that_may_submit_every_command(
        commands: tuple[CommandType, ...], role: ApiRole) -> None:
    assert api_role_for(commands) is role


def test_runbooks_03_and_04_ask_for_an_admin_token_because_they_submit_admin_commands() -> None:
    assert api_role_for(BootstrapSystem.submits) is ApiRole.ADMIN
    assert api_role_for(ValidateCqrs.submits) is ApiRole.ADMIN  # INITIALIZE_COUNTRY_DATA, MINT


def test_the_check_records_where_each_came_from_and_never_the_token(network_file: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    cluster = FakeClusterBackend(network_file)
    monkeypatch.setattr("gxlib.runbook.steps_backend.ClusterBackend.connect", Connector(cluster))
    rb = Runbook(runbook("03-bootstrap-system"), _params(), dry_run=False, progress=Progress(quiet=True))
    section = BootstrapSystem(rb)
    assert section.find_backend() is not None
    [check] = [c for c in rb.checks if c.name == "backend API and Fabric network reachable"]
    assert check.status is CheckStatus.PASSED and check.measured == FORWARD_URL
    assert f"api_url from {FORWARD}" in check.detail
    assert "fabric_network_file from Secret backend-devnet/backend-fabric-client" in check.detail
    assert CLUSTER_TOKEN in rb.found_secrets  # masked in the summary
    assert CLUSTER_TOKEN not in json.dumps(rb.summary())
    section.close()


def test_a_dry_run_with_nothing_given_probes_what_it_would_take_from_the_cluster() -> None:
    endpoints = backend_endpoints(_params(), ApiRole.ADMIN)
    assert [(e.what, e.address) for e in endpoints][1:] == [
        ("backend API (port-forward)", "service backend-devnet/api"),
        ("API token of role admin", "Secret backend-devnet/backend-api-tokens"),
        ("Fabric network of the backend", "Secret backend-devnet/backend-fabric-client"),
        ("outbox-submitter metrics (port-forward)", "service backend-devnet/outbox-submitter-metrics")]
    assert endpoints[0].what == "Kubernetes API server"


def test_a_dry_run_with_everything_given_asks_no_cluster(network_file: Path) -> None:
    params = _params(api_url="https://api.devnet.example", api_token="t", fabric_network_file=str(network_file))
    assert [e.what for e in backend_endpoints(params)] == ["backend API", "Fabric peer peer0.org1"]


def test_the_workers_network_without_org_admins_is_used_and_the_chaincode_is_checked_as_the_service(
        tmp_path: Path) -> None:
    # The shape of `gx backend fabric-bundle`'s network.json: the workers' signing identities, no org admins.
    bundle = {"channel": "gxchannel-devnet",
              "peers": [{"name": "peer0.org1", "org": "org1", "msp_id": "Org1DevnetMSP", "endpoint": "10.0.0.5:7051",
                         "tls_ca_file": "org1-tls-ca.pem", "tls_server_name": "peer0.org1"}],
              "identities": [{"name": "gx-service", "org": "org1", "msp_id": "Org1DevnetMSP", "role": "client",
                              "cert_file": "service-cert.pem", "key_file": "service-key.pem"}],
              "roles": {"service": "gx-service", "super_admin": "gx-service"}}
    path = tmp_path / "network.json"
    path.write_text(json.dumps(bundle))
    target = _find(_params(), Connector(FakeClusterBackend(path)))
    target.ledger.system_status = lambda: {"bootstrapped": False}  # type: ignore[attr-defined]
    # The service identity reads the committed definition itself (no org admin needed).
    definition = CommittedChaincode("gxtv3", "1.1", 2, "escc", "vscc", False, {"Org1DevnetMSP": True})
    target.ledger.committed_definition = lambda name: definition if name == "gxtv3" else None  # type: ignore[attr-defined]
    status = target.chaincode_status(Progress(quiet=True))
    assert (status.committed, status.answering, status.version, status.sequence) == (True, True, "1.1", 2)
    # A channel whose ACL refuses the service that query: the chaincode still counts as committed by its answer.
    target.ledger.committed_definition = lambda name: None  # type: ignore[attr-defined]
    status = target.chaincode_status(Progress(quiet=True))
    assert (status.committed, status.answering, status.version, status.sequence) == (True, True, None, None)
