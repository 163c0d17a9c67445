"""Node configuration rendered from Fabric's templates: no Docker, all state in the devnet directory."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gxlib.config import DevnetSettings
from gxlib.devnet.binaries import FabricInstall
from gxlib.devnet.channel import configtx_document
from gxlib.devnet.layout import DevnetLayout
from gxlib.devnet.nodeconfig import orderer_config, peer_core_config, write_node_config


@pytest.fixture
def layout(tmp_path: Path) -> DevnetLayout:
    return DevnetLayout(DevnetSettings(state_dir=tmp_path, gateway_concurrency_limit=77, batch_timeout_ms=150,
                                       max_message_count=42, port_offset=5))


def _all_strings(tree: object) -> list[str]:
    if isinstance(tree, dict):
        return [s for v in tree.values() for s in _all_strings(v)]
    if isinstance(tree, list):
        return [s for v in tree for s in _all_strings(v)]
    return [tree] if isinstance(tree, str) else []


def test_peer_config_runs_without_docker_with_gateway_metrics_and_ccaas(fabric_install: FabricInstall,
                                                                        layout: DevnetLayout) -> None:
    peer = layout.peers[0]
    core = peer_core_config(fabric_install, layout, peer)
    assert core["vm"]["endpoint"] == ""
    assert core["peer"]["gateway"]["enabled"] is True
    assert core["peer"]["limits"]["concurrency"]["gatewayService"] == 77
    assert core["peer"]["tls"]["enabled"] is True
    assert core["peer"]["gossip"]["externalEndpoint"] == peer.endpoint == "127.0.0.1:7056"
    assert core["operations"]["listenAddress"] == "127.0.0.1:9449"
    assert core["metrics"]["provider"] == "prometheus"
    builder = core["chaincode"]["externalBuilders"][0]
    assert Path(builder["path"]) == fabric_install.builder_dir
    assert (Path(builder["path"]) / "bin" / "detect").exists()
    assert core["ledger"]["state"]["stateDatabase"] == "goleveldb"


def test_no_node_writes_under_var_hyperledger(fabric_install: FabricInstall, layout: DevnetLayout) -> None:
    for node in layout.nodes:
        assert write_node_config(fabric_install, layout, node) is True
        assert write_node_config(fabric_install, layout, node) is False, "unchanged content is not rewritten"
        strings = _all_strings(yaml.safe_load(node.config_file.read_text()))
        assert not [s for s in strings if "/var/hyperledger" in s], node.name


def test_orderer_uses_channel_participation_with_mutual_tls_admin(fabric_install: FabricInstall,
                                                                  layout: DevnetLayout) -> None:
    orderer = orderer_config(fabric_install, layout, layout.orderer)
    assert orderer["General"]["BootstrapMethod"] == "none"
    assert orderer["ChannelParticipation"]["Enabled"] is True
    assert orderer["Admin"]["TLS"]["ClientAuthRequired"] is True
    assert orderer["Admin"]["ListenAddress"] == "127.0.0.1:7058"
    assert orderer["Metrics"]["Provider"] == "prometheus"


def test_channel_config_has_block_cutting_settings_and_anchor_peers(fabric_install: FabricInstall,
                                                                    layout: DevnetLayout) -> None:
    doc = configtx_document(fabric_install, layout)
    profile = next(iter(doc["Profiles"].values()))
    assert profile["Orderer"]["BatchTimeout"] == "150ms"
    assert profile["Orderer"]["BatchSize"]["MaxMessageCount"] == 42
    assert profile["Orderer"]["OrdererType"] == "etcdraft"
    anchors = {o["ID"]: o["AnchorPeers"] for o in profile["Application"]["Organizations"]}
    assert anchors == {"Org1MSP": [{"Host": "127.0.0.1", "Port": 7056}],
                       "Org2MSP": [{"Host": "127.0.0.1", "Port": 9056}]}
    assert profile["Application"]["Capabilities"] == {"V2_5": True}
