"""The devnet on a non-loopback address (what pods and other hosts dial): ``DevnetSettings(host=<ip>)`` end to end.

The address is the test's own (a veth link with a private /32, removed afterwards). Every node listens there and
not on loopback; the TLS certificates name the address; clients dial the IP and check the node's TLS server name;
a chaincode is deployed and answers through the Gateway; a backend bundle for that host works as it is.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from gxlib.backend.fabric_client import fabric_client_bundle, load_network_file, write_bundle
from gxlib.chaincode.deploy import ChaincodeOperator
from gxlib.config import ChaincodeSettings
from gxlib.devnet.binaries import FabricInstall
from gxlib.devnet.network import Devnet
from gxlib.fabric.sync import SyncGateway
from gxlib.progress import Progress
from tests.conftest import BASE_TEST_OFFSET, make_devnet
from tests.integration.conftest import DeployedChaincode, deploy_chaincode
from tests.integration.host_address import private_address

pytestmark = pytest.mark.integration
OFFSET = BASE_TEST_OFFSET + 600
# TEST-NET-2-like benchmark range (RFC 2544), never routed; overridable when a machine uses it.
ADDRESS = os.environ.get("GX_TEST_DUMMY_ADDRESS", "198.18.20.1")
LINK = f"gxdev{OFFSET % 10000}"


@pytest.fixture(scope="module")
def address() -> Iterator[str]:
    with private_address(LINK, ADDRESS) as assigned:
        yield assigned


@pytest.fixture(scope="module")
def ip_devnet(fabric_install: FabricInstall, address: str,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    net = make_devnet(tmp_path_factory.mktemp("ip-devnet"), OFFSET, host=address)
    try:
        net.up()
        yield net
    finally:
        net.down(purge=True)


@pytest.fixture(scope="module")
def ip_chaincode(ip_devnet: Devnet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DeployedChaincode]:
    deployed = deploy_chaincode(ip_devnet, work_dir=tmp_path_factory.mktemp("ip-chaincode"), tls=True)
    try:
        yield deployed
    finally:
        deployed.stop()


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def test_every_node_listens_on_the_address_and_not_on_loopback(ip_devnet: Devnet, address: str) -> None:
    status = ip_devnet.status()
    assert status.all_healthy, status
    for node in ip_devnet.layout.nodes:
        for purpose, port in node.ports.items():
            assert _accepts(address, port), f"{node.name} {purpose} is not on {address}:{port}"
            assert not _accepts("127.0.0.1", port), f"{node.name} {purpose} also listens on loopback"
        # Operations (/healthz, /metrics) on the address too.
        assert httpx.get(f"http://{address}:{node.operations_port}/healthz", timeout=5).status_code == 200
    environment = ip_devnet.environment()
    assert all(p["endpoint"].startswith(f"{address}:") for p in environment["peers"])
    assert environment["orderer"]["endpoint"].startswith(f"{address}:")


def test_node_certificates_name_the_address_and_the_node(ip_devnet: Devnet, address: str) -> None:
    for node in ip_devnet.layout.nodes:
        cert = x509.load_pem_x509_certificate(node.identity.tls_cert_file.read_bytes())
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert str(address) in [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)], node.name
        assert node.identity.name in sans.get_values_for_type(x509.DNSName), node.name
        # A client that dials the IP and checks the node's TLS server name completes the handshake.
        context = ssl.create_default_context(cafile=str(node.org.tls_ca_cert_file))
        context.set_alpn_protocols(["h2"])
        with socket.create_connection((address, node.listen_port), timeout=5) as raw, \
                context.wrap_socket(raw, server_hostname=node.identity.name) as tls:
            assert tls.version() is not None


def test_a_chaincode_answers_through_the_gateway_on_the_address(ip_devnet: Devnet, ip_chaincode: DeployedChaincode,
                                                                address: str) -> None:
    environment = ip_devnet.environment()
    with SyncGateway.from_environment(environment, "service") as gateway:
        assert gateway.gateway.endpoint.address.startswith(f"{address}:")
        contract = gateway.network(ip_chaincode.channel).contract(ip_chaincode.name)
        contract.submit(ip_chaincode.function("Put"), "ip-key", "on-the-address")
        assert contract.evaluate(ip_chaincode.function("Get"), "ip-key") == b"on-the-address"


def test_a_wrong_tls_server_name_is_refused(ip_devnet: Devnet) -> None:
    peer = ip_devnet.layout.peer_of("org1")
    context = ssl.create_default_context(cafile=str(peer.org.tls_ca_cert_file))
    with socket.create_connection((peer.host, peer.listen_port), timeout=5) as raw, \
            pytest.raises(ssl.SSLCertVerificationError):
        context.wrap_socket(raw, server_hostname="peer0.elsewhere.example")


def test_a_backend_bundle_for_the_address_reaches_the_peer(ip_devnet: Devnet, ip_chaincode: DeployedChaincode,
                                                           address: str, tmp_path: Path) -> None:
    network_file = write_bundle(fabric_client_bundle(ip_devnet.environment(), host=address), tmp_path / "bundle")
    assert all(p["endpoint"].startswith(f"{address}:") for p in json.loads(network_file.read_text())["peers"])
    with SyncGateway.from_environment(load_network_file(network_file), "service") as gateway:
        contract = gateway.network(ip_chaincode.channel).contract(ip_chaincode.name)
        contract.submit(ip_chaincode.function("Put"), "bundle-key", "from-the-bundle")
        assert contract.evaluate(ip_chaincode.function("Get"), "bundle-key") == b"from-the-bundle"


def test_gx_chaincode_deploy_serves_the_gx_chaincode_on_the_address(ip_devnet: Devnet, address: str) -> None:
    """`gx chaincode deploy`'s own path (lifecycle through the Gateway, chaincode servers beside the peers)."""
    operator = ChaincodeOperator(ip_devnet, ChaincodeSettings(), Progress(quiet=True))
    try:
        operator.deploy("1.0")
        assert all(s.address.startswith(f"{address}:") for s in operator.servers)
        with SyncGateway.from_environment(ip_devnet.environment(), "service") as gateway:
            contract = gateway.network(ip_devnet.settings.channel).contract(ChaincodeSettings().name)
            assert json.loads(contract.evaluate("AdminContract:GetSystemStatus"))["bootstrapped"] is False
    finally:
        operator.stop_servers()
