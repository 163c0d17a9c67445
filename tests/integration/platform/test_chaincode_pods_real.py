"""The peers reach the chaincode pods through their Services, on a real single-node cluster.

- The cluster: ``gx k8s up``'s NodeCluster (containerd, control plane, kubelet, kube-proxy, CoreDNS), once per
  module, under the host's one-real-node lock, taken down at the end.
- The Fabric network: a devnet on the node IP (the pod bridge's address). Its peers run on the host, outside the
  cluster's DNS, so the packages name each chaincode Service's ClusterIP (GX_K8S_PLATFORM_CHAINCODE_ADDRESSING=
  cluster-ip); kube-proxy routes the host's connections to the pods.
- The chaincode: the image gxlib/k8simages builds from chaincode/Dockerfile, imported into the node's containerd;
  the devnet overlay's chaincode objects (k8s/overlays/devnet/chaincode) applied with that image, as the overlay's
  kustomize images would point them; install/approve/commit and the roll through the platform's own
  KubernetesChaincodeOperator (runbook 02's path), which writes each org's TLS Secret and rolls the Deployments.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from kubernetes import config as k8s_config

from gxlib.chaincode.lifecycle import DeployPlan
from gxlib.config import Environment, environment_profile
from gxlib.devnet import processes
from gxlib.devnet.binaries import FabricInstall
from gxlib.devnet.crypto import ChaincodeTLS
from gxlib.devnet.network import Devnet
from gxlib.fabric.sync import SyncGateway
from gxlib.k8sbuild.binaries import KUSTOMIZE, ensure_k8s_tools
from gxlib.k8sbuild.settings import K8sBuildSettings
from gxlib.k8scluster import containerd
from gxlib.k8scluster.cluster import NodeCluster
from gxlib.k8scluster.settings import K8sClusterSettings
from gxlib.k8simages import catalog
from gxlib.k8simages.settings import ImageSettings
from gxlib.k8simages.store import BuiltImage, ImageStore
from gxlib.platform.kubernetes import KubernetesCluster
from gxlib.platform.kubernetes_chaincode import KubernetesChaincodeOperator, kubernetes_operator
from gxlib.platform.settings import (
    PACKAGE_ID_ANNOTATION,
    ChaincodeAddressing,
    KubernetesPlatformSettings,
    chaincode_names,
)
from gxlib.progress import Progress
from tests.conftest import BASE_TEST_OFFSET, make_devnet
from tests.integration.k8scluster.host_lock import one_node_on_this_host, skip_unless_this_host_runs_a_node
from tests.integration.platform.conftest import K8S_DIR, kustomize_build

pytestmark = [pytest.mark.integration, pytest.mark.timeout(2400)]

CLUSTER_PORT_OFFSET = int(os.environ.get("GX_TEST_PORT_OFFSET", "0"))
DEVNET_OFFSET = BASE_TEST_OFFSET + 700
CHANNEL = "gxchannel-devnet"
CHAINCODE = "gxtv3"
ORGS = ("org1", "org2")
CHAINCODE_IMAGE = "registry.gx.local/gxtv3-chaincode"


@dataclass
class World:
    node: NodeCluster
    devnet: Devnet
    network_file: Path
    platform: KubernetesCluster
    settings: KubernetesPlatformSettings
    image: BuiltImage


def _cluster_settings(state_dir: Path) -> K8sClusterSettings:
    return K8sClusterSettings(state_dir=state_dir, bridge="gxpfab0", pod_cidr="10.244.0.0/24",
                              node_name="gx-podfabric-node").with_port_offset(CLUSTER_PORT_OFFSET)


def _chaincode_objects(image: BuiltImage) -> list[dict[str, Any]]:
    """The devnet overlay's chaincode objects, the Deployments' image pointed at the locally built one."""
    kustomize = ensure_k8s_tools(K8sBuildSettings(), [KUSTOMIZE], progress=Progress()).binary(KUSTOMIZE)
    objects = kustomize_build(kustomize, K8S_DIR / "overlays" / "devnet" / "chaincode")
    for obj in objects:
        if obj["kind"] == "Deployment":
            for container in obj["spec"]["template"]["spec"]["containers"]:
                assert container["image"].startswith(CHAINCODE_IMAGE), container["image"]
                container["image"] = image.reference
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "fabric"}}
    return [namespace, *objects]


@pytest.fixture(scope="module")
def world(fabric_install: FabricInstall, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("chaincode-pods")
    cluster_settings = _cluster_settings(root / "cluster")
    skip_unless_this_host_runs_a_node(cluster_settings)
    progress = Progress()
    image = ImageStore(ImageSettings().cache_root).ensure(catalog.chaincode(), progress).image
    objects = _chaincode_objects(image)
    with one_node_on_this_host("test_chaincode_pods_real"):
        node = NodeCluster(cluster_settings, progress=progress)
        try:
            node.up()
            containerd.import_image(cluster_settings, node.layout, image.archive, image.reference)
            devnet = make_devnet(root / "devnet", DEVNET_OFFSET, host=cluster_settings.node_ip, channel=CHANNEL)
            try:
                devnet.up()
                network_file = root / "fabric-network.json"
                network_file.write_text(json.dumps(devnet.environment(), indent=2))
                settings = KubernetesPlatformSettings(kubeconfig=node.layout.kubeconfig, poll_interval_s=0.5,
                                                      chaincode_addressing=ChaincodeAddressing.CLUSTER_IP)
                api = k8s_config.new_client_from_config(config_file=str(node.layout.kubeconfig))
                platform = KubernetesCluster(api, environment_profile(Environment.DEVNET), settings=settings,
                                             progress=progress)
                platform.apply(objects)
                try:
                    yield World(node, devnet, network_file, platform, settings, image)
                finally:
                    api.close()
            finally:
                devnet.down(purge=True)
        finally:
            node.down()


def _operator(world: World) -> KubernetesChaincodeOperator:
    return kubernetes_operator(Environment.DEVNET, world.settings, fabric_network_file=world.network_file,
                               channel=CHANNEL, chaincode_name=CHAINCODE, chaincode_addresses={},
                               restart_timeout_s=300, progress=Progress())


def _roll_out(operator: KubernetesChaincodeOperator, version: str) -> DeployPlan:
    """Runbook 02's steps: install and approve on every org, commit, write the TLS Secrets and roll the pods, wait
    until every org's peer gets an answer."""
    plan = operator.plan(version)
    for server in operator.servers:
        operator.install(plan, server.org_key)
    for server in operator.servers:
        operator.approve(plan, server.org_key)
    operator.commit(plan)
    operator.restart_servers(plan)
    operator.wait_answering()
    return plan


