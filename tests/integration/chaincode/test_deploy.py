"""`gx chaincode deploy`/`status` on real peers: committed as the peer CLI sees it, idempotent, upgradable."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import grpc
import pytest

from gxlib.chaincode import servers
from gxlib.chaincode.deploy import ChaincodeOperator, DeployError, DeployReport
from gxlib.devnet import processes
from gxlib.devnet.network import Devnet
from gxlib.fabric.lifecycle.package import read_package
from tests.integration.gx_fixtures import GxClient
from tests.unit.shim.fakepeer import FakePeer

pytestmark = pytest.mark.integration
CONTRACTS = {
    "TokenomicsContract": {"Mint", "Transfer", "DistributeGenesis", "GetBalance", "GetAccount"},
    "AdminContract": {"BootstrapSystem", "InitializeCountryData", "SetTrustedIssuerMSPs", "GetSystemStatus"},
    "IdentityContract": {"CreateUser", "GetUser"},
    "GovernanceContract": {"SubmitProposal"},
}


def test_peer_cli_sees_the_definition_committed_with_both_approvals(devnet: Devnet, gx_deployed: DeployReport) -> None:
    output = devnet.peer_cli("org2").run("lifecycle", "chaincode", "querycommitted", "-C", devnet.settings.channel,
                                         "-n", "gxtv3")
    assert f"Version: {gx_deployed.version}, Sequence: {gx_deployed.sequence}" in output
    assert "Org1MSP: true" in output and "Org2MSP: true" in output


def test_get_metadata_through_the_peer_cli_lists_the_four_contracts(devnet: Devnet,
                                                                    gx_deployed: DeployReport) -> None:
    output = devnet.peer_cli("org1").run("chaincode", "query", "-C", devnet.settings.channel, "-n", "gxtv3", "-c",
                                         '{"Args":["org.hyperledger.fabric:GetMetadata"]}')
    metadata, _ = json.JSONDecoder().raw_decode(output[output.index("{"):])
    found = {name: {t["name"] for t in c["transactions"]} for name, c in metadata["contracts"].items()}
    assert found == CONTRACTS


def test_each_org_runs_its_own_package_on_its_own_server(gx_operator: ChaincodeOperator,
                                                         gx_deployed: DeployReport) -> None:
    assert set(gx_deployed.package_ids) == {"org1", "org2"}
    for server in gx_operator.servers:
        assert servers.running_package_id(server) == gx_deployed.package_ids[server.org_key]
        assert gx_deployed.package_ids[server.org_key].startswith("gxtv3_1.0:")


def test_deploying_the_committed_version_again_changes_nothing(gx_operator: ChaincodeOperator,
                                                               gx_deployed: DeployReport) -> None:
    pids = [processes.running_pid(s) for s in gx_operator.servers]
    again = gx_operator.deploy(gx_deployed.version)
    assert again.already_committed and not again.changed, again.steps
    assert again.sequence == gx_deployed.sequence
    assert [processes.running_pid(s) for s in gx_operator.servers] == pids


def test_status_json_reports_version_approvals_packages_and_servers(devnet: Devnet,
                                                                     gx_deployed: DeployReport) -> None:
    result = subprocess.run([sys.executable, "-m", "gxlib.cli", "chaincode", "status", "--json", "--state-dir",
                             str(devnet.layout.root)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["committed"] and status["answering"]
    assert status["approvals"] == {"Org1MSP": True, "Org2MSP": True}
    assert {s["org"]: s["package_id"] for s in status["servers"]} == gx_deployed.package_ids
    assert all(gx_deployed.package_ids[org] in ids for org, ids in status["installed"].items())


def test_an_invalid_version_is_refused_before_anything_changes(gx_operator: ChaincodeOperator) -> None:
    with pytest.raises(DeployError, match="version 'bad version' is not valid"):
        gx_operator.deploy("bad version")


def test_upgrade_keeps_all_state(gx_operator: ChaincodeOperator, gx_deployed: DeployReport,
                                 super_admin: GxClient) -> None:
    super_admin.submit("TokenomicsContract:Mint", "upgrade-witness", "12345", "state must survive the upgrade")
    before = super_admin.evaluate("TokenomicsContract:GetAccount", "upgrade-witness")
    upgraded = gx_operator.deploy("1.1")
    assert upgraded.sequence == gx_deployed.sequence + 1 and upgraded.changed
    assert all(pid.startswith("gxtv3_1.1:") for pid in upgraded.package_ids.values())
    assert super_admin.evaluate("TokenomicsContract:GetAccount", "upgrade-witness") == before
    # ... and the new version serves writes.
    super_admin.submit("TokenomicsContract:Mint", "upgrade-witness", "1", "after the upgrade")
    assert super_admin.balance("upgrade-witness") == 12346


def test_the_chaincode_servers_serve_tls_and_refuse_a_client_without_the_peers_certificate(
        gx_operator: ChaincodeOperator, gx_deployed: DeployReport) -> None:
    """SPEC §10: the peer → chaincode connection is TLS with client auth; a client with only the CA (or none) is
    refused before it reaches the chaincode, one with the peer's client pair is served."""
    for server in gx_operator.servers:
        assert server.tls is not None
        ca = server.tls.ca_cert.read_bytes()
        contents = read_package(gx_operator.package_for(server, gx_deployed.version)[0])
        assert contents.connection is not None
        assert contents.connection.tls_required and contents.connection.client_auth_required
        without_cert = FakePeer(server.address, credentials=grpc.ssl_channel_credentials(ca))
        plaintext = FakePeer(server.address)
        with_cert = FakePeer(server.address, credentials=grpc.ssl_channel_credentials(
            ca, contents.connection.client_key.encode(), contents.connection.client_cert.encode()))
        try:
            assert with_cert.ready.wait(10), "a client with the peer's certificate is served"
            assert with_cert.registered_name == servers.running_package_id(server)
            for refused_client in (without_cert, plaintext):
                assert refused_client.ended.wait(10)
                assert not refused_client.ready.is_set() and refused_client.registered_name is None
        finally:
            for client in (without_cert, plaintext, with_cert):
                client.close()


def test_redeploying_a_committed_version_with_other_packages_is_refused_and_leaves_the_servers(
        devnet: Devnet, gx_operator: ChaincodeOperator, gx_deployed: DeployReport) -> None:
    """A devnet deployed by an older gxlib (plaintext packages) and deployed again at the committed version must not
    have its servers restarted with package IDs its peers never installed."""
    committed = gx_operator.status().version
    assert committed is not None
    pids = [processes.running_pid(s) for s in gx_operator.servers]
    plaintext = ChaincodeOperator(devnet, gx_operator.settings, devnet.progress)
    plaintext.servers = [dataclasses.replace(s, tls=None) for s in plaintext.servers]
    with pytest.raises(DeployError, match=f"gxtv3 {committed} is committed, but the package") as caught:
        plaintext.deploy(committed)
    assert caught.value.hint is not None and "deploy a new version" in caught.value.hint
    assert [processes.running_pid(s) for s in gx_operator.servers] == pids
    assert gx_operator.status().answering
