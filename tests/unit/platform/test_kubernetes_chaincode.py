"""The pure parts of runbook 02 on Kubernetes: the package address from the overlay's names, when the chaincode
servers count as current, the Fabric network document, and the parameters a Kubernetes environment needs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from gxlib.chaincode.lifecycle import FabricNetwork, FabricNetworkError, peer_orgs
from gxlib.config import Environment, environment_profile
from gxlib.platform.errors import PlatformError
from gxlib.platform.kubernetes_chaincode import package_address, server_drift, service_address, service_port
from gxlib.platform.settings import ChaincodeAddressing, KubernetesPlatformSettings, chaincode_names
from gxlib.runbook import InvalidParameter, MainnetNotConfirmed, prepare
from gxlib.runbook.parameters import UpgradeChaincodeParameters

RUNBOOK = "02-upgrade-chaincode"
NEW = {"org1": "gxtv3_1.1:" + "a" * 64, "org2": "gxtv3_1.1:" + "b" * 64}
OLD = "gxtv3_1.0:" + "0" * 64


def _document() -> dict[str, Any]:
    return {"channel": "gxchannel-devnet",
            "peers": [{"name": "peer0-org1", "org": "org1", "msp_id": "Org1Devnet"},
                      {"name": "peer0-org2", "org": "org2", "msp_id": "Org2Devnet"}],
            "identities": [{"name": "Admin@org1"}, {"name": "Admin@org2"}],
            "roles": {"org_admins": {"org1": "Admin@org1", "org2": "Admin@org2"}}}


@pytest.mark.parametrize("env", [Environment.DEVNET, Environment.TESTNET, Environment.MAINNET])
def test_the_package_address_is_the_orgs_service_named_like_its_deployment(env: Environment) -> None:
    names = chaincode_names(environment_profile(env), "org2")
    assert service_address(names, 9999) == f"gxtv3-org2-{env.value}.fabric:9999"


def test_the_service_port_is_the_grpc_one() -> None:
    assert service_port({"spec": {"ports": [{"name": "metrics", "port": 9100},
                                            {"name": "grpc", "port": 9999}]}}) == 9999
    assert service_port({"spec": {"ports": [{"port": 7052}]}}) == 7052
    assert service_port({"spec": {}}) is None


def test_cluster_ip_addressing_names_the_services_cluster_ip_for_peers_outside_the_cluster_dns(
        monkeypatch: pytest.MonkeyPatch) -> None:
    names = chaincode_names(environment_profile(Environment.DEVNET), "org1")
    service = {"spec": {"clusterIP": "10.96.0.42", "ports": [{"name": "grpc", "port": 9999}]}}
    assert package_address(names, service, ChaincodeAddressing.SERVICE_DNS) == "gxtv3-org1-devnet.fabric:9999"
    assert package_address(names, service, ChaincodeAddressing.CLUSTER_IP) == "10.96.0.42:9999"
    assert KubernetesPlatformSettings().chaincode_addressing is ChaincodeAddressing.SERVICE_DNS
    monkeypatch.setenv("GX_K8S_PLATFORM_CHAINCODE_ADDRESSING", "cluster-ip")
    assert KubernetesPlatformSettings().chaincode_addressing is ChaincodeAddressing.CLUSTER_IP


def test_cluster_ip_addressing_of_a_headless_service_is_refused_naming_the_service_and_setting() -> None:
    names = chaincode_names(environment_profile(Environment.DEVNET), "org2")
    headless = {"spec": {"clusterIP": "None", "ports": [{"name": "grpc", "port": 9999}]}}
    with pytest.raises(PlatformError, match=r"fabric/gxtv3-org2-devnet has no ClusterIP .*CHAINCODE_ADDRESSING"):
        package_address(names, headless, ChaincodeAddressing.CLUSTER_IP)
    with pytest.raises(PlatformError, match="has no port"):
        package_address(names, {"spec": {"clusterIP": "10.96.0.7"}}, ChaincodeAddressing.CLUSTER_IP)


def test_servers_are_current_only_when_configured_stamped_and_rolled_out() -> None:
    everywhere = {org: True for org in NEW}
    assert server_drift(NEW, NEW, NEW, everywhere) == {}
    assert server_drift(NEW, {**NEW, "org1": OLD}, NEW, everywhere) == {"org1": f"CHAINCODE_ID is {OLD}"}
    assert server_drift(NEW, {**NEW, "org2": None}, NEW, everywhere) == {"org2": "CHAINCODE_ID is None"}
    assert server_drift(NEW, NEW, {**NEW, "org2": OLD}, everywhere) == {
        "org2": f"the pod template carries {OLD}"}
    assert server_drift(NEW, NEW, NEW, {"org1": True, "org2": False}) == {"org2": "its rollout is not complete"}


def test_the_fabric_network_file_gives_the_peer_orgs_and_the_channel(tmp_path: Path) -> None:
    path = tmp_path / "net.json"
    path.write_text(json.dumps(_document()))
    network = FabricNetwork.from_file(path, "gxchannel-devnet")
    assert network.channel == "gxchannel-devnet"
    assert peer_orgs(network.environment()) == {"org1": "Org1Devnet", "org2": "Org2Devnet"}


def test_an_unreadable_or_incomplete_fabric_network_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(FabricNetworkError, match=r"cannot read the Fabric network file .*missing\.json"):
        FabricNetwork.from_file(tmp_path / "missing.json", "c")
    (tmp_path / "text.json").write_text("peers: none")
    with pytest.raises(FabricNetworkError, match="is not JSON"):
        FabricNetwork.from_file(tmp_path / "text.json", "c")
    (tmp_path / "empty.json").write_text("{}")
    with pytest.raises(FabricNetworkError, match="lacks peers, identities, roles"):
        FabricNetwork.from_file(tmp_path / "empty.json", "c")
    no_admin = _document()
    del no_admin["roles"]["org_admins"]["org2"]
    with pytest.raises(FabricNetworkError, match=r"no admin identity for org\(s\) org2"):
        FabricNetwork.from_document(no_admin, "c")


@pytest.mark.parametrize("env", ["devnet", "testnet"])
def test_a_kubernetes_env_without_the_fabric_network_file_is_refused_naming_it(env: str) -> None:
    with pytest.raises(InvalidParameter) as caught:
        prepare(RUNBOOK, {"env": env}, environ={})
    assert caught.value.parameter == "fabric_network_file"
    assert f"required when env is {env}" in caught.value.message


def test_unconfirmed_mainnet_is_refused_for_that_first() -> None:
    with pytest.raises(MainnetNotConfirmed):
        prepare(RUNBOOK, {"env": "mainnet"}, environ={})
    with pytest.raises(InvalidParameter) as caught:
        prepare(RUNBOOK, {"env": "mainnet", "confirm_mainnet": "true"}, environ={})
    assert caught.value.parameter == "fabric_network_file"


def test_kubernetes_parameters_parse_from_the_command_line(tmp_path: Path) -> None:
    network_file = tmp_path / "devnet.json"
    network_file.write_text(json.dumps(_document()))
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({"contexts": [{"name": "devnet", "context": {}}]}))
    _, params = prepare(RUNBOOK, {"env": "devnet", "fabric_network_file": str(network_file),
                                  "kubeconfig": str(kubeconfig), "kube_context": "devnet",
                                  "chaincode_addresses": '{"org1": "127.0.0.1:7058"}'}, environ={})
    assert isinstance(params, UpgradeChaincodeParameters)
    assert params.fabric_network_file == network_file and params.kube_context == "devnet"
    assert params.kubeconfig == kubeconfig
    assert params.chaincode_addresses == {"org1": "127.0.0.1:7058"}
    _, local = prepare(RUNBOOK, {}, environ={})
    assert isinstance(local, UpgradeChaincodeParameters) and local.fabric_network_file is None