@pytest.fixture(scope="module")
def first(world: World) -> DeployPlan:
    """gxtv3 1.0 committed, served by the pods."""
    return _roll_out(_operator(world), "1.0")


def _cluster_ip(world: World, org: str) -> str:
    names = chaincode_names(world.platform.profile, org)
    service = world.platform.get("v1", "Service", names.deployment, names.namespace) or {}
    return str(service["spec"]["clusterIP"])


def _wait_pods_serve(world: World, org: str, package_id: str) -> None:
    """Wait until every Ready chaincode pod of the org was started with ``package_id`` (the old pods of a roll may
    still report Ready while they terminate)."""
    def probe() -> tuple[bool, str | None]:
        ready = {p.name: p.annotations.get(PACKAGE_ID_ANNOTATION) for p in world.platform.chaincode_pods(org)
                 if p.ready}
        return bool(ready) and set(ready.values()) == {package_id}, f"Ready pods: {ready}"

    Progress().wait_until(f"{org}'s Ready chaincode pods to run {package_id}", probe, timeout_s=120)


def _evaluate(world: World, identity: str, function: str, *args: str, org: str | None = None) -> Any:
    with SyncGateway.from_environment(world.devnet.environment(), identity, org) as gateway:
        raw = gateway.network(CHANNEL).contract(CHAINCODE).evaluate(function, *args)
    return json.loads(raw) if raw else None


