"""The Fabric side of the devnet on the cluster: a devnet whose nodes listen on the node's address (the host side
of the pod bridge, so the pods reach its peers), the ``backend-fabric-client`` Secret the submitter and projector
read (gxlib.backend.fabric_client: the client bundle with the peers at that address), and chaincode 1.0 served by
the chaincode pods, deployed through gxlib.platform's KubernetesChaincodeOperator — runbook 02's path: install and
approve on every org's peer, commit, write each org's TLS Secret and roll its Deployment. The peers run on the host,
outside the cluster DNS, so the packages name each chaincode Service's ClusterIP (kube-proxy routes the host's
connections to the pods). The devnet's state is under the cluster's state dir; ``down`` stops it first.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gxlib.backend.fabric_client import fabric_client_bundle, fabric_client_secret
from gxlib.config import ChaincodeSettings, DevnetSettings, Environment, environment_profile
from gxlib.devnet.network import Devnet
from gxlib.files import write_private
from gxlib.platform.kubernetes_chaincode import kubernetes_operator
from gxlib.platform.settings import ChaincodeAddressing, KubernetesPlatformSettings
from gxlib.progress import Progress

DEVNET_DIR = "devnet"
NETWORK_FILE = "fabric-network.json"


@dataclass
class FabricReport:
    devnet_state_dir: str
    channel: str
    chaincode: str
    version: str
    package_ids: dict[str, str] = field(default_factory=dict)
    already_committed: bool = False

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


class DevnetOnNode:
    """The devnet of an environment deployed on the cluster whose state dir is ``cluster_root``."""

    def __init__(self, cluster_root: Path, node_ip: str, env: Environment, *, port_offset: int, progress: Progress,
                 chaincode_version: str, roll_timeout_s: float) -> None:
        self.profile = environment_profile(env)
        self.env = env
        self.root = cluster_root / DEVNET_DIR
        self.node_ip = node_ip
        self.progress = progress
        self.chaincode_version = chaincode_version
        self.roll_timeout_s = roll_timeout_s
        self.devnet = Devnet(DevnetSettings(state_dir=self.root / "state", host=node_ip, port_offset=port_offset,
                                            channel=self.profile.channel), progress=progress)

    @property
    def network_file(self) -> Path:
        return self.root / NETWORK_FILE

    def up(self) -> dict[str, Any]:
        """Start (or find running) the devnet; its client environment, also written to the network file."""
        self.devnet.up()
        environment = self.devnet.environment()
        write_private(self.network_file, (json.dumps(environment, indent=2) + "\n").encode())
        return environment

    def client_secret(self, environment: dict[str, Any], namespace: str) -> dict[str, Any]:
        """Secret ``backend-fabric-client``: the submitter's and projector's identities, their peers at the node
        address."""
        return fabric_client_secret(fabric_client_bundle(environment, host=self.node_ip), namespace)

    def deploy_chaincode(self, kubeconfig: Path) -> FabricReport:
        """Chaincode ``chaincode_version`` committed and served by the pods (nothing to do when it already is)."""
        name = ChaincodeSettings().name
        settings = KubernetesPlatformSettings(kubeconfig=kubeconfig,
                                              chaincode_addressing=ChaincodeAddressing.CLUSTER_IP)
        operator = kubernetes_operator(self.env, settings, fabric_network_file=self.network_file,
                                       channel=self.profile.channel, chaincode_name=name, chaincode_addresses={},
                                       restart_timeout_s=self.roll_timeout_s, progress=self.progress)
        plan = operator.plan(self.chaincode_version)
        report = FabricReport(str(self.devnet.settings.state_dir), self.profile.channel, name, plan.version,
                              dict(plan.package_ids), plan.already_committed)
        if not plan.already_committed:
            for server in operator.servers:
                operator.install(plan, server.org_key)
            for server in operator.servers:
                operator.approve(plan, server.org_key)
            operator.commit(plan)
        operator.restart_servers(plan)  # False (and nothing rolled) when the pods already serve the plan
        operator.wait_answering()
        return report

    def down(self) -> bool:
        """Stop the devnet's nodes (its files go with the cluster's state dir); True when it had state."""
        if not self.root.exists():
            return False
        self.devnet.down(purge=False)
        return True
