"""The chaincode upgrade on Kubernetes (runbook 02 with env=devnet|testnet|mainnet): the chaincode lifecycle over
gRPC as each org's admin, the chaincode servers through the platform layer.

The lifecycle phases are :class:`gxlib.chaincode.lifecycle.ChaincodeLifecycle`'s — the same code the local
profile runs — on the Fabric network of an environment document (``fabric_network_file``). Each org's CCaaS
package points its peer at the org's chaincode Service, ``<deployment>.<namespace>:<port>`` (the overlays name
the Service like its Deployment, ``<chaincode>-orgN-<env>`` in namespace ``fabric``) — or, with
``GX_K8S_PLATFORM_CHAINCODE_ADDRESSING=cluster-ip``, the Service's ClusterIP and port, for peers that run outside
the cluster's DNS (on the node) — unless ``chaincode_addresses`` says otherwise. Restarting the servers is
:meth:`gxlib.platform.kubernetes.KubernetesCluster.roll_chaincode`: the org's ConfigMap gets the new
``CHAINCODE_ID``, the pod template the same ID as an annotation, and the rollout is awaited.

The peer dials each server with TLS and a client certificate (:mod:`gxlib.platform.chaincode_tls`): the org's
package carries the CA and the peer's client pair, and the org's TLS Secret — which the Deployment mounts — the
server's pair; the Secret is written before the servers are rolled, and a missing or stale Secret counts as a
server that is not current.

The image the servers run is :mod:`gxlib.platform.chaincode_image`'s choice (``use_image``): built from
``chaincode/Dockerfile`` and imported into this machine's node, a reference CI pushed, or the one the Deployments
name already; a server running another image is not current, and the roll sets it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gxlib.chaincode.lifecycle import ChaincodeLifecycle, DeployPlan, FabricNetwork, FabricNetworkError, peer_orgs
from gxlib.config import ChaincodeSettings, Environment, EnvironmentProfile, environment_profile
from gxlib.devnet.crypto import ChaincodeTLS
from gxlib.errors import Unavailable
from gxlib.platform.chaincode_tls import kubernetes_chaincode_tls, secret_drift, tls_secret
from gxlib.platform.cluster import connect_cluster
from gxlib.platform.errors import PlatformError
from gxlib.platform.kubernetes import KubernetesCluster
from gxlib.platform.settings import (
    PACKAGE_ID_ANNOTATION,
    ChaincodeAddressing,
    ChaincodeNames,
    KubernetesPlatformSettings,
    chaincode_names,
)
from gxlib.progress import Progress


@dataclass(frozen=True)
class ChaincodeService:
    """One org's chaincode server on Kubernetes: its Deployment (and Service), the address its package holds, and
    the TLS material the package carries and the server's Secret (``tls_secret``) holds (``None``: plaintext)."""

    name: str
    org_key: str
    msp_id: str
    namespace: str
    address: str
    tls: ChaincodeTLS | None = None
    tls_secret: str = ""


def service_address(names: ChaincodeNames, port: int) -> str:
    """Where the org's peer dials its chaincode server in the cluster: ``<service>.<namespace>:<port>`` (the
    overlays name the Service like its Deployment)."""
    return f"{names.deployment}.{names.namespace}:{port}"


def service_port(service: Mapping[str, Any]) -> int | None:
    """The Service's ``grpc`` port (the only one the overlays give it), else its first port."""
    ports = (service.get("spec") or {}).get("ports") or []
    named = [p for p in ports if p.get("name") == "grpc"] or ports
    return int(named[0]["port"]) if named else None


def service_cluster_ip(service: Mapping[str, Any]) -> str | None:
    """The Service's ClusterIP (``None`` for a headless Service or one not allocated yet)."""
    cluster_ip = (service.get("spec") or {}).get("clusterIP")
    return None if not cluster_ip or cluster_ip == "None" else str(cluster_ip)


def package_address(names: ChaincodeNames, service: Mapping[str, Any], addressing: ChaincodeAddressing) -> str:
    """The address the org's package names for its chaincode Service: its cluster DNS name, or its ClusterIP
    (``cluster-ip``: peers outside the cluster's DNS); both with the Service's port. PlatformError when the
    Service has no port, or no ClusterIP to name."""
    port = service_port(service)
    where = f"service {names.namespace}/{names.deployment}"
    if port is None:
        raise PlatformError(f"{where} has no port: re-apply the overlay")
    if addressing is ChaincodeAddressing.SERVICE_DNS:
        return service_address(names, port)
    cluster_ip = service_cluster_ip(service)
    if cluster_ip is None:
        raise PlatformError(f"{where} has no ClusterIP (headless?), which GX_K8S_PLATFORM_CHAINCODE_ADDRESSING="
                            f"{addressing.value} names: give it one, or use service-dns")
    return f"[{cluster_ip}]:{port}" if ":" in cluster_ip else f"{cluster_ip}:{port}"


