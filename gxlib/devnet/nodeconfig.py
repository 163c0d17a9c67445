"""Per-node Fabric configuration files, rendered from Fabric's own sampleconfig templates.

Each node gets its own ``core.yaml``/``orderer.yaml`` in its node directory with every setting that matters
written out (addresses, TLS, MSP, state paths, operations/metrics, Gateway, CCaaS builder), so the file is
the record of how the node runs — the environment only adds ``FABRIC_CFG_PATH`` and the metrics provider.
"""

from __future__ import annotations

from typing import Any

import yaml

from gxlib.config import DevnetSettings
from gxlib.devnet.binaries import FabricInstall
from gxlib.devnet.layout import DevnetLayout, Node, NodeRole


def _set(tree: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``a.b.c`` in a nested mapping, failing loudly if the template lacks the path (a Fabric upgrade
    that renames a key must not silently leave the old value in force)."""
    *parents, leaf = dotted.split(".")
    node = tree
    for key in parents:
        if not isinstance(node.get(key), dict):
            raise KeyError(f"Fabric config template has no section {dotted!r}")
        node = node[key]
    node[leaf] = value


def _load_template(install: FabricInstall, name: str) -> dict[str, Any]:
    template: dict[str, Any] = yaml.safe_load((install.config_dir / name).read_text())
    return template


def peer_core_config(install: FabricInstall, layout: DevnetLayout, node: Node) -> dict[str, Any]:
    s: DevnetSettings = layout.settings
    ident = node.identity
    core = _load_template(install, "core.yaml")
    values: dict[str, Any] = {
        "peer.id": ident.name,
        "peer.networkId": "gxdevnet",
        "peer.listenAddress": node.endpoint,
        "peer.address": node.endpoint,
        "peer.addressAutoDetect": False,
        "peer.chaincodeListenAddress": f"{node.host}:{node.chaincode_port}",
        "peer.chaincodeAddress": f"{node.host}:{node.chaincode_port}",
        "peer.gateway.enabled": True,
        # Gossip: each org has one peer, which bootstraps to itself and leads its org. The external endpoint
        # is what the other org learns through the anchor peer, so the Gateway can reach it for endorsement.
        "peer.gossip.bootstrap": node.endpoint,
        "peer.gossip.endpoint": node.endpoint,
        "peer.gossip.externalEndpoint": node.endpoint,
        "peer.gossip.useLeaderElection": False,
        "peer.gossip.orgLeader": True,
        "peer.tls.enabled": True,
        "peer.tls.clientAuthRequired": False,
        "peer.tls.cert.file": str(ident.tls_cert_file),
        "peer.tls.key.file": str(ident.tls_key_file),
        "peer.tls.rootcert.file": str(ident.tls_ca_file),
        "peer.tls.clientRootCAs.files": [str(ident.tls_ca_file)],
        "peer.fileSystemPath": str(node.data_dir),
        "peer.mspConfigPath": str(ident.msp_dir),
        "peer.localMspId": ident.msp_id,
        "peer.profile.enabled": False,
        "peer.limits.concurrency.gatewayService": s.gateway_concurrency_limit,
        # No Docker here: an empty endpoint disables the Docker chaincode VM; chaincode runs as a service.
        "vm.endpoint": "",
        "chaincode.externalBuilders": [{
            "name": "ccaas_builder",
            "path": str(install.builder_dir),
            "propagateEnvironment": ["CHAINCODE_AS_A_SERVICE_BUILDER_CONFIG"],
        }],
        "ledger.state.stateDatabase": "goleveldb",
        "ledger.snapshots.rootDir": str(node.data_dir / "snapshots"),
        "operations.listenAddress": f"{node.host}:{node.operations_port}",
        "operations.tls.enabled": False,
        "metrics.provider": "prometheus",
    }
    for key, value in values.items():
        _set(core, key, value)
    return core


def orderer_config(install: FabricInstall, layout: DevnetLayout, node: Node) -> dict[str, Any]:
    ident = node.identity
    orderer = _load_template(install, "orderer.yaml")
    values: dict[str, Any] = {
        "General.ListenAddress": node.host,
        "General.ListenPort": node.listen_port,
        "General.TLS.Enabled": True,
        "General.TLS.PrivateKey": str(ident.tls_key_file),
        "General.TLS.Certificate": str(ident.tls_cert_file),
        "General.TLS.RootCAs": [str(ident.tls_ca_file)],
        "General.TLS.ClientAuthRequired": False,
        # Raft traffic shares the main listener; the TLS pair doubles as the cluster client identity.
        "General.Cluster.ClientCertificate": str(ident.tls_cert_file),
        "General.Cluster.ClientPrivateKey": str(ident.tls_key_file),
        "General.BootstrapMethod": "none",
        "General.LocalMSPDir": str(ident.msp_dir),
        "General.LocalMSPID": ident.msp_id,
        "FileLedger.Location": str(node.data_dir / "ledger"),
        "Consensus.WALDir": str(node.data_dir / "etcdraft" / "wal"),
        "Consensus.SnapDir": str(node.data_dir / "etcdraft" / "snapshot"),
        "Operations.ListenAddress": f"{node.host}:{node.operations_port}",
        "Operations.TLS.Enabled": False,
        "Metrics.Provider": "prometheus",
        "Admin.ListenAddress": f"{node.host}:{node.admin_port}",
        "Admin.TLS.Enabled": True,
        "Admin.TLS.PrivateKey": str(ident.tls_key_file),
        "Admin.TLS.Certificate": str(ident.tls_cert_file),
        "Admin.TLS.RootCAs": [str(ident.tls_ca_file)],
        "Admin.TLS.ClientAuthRequired": True,
        "Admin.TLS.ClientRootCAs": [str(node.org.tls_ca_cert_file)],
        "ChannelParticipation.Enabled": True,
    }
    for key, value in values.items():
        _set(orderer, key, value)
    return orderer


def render_node_config(install: FabricInstall, layout: DevnetLayout, node: Node) -> str:
    config = (orderer_config if node.role is NodeRole.ORDERER else peer_core_config)(install, layout, node)
    return yaml.safe_dump(config, sort_keys=False)


def write_node_config(install: FabricInstall, layout: DevnetLayout, node: Node) -> bool:
    """Write the node's config file if its content changed (it is derived from settings and templates).
    Returns whether the file was written."""
    text = render_node_config(install, layout, node)
    if node.config_file.exists() and node.config_file.read_text() == text:
        return False
    node.dir.mkdir(parents=True, exist_ok=True)
    node.config_file.write_text(text)
    return True


def node_environment(layout: DevnetLayout, node: Node) -> dict[str, str]:
    """The environment a node process runs with, on top of a minimal base."""
    env = {"FABRIC_CFG_PATH": str(node.dir), "FABRIC_LOGGING_SPEC": layout.settings.fabric_log_spec}
    if node.role is NodeRole.ORDERER:
        env["ORDERER_METRICS_PROVIDER"] = "prometheus"
    else:
        env["CORE_METRICS_PROVIDER"] = "prometheus"
    return env
