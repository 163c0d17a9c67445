"""Integration fixtures: the test chaincode (tests/integration/testcc.py) deployed on the session devnet.

``deploy_chaincode`` does what an operator does for chaincode as a service, with Fabric's own ``peer`` CLI:
build one CCaaS package per org (each org's package points at its own chaincode server), install it on the
org's peer, start the org's chaincode server with that package ID, approve for every org, commit, and wait
until both peers answer. The ``test_chaincode`` fixture runs it once per session.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gxlib.devnet.crypto import CertificateAuthority
from gxlib.devnet.network import Devnet
from gxlib.devnet.peercli import PeerCliError
from gxlib.fabric.lifecycle.package import ConnectionInfo, build_ccaas_package, package_id
from gxlib.runbook.kernel import install_kernel, kernel_python
from gxlib.runbook.settings import KERNEL_NAME
from gxshim.process import ChaincodeProcess, free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
TEST_CONTRACT = "tests.integration.testcc:TestContract"
TEST_CONTRACT_NAME = "TestContract"
TEST_FUNCTIONS = ("Put", "Get", "Del", "PutMany", "Range", "RangePage", "History", "PutComposite", "QueryComposite",
                  "Emit", "Fail", "WriteAfterPagedQuery", "CatchPeerError", "Whoami", "TxInfo", "InvokeChaincode",
                  "Add")


@dataclass
class DeployedChaincode:
    """A chaincode committed on the devnet's channel and served by one local process per org.

    ``package_id`` is org1's package ID; ``package_ids`` has every org's (each org's package names its own
    server address). ``servers`` lets a test stop or restart an org's chaincode server.
    """

    name: str
    channel: str
    label: str
    version: str
    sequence: int
    package_id: str
    package_ids: dict[str, str]
    contract: str
    functions: tuple[str, ...]
    servers: dict[str, ChaincodeProcess] = field(repr=False)

    def function(self, name: str) -> str:
        """``Contract:Function`` for a function of the test contract."""
        return f"{self.contract}:{name}"

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()


def committed_sequence(devnet: Devnet, name: str, org: str = "org1") -> int:
    """The sequence of ``name``'s committed definition on the channel, 0 when it has none."""
    channel = devnet.layout.settings.channel
    try:
        out = devnet.peer_cli(org).run("lifecycle", "chaincode", "querycommitted", "--channelID", channel,
                                       "--name", name)
    except PeerCliError as exc:
        if "404" in exc.output or "not found" in exc.output:
            return 0
        raise
    match = re.search(r"Sequence: (\d+)", out)
    return int(match.group(1)) if match else 0


def peer_tls_args(devnet: Devnet) -> list[str]:
    """``--peerAddresses/--tlsRootCertFiles`` for every peer (what invoke and commit need to reach both orgs)."""
    args: list[str] = []
    for peer in devnet.layout.peers:
        args += ["--peerAddresses", peer.endpoint, "--tlsRootCertFiles", str(peer.identity.tls_ca_file)]
    return args


def orderer_args(devnet: Devnet) -> list[str]:
    orderer = devnet.layout.orderer
    return ["-o", orderer.endpoint, "--tls", "--cafile", str(orderer.org.tls_ca_cert_file)]


