"""Where the cluster keeps its state and which addresses and ports it uses (``GX_K8S_CLUSTER_*``)."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import platformdirs
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from gxlib.config import APP_NAME
from gxlib.k8sbuild.controlplane import POD_CIDR, SERVICE_CIDR


def _default_state_dir() -> Path:
    return Path(platformdirs.user_state_dir(APP_NAME)) / "k8s-cluster"


class K8sClusterSettings(BaseSettings):
    """The cluster's state directory, network and ports. The pod network is one /24 on a bridge; the bridge's
    first address is the node IP and the API server's bind address (pods reach the API server there)."""

    model_config = SettingsConfigDict(env_prefix="GX_K8S_CLUSTER_", extra="ignore")

    state_dir: Path = Field(default_factory=_default_state_dir)
    node_name: str = "gx-node"
    bridge: str = "gxbr0"
    pod_cidr: str = POD_CIDR
    service_cidr: str = SERVICE_CIDR
    apiserver_port: int = 6443
    kubelet_port: int = 10250
    kubelet_healthz_port: int = 10248
    kube_proxy_metrics_port: int = 10249
    kube_proxy_healthz_port: int = 10256
    cni_bin_dir: Path = Path("/usr/lib/cni")
    containerd_binary: str = "containerd"
    ctr_binary: str = "ctr"
    runc_binary: str = "runc"
    # The kubelet's longest period between two syncs of a pod; a changed ConfigMap reaches the pod's files at the
    # next one. Kubernetes' default is 60 s: an operator (and runbook 01's reload) waited a minute or two for a
    # changed alert rule. A handful of pods on one node costs the kubelet nothing noticeable at 10 s.
    kubelet_sync_frequency_s: int = Field(default=10, ge=1, le=300)

    @property
    def node_ip(self) -> str:
        """The bridge's address: node IP, API server bind address, pods' gateway."""
        return str(next(ipaddress.ip_network(self.pod_cidr).hosts()))

    @property
    def bridge_prefix(self) -> int:
        return ipaddress.ip_network(self.pod_cidr).prefixlen

    @property
    def cluster_dns_ip(self) -> str:
        """The kubelet's clusterDNS and CoreDNS's Service IP: the tenth address of the service range."""
        return str(ipaddress.ip_network(self.service_cidr).network_address + 10)

    def with_port_offset(self, offset: int) -> K8sClusterSettings:
        """The same settings with every port moved by ``offset`` (tests run beside other clusters)."""
        ports = ("apiserver_port", "kubelet_port", "kubelet_healthz_port", "kube_proxy_metrics_port",
                 "kube_proxy_healthz_port")
        return self.model_copy(update={name: getattr(self, name) + offset for name in ports})
