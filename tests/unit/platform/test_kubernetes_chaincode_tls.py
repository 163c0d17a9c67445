"""Peer → chaincode TLS on Kubernetes: a Kubernetes env's package tells the peer to dial the org's Service with
TLS and its client pair; the org's TLS Secret holds the server's side; a missing or stale Secret makes the
servers not current, and the restart writes the Secret before it rolls the Deployments. No cluster: the
low-level cluster is a recording stand-in."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from gxlib.chaincode.lifecycle import DeployPlan, FabricNetwork
from gxlib.config import ChaincodeSettings, DevnetSettings, Environment, environment_profile
from gxlib.devnet.crypto import generate_crypto
from gxlib.devnet.layout import DevnetLayout
from gxlib.errors import Unavailable
from gxlib.fabric.lifecycle.package import read_package
from gxlib.platform.base import RolloutState
from gxlib.platform.chaincode_tls import SECRET_KEYS, kubernetes_chaincode_tls, secret_drift, tls_secret
from gxlib.platform.kubernetes_chaincode import ChaincodeService, KubernetesChaincodeOperator, service_address
from gxlib.platform.settings import PACKAGE_ID_ANNOTATION, ChaincodeNames, chaincode_names
from gxlib.progress import Progress

PROFILE = environment_profile(Environment.DEVNET)
ORGS = {"org1": "Org1MSP", "org2": "Org2MSP"}
NEW = {"org1": "gxtv3_1.1:" + "a" * 64, "org2": "gxtv3_1.1:" + "b" * 64}


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> DevnetLayout:
    layout = DevnetLayout(DevnetSettings(state_dir=tmp_path_factory.mktemp("k8s-cc-tls")))
    generate_crypto(layout)
    return layout


def _document(layout: DevnetLayout) -> dict[str, Any]:
    return {"state_dir": str(layout.root), "channel": "gxchannel-devnet",
            "peers": [{"name": f"peer0.{org}", "org": org, "msp_id": msp} for org, msp in ORGS.items()]}


def _service(layout: DevnetLayout, org: str, address: str | None = None) -> ChaincodeService:
    names = chaincode_names(PROFILE, org)
    address = address or service_address(names, 9999)
    tls = kubernetes_chaincode_tls(_document(layout), names, env="devnet", address=address, chaincode="gxtv3")
    return ChaincodeService(name=names.deployment, org_key=org, msp_id=ORGS[org], namespace=names.namespace,
                            address=address, tls=tls, tls_secret=names.tls_secret)


DEPLOYED_IMAGE = "registry.gx.local/gx/chaincode:0000000000000000"
BUILT_IMAGE = "registry.gx.local/gx/chaincode:2550ad1b15c6704b"


class RecordingCluster:
    """The low-level cluster as the operator uses it: Deployments current for ``NEW``, Secrets as given; records
    what is applied and rolled, in order."""

    def __init__(self, secrets: dict[str, dict[str, Any]]) -> None:
        self.profile = PROFILE
        self.secrets = secrets
        self.calls: list[str] = []
        self.images: dict[str, str | None] = {org: DEPLOYED_IMAGE for org in ORGS}

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        if kind == "Secret":
            return self.secrets.get(name)
        org = name.split("-")[1]
        return {"spec": {"template": {"metadata": {"annotations": {PACKAGE_ID_ANNOTATION: NEW[org]}}}}}

    def chaincode_package_ids(self) -> dict[str, str | None]:
        return dict(NEW)

    def rollout_state(self, name: str, namespace: str) -> RolloutState:
        return RolloutState(name=name, namespace=namespace, generation=1, observed_generation=1, replicas=1,
                            updated_replicas=1, ready_replicas=1, available_replicas=1, total_replicas=1,
                            complete=True)

    def apply(self, objects: list[dict[str, Any]]) -> list[Any]:
        for obj in objects:
            self.calls.append(f"apply {obj['kind']} {obj['metadata']['name']}")
            self.secrets[obj["metadata"]["name"]] = obj
        return []

    def chaincode_images(self) -> dict[str, str | None]:
        return dict(self.images)

    def roll_chaincode(self, package_ids: dict[str, str], *, image: str | None = None, timeout_s: float) -> None:
        self.calls.append("roll " + ",".join(sorted(package_ids)) + (f" image {image}" if image else ""))
        if image is not None:
            self.images = {org: image for org in package_ids}


def _operator(layout: DevnetLayout, cluster: RecordingCluster) -> KubernetesChaincodeOperator:
    network = FabricNetwork("gxchannel-devnet", lambda: _document(layout))
    return KubernetesChaincodeOperator(network, [_service(layout, org) for org in ORGS], cluster,  # type: ignore[arg-type]
                                       ChaincodeSettings(), Progress(quiet=True))


def _plan() -> DeployPlan:
    return DeployPlan(name="gxtv3", channel="gxchannel-devnet", version="1.1", label="gxtv3_1.1",
                      committed_version="1.0", committed_sequence=1, packages={}, package_ids=dict(NEW))


def _sans(path: Path) -> list[str]:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName)


def test_a_kubernetes_package_dials_the_service_with_tls_and_client_auth_carrying_the_pems(
        layout: DevnetLayout) -> None:
    operator = _operator(layout, RecordingCluster({}))
    server = operator.servers[0]
    assert server.tls is not None
    package, _ = operator.package_for(server, "1.1")
    connection = read_package(package).connection
    assert connection is not None
    assert connection.address == "gxtv3-org1-devnet.fabric:9999"
    assert connection.tls_required and connection.client_auth_required
    assert connection.root_cert == server.tls.ca_cert.read_text()
    assert connection.client_cert == server.tls.client_cert.read_text()
    assert connection.client_key == server.tls.client_key.read_text()
    # The server's certificate is valid for every name the peer may dial the Service by.
    assert {"gxtv3-org1-devnet.fabric", "gxtv3-org1-devnet.fabric.svc",
            "gxtv3-org1-devnet.fabric.svc.cluster.local"} <= set(_sans(server.tls.server_cert))


def test_a_cluster_ip_package_dials_the_ip_and_the_servers_certificate_covers_it(layout: DevnetLayout) -> None:
    server = _service(layout, "org2", address="10.96.0.42:9999")
    assert server.tls is not None
    network = FabricNetwork("gxchannel-devnet", lambda: _document(layout))
    operator = KubernetesChaincodeOperator(network, [server], RecordingCluster({}),  # type: ignore[arg-type]
                                           ChaincodeSettings(), Progress(quiet=True))
    connection = read_package(operator.package_for(server, "1.1")[0]).connection
    assert connection is not None and connection.address == "10.96.0.42:9999"
    cert = x509.load_pem_x509_certificate(server.tls.server_cert.read_bytes())
    ips = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.IPAddress)
    assert "10.96.0.42" in [str(ip) for ip in ips]
    assert "gxtv3-org2-devnet.fabric" in _sans(server.tls.server_cert)


def test_the_material_is_stable_so_the_kubernetes_package_id_is(layout: DevnetLayout) -> None:
    first = _operator(layout, RecordingCluster({}))
    again = _operator(layout, RecordingCluster({}))
    assert first.package_for(first.servers[1], "1.1") == again.package_for(again.servers[1], "1.1")


def test_the_tls_secret_holds_the_servers_pair_and_the_client_ca_and_never_the_client_key(
        layout: DevnetLayout) -> None:
    server = _service(layout, "org2")
    assert server.tls is not None
    names: ChaincodeNames = chaincode_names(PROFILE, "org2")
    secret = tls_secret(names, server.tls)
    assert secret["metadata"] | {} == {"name": "gxtv3-chaincode-tls-org2-devnet", "namespace": "fabric",
                                       "labels": {"app.kubernetes.io/component": "chaincode", "gx.io/org": "org2"}}
    assert secret["type"] == "kubernetes.io/tls" and sorted(secret["data"]) == sorted(SECRET_KEYS)
    decoded = {key: base64.b64decode(value) for key, value in secret["data"].items()}
    assert decoded == {"ca.crt": server.tls.ca_cert.read_bytes(), "tls.crt": server.tls.server_cert.read_bytes(),
                       "tls.key": server.tls.server_key.read_bytes()}
    assert server.tls.client_key.read_bytes() not in decoded.values()


def test_a_missing_or_stale_secret_makes_the_servers_not_current(layout: DevnetLayout) -> None:
    operator = _operator(layout, RecordingCluster({}))
    wanted = operator.tls_secrets()
    assert secret_drift(wanted["org1"], wanted["org1"]) is None
    drift = operator.drift(_plan())
    assert drift == {"org1": "its TLS Secret gxtv3-chaincode-tls-org1-devnet does not exist",
                     "org2": "its TLS Secret gxtv3-chaincode-tls-org2-devnet does not exist"}
    stale = {**wanted["org2"], "data": {**wanted["org2"]["data"], "tls.key": "c3RhbGU="}}
    current = _operator(layout, RecordingCluster({wanted["org1"]["metadata"]["name"]: wanted["org1"],
                                                  stale["metadata"]["name"]: stale}))
    assert current.drift(_plan()) == {"org2": "its TLS Secret gxtv3-chaincode-tls-org2-devnet does not hold the "
                                              "chaincode TLS material of the packages"}
    assert not current.servers_current(_plan())


def test_the_restart_writes_the_secrets_before_it_rolls_and_then_everything_is_current(
        layout: DevnetLayout) -> None:
    cluster = RecordingCluster({})
    operator = _operator(layout, cluster)
    assert operator.restart_servers(_plan()) is True
    assert cluster.calls == ["apply Secret gxtv3-chaincode-tls-org1-devnet",
                             "apply Secret gxtv3-chaincode-tls-org2-devnet", "roll org1,org2"]
    assert operator.servers_current(_plan())
    assert operator.restart_servers(_plan()) is False


def test_a_network_file_without_the_devnet_that_issues_the_material_is_refused_naming_it(
        layout: DevnetLayout) -> None:
    names = chaincode_names(PROFILE, "org1")
    with pytest.raises(Unavailable) as caught:
        kubernetes_chaincode_tls({"peers": []}, names, env="devnet", address="x:9999", chaincode="gxtv3")
    assert caught.value.parameter == "fabric_network_file" and "state_dir" in caught.value.reason


def test_a_server_on_another_image_is_not_current_and_the_roll_sets_the_wanted_image(layout: DevnetLayout) -> None:
    cluster = RecordingCluster({})
    operator = _operator(layout, cluster)
    operator.restart_servers(_plan())  # the Secrets written: only the image can differ now
    assert operator.servers_current(_plan())
    operator.use_image(BUILT_IMAGE)
    assert operator.drift(_plan()) == {org: f"its container runs {DEPLOYED_IMAGE}, not {BUILT_IMAGE}" for org in ORGS}
    assert operator.restart_servers(_plan()) is True
    assert cluster.calls[-1] == f"roll org1,org2 image {BUILT_IMAGE}"
    assert operator.servers_current(_plan())
    assert operator.restart_servers(_plan()) is False


def test_without_a_wanted_image_the_servers_image_does_not_matter(layout: DevnetLayout) -> None:
    cluster = RecordingCluster({})
    operator = _operator(layout, cluster)
    operator.restart_servers(_plan())
    cluster.images = {"org1": "somewhere/else:1", "org2": None}
    assert operator.image_drift() == {} and operator.servers_current(_plan())
    assert not any("image" in call for call in cluster.calls)