def server_drift(wanted: Mapping[str, str], configured: Mapping[str, str | None],
                 annotated: Mapping[str, str | None], rolled_out: Mapping[str, bool]) -> dict[str, str]:
    """org → why its chaincode server does not serve the wanted package ID (empty: every org's does).

    ``configured`` is the ConfigMap's CHAINCODE_ID, ``annotated`` the pod template's package-ID annotation (what
    the running pods were started from), ``rolled_out`` whether the Deployment's rollout is complete."""
    drift: dict[str, str] = {}
    for org, package_id in wanted.items():
        if configured.get(org) != package_id:
            drift[org] = f"CHAINCODE_ID is {configured.get(org)}"
        elif annotated.get(org) != package_id:
            drift[org] = f"the pod template carries {annotated.get(org)}"
        elif not rolled_out.get(org, False):
            drift[org] = "its rollout is not complete"
    return drift


class KubernetesChaincodeOperator(ChaincodeLifecycle[ChaincodeService]):
    """The lifecycle phases on the env's Fabric network; the chaincode servers are the env's Deployments."""

    def __init__(self, network: FabricNetwork, services: list[ChaincodeService], cluster_api: KubernetesCluster,
                 settings: ChaincodeSettings, progress: Progress, *, roll_timeout_s: float = 300.0) -> None:
        super().__init__(network, services, settings, progress)
        self.cluster_api = cluster_api
        self.roll_timeout_s = roll_timeout_s
        self.image: str | None = None  # the chaincode container's image the servers must run (None: any)

    def use_image(self, reference: str | None) -> None:
        """Make ``reference`` the image a current server runs, and the one a roll sets (None: leave it)."""
        self.image = reference

    def server_package_ids(self) -> dict[str, str | None]:
        """org → the CHAINCODE_ID its chaincode Deployment is configured with (None: no ConfigMap)."""
        configured = self.cluster_api.chaincode_package_ids()
        return {s.org_key: configured.get(s.org_key) for s in self.servers}

    def drift(self, plan: DeployPlan) -> dict[str, str]:
        """org → why its server does not serve the plan's package ID yet (empty when all do)."""
        annotated: dict[str, str | None] = {}
        rolled_out: dict[str, bool] = {}
        for server in self.servers:
            deployment = self.cluster_api.get("apps/v1", "Deployment", server.name, server.namespace) or {}
            template = ((deployment.get("spec") or {}).get("template") or {}).get("metadata") or {}
            annotated[server.org_key] = (template.get("annotations") or {}).get(PACKAGE_ID_ANNOTATION)
            rolled_out[server.org_key] = bool(deployment) and self.cluster_api.rollout_state(
                server.name, server.namespace).complete
        drift = server_drift(plan.package_ids, self.server_package_ids(), annotated, rolled_out)
        return {**self.secret_drift(), **self.image_drift(), **drift}

    def image_drift(self) -> dict[str, str]:
        """org → the image its chaincode container names, when that is not the wanted one (empty: no image wanted,
        or every org's is it)."""
        if self.image is None:
            return {}
        images = self.cluster_api.chaincode_images()
        return {s.org_key: f"its container runs {images.get(s.org_key)}, not {self.image}"
                for s in self.servers if images.get(s.org_key) != self.image}

    def tls_secrets(self) -> dict[str, dict[str, Any]]:
        """org → the TLS Secret its chaincode Deployment mounts, as the packages' material says it must be."""
        return {s.org_key: tls_secret(chaincode_names(self.cluster_api.profile, s.org_key), s.tls)
                for s in self.servers if s.tls is not None}

    def secret_drift(self) -> dict[str, str]:
        """org → why its TLS Secret is not the one its server needs (empty when every org's is)."""
        drift: dict[str, str] = {}
        secrets = self.tls_secrets()
        for server in self.servers:
            wanted = secrets.get(server.org_key)
            if wanted is None:
                continue
            deployed = self.cluster_api.get("v1", "Secret", wanted["metadata"]["name"], server.namespace)
            reason = secret_drift(deployed, wanted)
            if reason is not None:
                drift[server.org_key] = reason
        return drift

    def servers_current(self, plan: DeployPlan) -> bool:
        """Whether every org's TLS Secret holds the packages' material and its Deployment is configured with,
        stamped with and rolled out to the plan's ID."""
        return not self.drift(plan)

    def restart_servers(self, plan: DeployPlan) -> bool:
        """Write each org's TLS Secret, roll each org's Deployment to the plan's package ID (and the wanted image)
        and wait for the rollouts; False when current."""
        if self.servers_current(plan):
            return False
        if self.secret_drift():
            self.cluster_api.apply(list(self.tls_secrets().values()))
        self.cluster_api.roll_chaincode(dict(plan.package_ids), image=self.image, timeout_s=self.roll_timeout_s)
        return True


