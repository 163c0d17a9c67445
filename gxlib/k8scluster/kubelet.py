"""The kubelet of the one node: its configuration (cgroupfs on this host's cgroup v1, swap allowed, the API
server's client certificate trusted for exec/logs, everything under the state dir) and how it is started."""

from __future__ import annotations

from typing import Any

import yaml

from gxlib.k8scluster.layout import ClusterLayout
from gxlib.k8scluster.settings import K8sClusterSettings


def render_config(settings: K8sClusterSettings, layout: ClusterLayout) -> dict[str, Any]:
    """The KubeletConfiguration (kubelet.config.k8s.io/v1beta1)."""
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": settings.node_ip,
        "port": settings.kubelet_port,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": settings.kubelet_healthz_port,
        "containerRuntimeEndpoint": f"unix://{layout.containerd_socket}",
        # This host has cgroup v1 and no systemd; 1.36 refuses cgroup v1 unless told otherwise.
        "cgroupDriver": "cgroupfs",
        "failCgroupV1": False,
        "failSwapOn": False,
        "clusterDNS": [settings.cluster_dns_ip],
        "clusterDomain": "cluster.local",
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(layout.ca_cert)},
        },
        "authorization": {"mode": "Webhook"},
        "podLogsDir": str(layout.root / "pod-logs"),
        # A developer's disk is often fuller than the defaults allow; evict only when it is really full.
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%",
                         "nodefs.inodesFree": "1%"},
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "serializeImagePulls": False,
        "syncFrequency": f"{settings.kubelet_sync_frequency_s}s",
        "registerNode": True,
    }


def command(kubelet: str, settings: K8sClusterSettings, layout: ClusterLayout) -> list[str]:
    return [
        kubelet, "--config", str(layout.kubelet_config), "--kubeconfig", str(layout.kubeconfig),
        "--root-dir", str(layout.kubelet_dir), "--cert-dir", str(layout.kubelet_dir / "pki"),
        "--hostname-override", settings.node_name, "--node-ip", settings.node_ip, "--v", "1",
        # cAdvisor's containerd client (container stats) does not read containerRuntimeEndpoint.
        "--containerd", str(layout.containerd_socket),
    ]


def write_config(settings: K8sClusterSettings, layout: ClusterLayout) -> None:
    layout.kubelet_config.write_text(yaml.safe_dump(render_config(settings, layout), sort_keys=False))
