"""The Fabric side of a devnet deploy: the Fabric nodes stay a devnet on this machine, on the node IP, and the
cluster's pods use them.

In order, each step idempotent: the devnet (``DevnetSettings.host`` = the node IP, its own state dir under the
cluster's, the env's channel) up; its environment document written next to the generated kustomization (what
runbook 02 takes as ``fabric_network_file``); the Fabric client bundle Secret ``backend-fabric-client`` applied in
``backend-<env>`` (the submitter's and projector's identities, peers at the node IP); and, once the overlay's
chaincode Deployments exist, the chaincode: the first version installed, approved and committed through the
platform's Kubernetes chaincode path with cluster-ip addressing (the host's peers reach the pods through their
Services' ClusterIPs), when nothing is committed yet — later versions are runbook 02's — and the pods rolled to the
committed version's package when they are not on it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gxlib.backend.fabric_client import fabric_client_bundle, fabric_client_secret
from gxlib.config import DevnetSettings, Environment, environment_profile
from gxlib.devnet.network import Devnet
from gxlib.files import write_private
from gxlib.platform.kubernetes_chaincode import KubernetesChaincodeOperator, kubernetes_operator
from gxlib.platform.settings import ChaincodeAddressing, KubernetesPlatformSettings, chaincode_names
from gxlib.progress import Progress

DEVNET_DIR = "devnet"
NETWORK_FILE = "fabric-network.json"
FIRST_CHAINCODE_VERSION = "1.0"

ObjectKey = tuple[str, str, str]


def devnet_dir(cluster_state_dir: Path) -> Path:
    """The host devnet's state dir: inside the cluster's, beside the deployment's other state."""
    return cluster_state_dir / DEVNET_DIR


def network_file(deploy_dir: Path) -> Path:
    """The devnet's environment document (admins included): runbook 02's ``fabric_network_file``."""
    return deploy_dir / NETWORK_FILE


def devnet_settings(env: str, state_dir: Path, node_ip: str, port_offset: int) -> DevnetSettings:
    return DevnetSettings(state_dir=state_dir, host=node_ip, port_offset=port_offset,
                          channel=environment_profile(Environment(env)).channel)


def platform_owned(objects: list[dict[str, Any]], env: str) -> set[ObjectKey]:
    """The overlay's objects that the platform rewrites after they are created (each org's chaincode package
    ConfigMap: its CHAINCODE_ID is the installed package's): applied when missing, never reset afterwards."""
    profile = environment_profile(Environment(env))
    names = [chaincode_names(profile, org) for org in KubernetesPlatformSettings().orgs]
    owned = {("ConfigMap", n.namespace, n.config_map) for n in names}
    return {key for key in ((o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]) for o in objects)
            if key in owned}


@dataclass
class ChaincodeOutcome:
    committed_version: str
    deployed_now: bool
    rolled: bool


class HostFabric:
    """The devnet of a deploy and what the cluster needs of it."""

    def __init__(self, env: str, devnet: DevnetSettings, kubeconfig: Path, deploy_dir: Path, *,
                 progress: Progress, restart_timeout_s: float = 300.0) -> None:
        self.env = Environment(env)
        self.progress = progress
        self.devnet = Devnet(devnet, progress=progress)
        self.kubeconfig = kubeconfig
        self.network_file = network_file(deploy_dir)
        self.restart_timeout_s = restart_timeout_s
        self.namespace = f"backend-{env}"

    def up(self) -> Path:
        """The devnet up (nothing to do when it runs) and its environment document written; returns the file."""
        self.devnet.up()
        write_private(self.network_file, (json.dumps(self.devnet.environment(), indent=2) + "\n").encode())
        return self.network_file

    def client_secret(self, node_ip: str) -> dict[str, Any]:
        """The ``backend-fabric-client`` Secret of the backend namespace: peers at ``node_ip``."""
        return fabric_client_secret(fabric_client_bundle(self.devnet.environment(), host=node_ip), self.namespace)

    def platform_settings(self) -> KubernetesPlatformSettings:
        return KubernetesPlatformSettings(kubeconfig=self.kubeconfig,
                                          chaincode_addressing=ChaincodeAddressing.CLUSTER_IP)

    def operator(self) -> KubernetesChaincodeOperator:
        profile = environment_profile(self.env)
        return kubernetes_operator(self.env, self.platform_settings(), fabric_network_file=self.network_file,
                                   channel=profile.channel, chaincode_name=profile.chaincode_name,
                                   chaincode_addresses={}, restart_timeout_s=self.restart_timeout_s,
                                   progress=self.progress)

    def chaincode(self) -> ChaincodeOutcome:
        """The first version committed when nothing is, and the pods on the committed version's package."""
        operator = self.operator()
        committed = operator.committed()
        if committed is None:
            with self.progress.task(f"chaincode {FIRST_CHAINCODE_VERSION}: install, approve, commit (the pods "
                                    "serve it through their Services' ClusterIPs)"):
                plan = operator.plan(FIRST_CHAINCODE_VERSION)
                _each(operator, lambda org: operator.install(plan, org))
                _each(operator, lambda org: operator.approve(plan, org))
                operator.commit(plan)
                operator.restart_servers(plan)
                operator.wait_answering()
            return ChaincodeOutcome(FIRST_CHAINCODE_VERSION, True, True)
        plan = operator.plan(committed.version)
        rolled = operator.restart_servers(plan)
        if rolled:
            self.progress.info(f"  chaincode pods rolled to the committed {committed.version}'s packages")
            operator.wait_answering()
        else:
            self.progress.info(f"  chaincode {committed.version} is committed and served; runbook 02 upgrades it")
        return ChaincodeOutcome(committed.version, False, rolled)


def _each(operator: KubernetesChaincodeOperator, step: Callable[[str], object]) -> None:
    for server in operator.servers:
        step(server.org_key)


def summary(outcome: ChaincodeOutcome | None) -> Mapping[str, Any]:
    if outcome is None:
        return {}
    return {"committed_version": outcome.committed_version, "deployed_now": outcome.deployed_now,
            "rolled": outcome.rolled}
