"""kube-proxy in iptables mode: Service IPs of the cluster answered on the node. Conntrack limits and localhost
node ports are left as the host has them (fewer host settings to put back)."""

from __future__ import annotations

from typing import Any

import yaml

from gxlib.k8scluster.layout import ClusterLayout
from gxlib.k8scluster.settings import K8sClusterSettings


def render_config(settings: K8sClusterSettings, layout: ClusterLayout) -> dict[str, Any]:
    """The KubeProxyConfiguration (kubeproxy.config.k8s.io/v1alpha1)."""
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(layout.kubeconfig)},
        "mode": "iptables",
        "hostnameOverride": settings.node_name,
        "clusterCIDR": settings.pod_cidr,
        "metricsBindAddress": f"127.0.0.1:{settings.kube_proxy_metrics_port}",
        "healthzBindAddress": f"127.0.0.1:{settings.kube_proxy_healthz_port}",
        "nodePortAddresses": [f"{settings.node_ip}/32"],
        # 0: leave nf_conntrack_max and the TCP timeouts as they are.
        "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
        # Without localhost node ports kube-proxy does not need net.ipv4.conf.all.route_localnet.
        "iptables": {"localhostNodePorts": False, "masqueradeAll": False},
    }


def command(kube_proxy: str, layout: ClusterLayout) -> list[str]:
    return [kube_proxy, "--config", str(layout.kube_proxy_config), "--v", "1"]


def write_config(settings: K8sClusterSettings, layout: ClusterLayout) -> None:
    layout.kube_proxy_config.write_text(yaml.safe_dump(render_config(settings, layout), sort_keys=False))