def test_the_packages_name_each_services_cluster_ip(world: World, first: DeployPlan) -> None:
    operator = _operator(world)
    addresses = {s.org_key: s.address for s in operator.servers}
    assert addresses == {org: f"{_cluster_ip(world, org)}:9999" for org in ORGS}
    for server in operator.servers:
        assert server.tls is not None
        cert = x509.load_pem_x509_certificate(server.tls.server_cert.read_bytes())
        ips = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
            x509.IPAddress)
        assert _cluster_ip(world, server.org_key) in [str(ip) for ip in ips]


def test_the_peers_get_answers_from_the_pods(world: World, first: DeployPlan) -> None:
    for org in ORGS:
        _wait_pods_serve(world, org, first.package_ids[org])
    # No chaincode server runs on the host: the devnet's processes are its nodes only.
    node_pids = {pid for node in world.devnet.layout.nodes for pid in processes.node_pids(node)}
    assert set(processes.pids_under(world.devnet.layout.root)) <= node_pids
    assert _evaluate(world, "service", "AdminContract:GetSystemStatus")["bootstrapped"] is False
    # A submit is endorsed by both orgs' peers (majority of two), each asking its own org's pod.
    with SyncGateway.from_environment(world.devnet.environment(), "super_admin") as gateway:
        gateway.network(CHANNEL).contract(CHAINCODE).submit("AdminContract:BootstrapSystem")
    for org in ORGS:
        assert _evaluate(world, f"admin:{org}", "AdminContract:GetSystemStatus", org=org)["bootstrapped"] is True


def _handshake(address: str, tls: ChaincodeTLS, client: ChaincodeTLS | None) -> None:
    """A TLS connection to the chaincode Service as a peer would open it (``client``: whose client pair it shows),
    with one read so that a refused client certificate (TLS 1.3 reports it after the handshake) surfaces."""
    context = ssl.create_default_context(cafile=str(tls.ca_cert))
    context.check_hostname = True
    context.set_alpn_protocols(["h2"])
    if client is not None:
        context.load_cert_chain(str(client.client_cert), str(client.client_key))
    host, _, port = address.rpartition(":")
    with socket.create_connection((host, int(port)), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname=host) as conn:
        conn.settimeout(5)
        # The HTTP/2 preface: a server that accepted the client answers with its SETTINGS frame.
        conn.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        if not conn.recv(9):
            raise ConnectionResetError("the server closed the connection")


def test_the_pods_serve_tls_and_refuse_a_peer_of_another_ca(world: World, first: DeployPlan) -> None:
    servers = {s.org_key: s for s in _operator(world).servers}
    org1, org2 = servers["org1"], servers["org2"]
    assert org1.tls is not None and org2.tls is not None
    _handshake(org1.address, org1.tls, org1.tls)  # org1's peer, as its package tells it to
    with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
        _handshake(org1.address, org1.tls, org2.tls)  # a client pair of org2's TLS CA
    with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
        _handshake(org1.address, org1.tls, None)  # no client certificate at all
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(org1.address, org2.tls, org2.tls)  # a peer trusting another CA refuses the server


def test_rolling_to_a_new_package_id_keeps_answering(world: World, first: DeployPlan) -> None:
    operator = _operator(world)
    second = _roll_out(operator, "1.1")
    assert all(second.package_ids[org] != first.package_ids[org] for org in ORGS)
    for org in ORGS:
        _wait_pods_serve(world, org, second.package_ids[org])
        names = chaincode_names(world.platform.profile, org)
        config_map = world.platform.get("v1", "ConfigMap", names.config_map, names.namespace) or {}
        assert config_map["data"]["CHAINCODE_ID"] == second.package_ids[org]
    committed = operator.committed()
    assert committed is not None and committed.version == "1.1"
    with SyncGateway.from_environment(world.devnet.environment(), "super_admin") as gateway:
        gateway.network(CHANNEL).contract(CHAINCODE).submit("TokenomicsContract:Mint", "pods-roll", "5",
                                                            "after the roll")
    balances = {org: int(_evaluate(world, f"admin:{org}", "TokenomicsContract:GetBalance", "pods-roll",
                                   org=org)["balance"]) for org in ORGS}
    assert balances["org1"] == balances["org2"] > 0, balances
    assert operator.servers_current(second) and not operator.restart_servers(second)