def _server_tls(devnet: Devnet, work: Path, org_key: str, client_auth: bool) -> tuple[dict[str, str], dict[str, Any]]:
    """TLS for one org's chaincode server: the server's environment and the connection.json TLS fields.

    A throwaway CA per org signs the server certificate (for the loopback address) and, with ``client_auth``,
    the certificate the peer presents to the chaincode.
    """
    org = devnet.layout.org(org_key)
    ca = CertificateAuthority.create(org, f"chaincode-tlsca.{org.domain}")
    sans = [devnet.layout.settings.host, "localhost"]
    server_key, server_cert = ca.issue(org, f"chaincode.{org.domain}", tls_sans=sans)
    files = {"CHAINCODE_TLS_CERT": work / f"tls-{org_key}-server.crt", "CHAINCODE_TLS_KEY": work / f"tls-{org_key}.key"}
    files["CHAINCODE_TLS_CERT"].write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    files["CHAINCODE_TLS_KEY"].write_bytes(_pem_key(server_key))
    ca_pem = ca.cert.public_bytes(serialization.Encoding.PEM)
    fields: dict[str, Any] = {"tls_required": True, "root_cert": ca_pem.decode()}
    if client_auth:
        files["CHAINCODE_CLIENT_CA_CERT"] = work / f"tls-{org_key}-client-ca.crt"
        files["CHAINCODE_CLIENT_CA_CERT"].write_bytes(ca_pem)
        client_key, client_cert = ca.issue(org, f"peer-client.{org.domain}", tls_sans=["peer-client"])
        fields.update(client_auth_required=True, client_key=_pem_key(client_key).decode(),
                      client_cert=client_cert.public_bytes(serialization.Encoding.PEM).decode())
    return {k: str(v) for k, v in files.items()}, fields


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def deploy_chaincode(devnet: Devnet, *, name: str = "testcc", version: str = "1.0",
                     contracts: Sequence[str] = (TEST_CONTRACT,), work_dir: Path | None = None,
                     tls: bool = False, client_auth: bool = False,
                     ready_function: str = f"{TEST_CONTRACT_NAME}:Add", ready_args: Sequence[str] = ("1", "2"),
                     timeout_s: float = 90.0) -> DeployedChaincode:
    """Package, install, serve, approve and commit ``contracts`` as chaincode ``name`` on the devnet's channel.

    With ``tls`` the peer dials the chaincode servers over TLS (``client_auth``: mutual TLS). Upgrades when
    ``name`` is already committed (sequence + 1). Returns once every peer answers ``ready_function``; on
    failure the chaincode servers started here are stopped again.
    """
    layout = devnet.layout
    channel = layout.settings.channel
    work = work_dir or layout.root / "chaincode" / name
    work.mkdir(parents=True, exist_ok=True)
    sequence = committed_sequence(devnet, name) + 1
    label = f"{name}_{version}"
    servers: dict[str, ChaincodeProcess] = {}
    package_ids: dict[str, str] = {}
    try:
        for org in layout.peer_orgs:
            address = f"{layout.settings.host}:{free_port(layout.settings.host)}"
            server_env, tls_fields = _server_tls(devnet, work, org.key, client_auth) if tls else ({}, {})
            package = build_ccaas_package(label, ConnectionInfo(address=address, dial_timeout="10s", **tls_fields))
            pkg_file = work / f"{label}-{org.key}-seq{sequence}.tar.gz"
            pkg_file.write_bytes(package)
            package_ids[org.key] = package_id(label, package)
            devnet.peer_cli(org.key).run("lifecycle", "chaincode", "install", str(pkg_file), timeout_s=timeout_s)
            servers[org.key] = ChaincodeProcess(package_ids[org.key], address, list(contracts),
                                                work / f"server-{org.key}.log", cwd=REPO_ROOT,
                                                pythonpath=[REPO_ROOT], env=server_env).start()
        for org in layout.peer_orgs:
            devnet.peer_cli(org.key).run(
                "lifecycle", "chaincode", "approveformyorg", *orderer_args(devnet), "--channelID", channel,
                "--name", name, "--version", version, "--package-id", package_ids[org.key],
                "--sequence", str(sequence), timeout_s=timeout_s)
        first = layout.peer_orgs[0].key
        devnet.peer_cli(first).run(
            "lifecycle", "chaincode", "commit", *orderer_args(devnet), "--channelID", channel, "--name", name,
            "--version", version, "--sequence", str(sequence), *peer_tls_args(devnet), timeout_s=timeout_s)
        query = '{"Args":[' + ",".join(f'"{a}"' for a in (ready_function, *ready_args)) + "]}"
        for org in layout.peer_orgs:
            _wait_answers(devnet, org.key, channel, name, query, timeout_s)
    except BaseException:
        for server in servers.values():
            server.stop()
        raise
    return DeployedChaincode(name, channel, label, version, sequence, package_ids[layout.peer_orgs[0].key],
                             package_ids, TEST_CONTRACT_NAME, tuple(f"{TEST_CONTRACT_NAME}:{f}" for f in
                                                                    TEST_FUNCTIONS), servers)


def _wait_answers(devnet: Devnet, org: str, channel: str, name: str, query: str, timeout_s: float) -> None:
    # The definition reaches each peer with the commit block; until then the peer says it is not defined.
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            devnet.peer_cli(org).run("chaincode", "query", "--channelID", channel, "--name", name, "-c", query)
            return
        except PeerCliError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@pytest.fixture(scope="session")
def test_chaincode(devnet: Devnet) -> Iterator[DeployedChaincode]:
    """The test chaincode (name ``testcc``, contract ``TestContract``) committed on the session devnet."""
    deployed = deploy_chaincode(devnet)
    try:
        yield deployed
    finally:
        deployed.stop()

# The GX chaincode's session fixtures (gx_operator, gx_deployed, super_admin, service, bootstrapped).
from tests.integration.gx_fixtures import (  # noqa: E402, F401
    bootstrapped,
    gx_deployed,
    gx_operator,
    service,
    super_admin,
)


@pytest.fixture(scope="session")
def gx_kernel() -> str:
    """The project's Jupyter kernel spec, which runbook runs start (`make` installs it with `gx runbook kernel`;
    this does the same when it is missing, so a fresh clone's `pytest` works too)."""
    if kernel_python(KERNEL_NAME) is None:
        install_kernel(KERNEL_NAME)
    assert kernel_python(KERNEL_NAME) is not None
    return KERNEL_NAME