def _services(platform: KubernetesCluster, profile: EnvironmentProfile, document: dict[str, Any],
              addresses: Mapping[str, str]) -> list[ChaincodeService]:
    """Each org's chaincode Service, checked to exist; Unavailable when the environment cannot take the upgrade."""
    env, orgs, known = profile.env.value, peer_orgs(document), platform.settings.orgs
    unknown = sorted(set(addresses) - set(known))
    if unknown:
        raise Unavailable(f"chaincode_addresses names org(s) {', '.join(unknown)}, which have no chaincode server in "
                          f"{env}; known: {', '.join(known)}", parameter="chaincode_addresses")
    without = sorted(set(orgs) - set(known))
    if without:
        raise Unavailable(f"the Fabric network has peer org(s) {', '.join(without)} without a chaincode server in "
                          f"{env} (known: {', '.join(known)}): set GX_K8S_PLATFORM_ORGS")
    services: list[ChaincodeService] = []
    for org in known:
        names = chaincode_names(profile, org)
        if org not in orgs:
            raise Unavailable(f"fabric_network_file has no peer of {org} (its peer orgs: {', '.join(orgs) or 'none'}):"
                              f" give the {env} network's environment document", parameter="fabric_network_file")
        for kind, api_version in (("Deployment", "apps/v1"), ("Service", "v1")):
            if platform.get(api_version, kind, names.deployment, names.namespace) is None:
                raise Unavailable(f"{kind.lower()} {names.namespace}/{names.deployment} does not exist: apply the "
                                  f"{env} overlay (kubectl apply -k k8s/overlays/{env}) or check kubeconfig / "
                                  "kube_context", parameter="kube_context")
        service = platform.get("v1", "Service", names.deployment, names.namespace) or {}
        try:
            address = addresses.get(org) or package_address(names, service, platform.settings.chaincode_addressing)
        except PlatformError as exc:
            raise Unavailable(str(exc), parameter="chaincode_addresses") from exc
        tls = kubernetes_chaincode_tls(document, names, env=env, address=address, chaincode=profile.chaincode_name)
        services.append(ChaincodeService(name=names.deployment, org_key=org, msp_id=orgs[org],
                                         namespace=names.namespace, address=address, tls=tls,
                                         tls_secret=names.tls_secret))
    return services


def kubernetes_operator(env: Environment, settings: KubernetesPlatformSettings, *, fabric_network_file: Path,
                        channel: str, chaincode_name: str, chaincode_addresses: Mapping[str, str],
                        restart_timeout_s: float, progress: Progress) -> KubernetesChaincodeOperator:
    """The operator for ``env``'s cluster and Fabric network; Unavailable when it cannot act: the network file
    unreadable, the API server not answering, the chaincode Deployments or Services missing. Reads only."""
    try:
        network = FabricNetwork.from_file(fabric_network_file, channel)
    except FabricNetworkError as exc:
        raise Unavailable(f"fabric_network_file: {exc}", parameter="fabric_network_file") from exc
    document = network.environment()
    cluster = connect_cluster(settings)
    try:
        cluster.check_answers(settings.request_timeout_s)
    except Unavailable:
        cluster.close()
        raise
    profile = environment_profile(env).model_copy(update={"chaincode_name": chaincode_name})
    platform = KubernetesCluster(cluster.api, profile, settings=settings, progress=progress)
    try:
        services = _services(platform, profile, document, chaincode_addresses)
    except PlatformError as exc:
        raise Unavailable(str(exc)) from exc
    return KubernetesChaincodeOperator(network, services, platform, ChaincodeSettings(name=chaincode_name),
                                       progress, roll_timeout_s=restart_timeout_s)
