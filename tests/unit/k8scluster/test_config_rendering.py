"""The configuration the cluster writes for containerd, the CNI plugins, the kubelet, kube-proxy and CoreDNS."""

from __future__ import annotations

import tomllib
from pathlib import Path

from gxlib.k8scluster import addons, containerd, kubelet, kubeproxy
from gxlib.k8scluster.layout import ClusterLayout
from gxlib.k8scluster.settings import K8sClusterSettings


def _setup(tmp_path: Path) -> tuple[K8sClusterSettings, ClusterLayout]:
    settings = K8sClusterSettings(state_dir=tmp_path / "state")
    return settings, ClusterLayout(settings.state_dir)


def test_the_node_ip_is_the_bridge_address_and_dns_the_tenth_service_address(tmp_path: Path) -> None:
    settings, _ = _setup(tmp_path)
    assert (settings.node_ip, settings.bridge_prefix, settings.cluster_dns_ip) == ("10.244.0.1", 24, "10.96.0.10")
    moved = settings.with_port_offset(1000)
    assert (moved.apiserver_port, moved.kubelet_port, moved.kube_proxy_healthz_port) == (7443, 11250, 11256)


def test_containerd_keeps_everything_in_the_state_dir_and_does_not_raise_oom_scores(tmp_path: Path) -> None:
    settings, layout = _setup(tmp_path)
    rendered = containerd.render_config(settings, layout, "registry.gx.local/gx/pause:abc", "/usr/sbin/runc")
    config = tomllib.loads(rendered)
    cri = config["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["restrict_oom_score_adj"] is True  # root here lacks CAP_SYS_RESOURCE
    assert cri["netns_mounts_under_state_dir"] is True
    assert cri["sandbox_image"] == "registry.gx.local/gx/pause:abc"
    assert cri["cni"]["conf_dir"] == str(layout.cni_conf_dir)
    assert cri["containerd"]["runtimes"]["runc"]["options"]["SystemdCgroup"] is False
    assert config["grpc"]["address"] == str(layout.containerd_socket)
    assert all(str(Path(config[key]).parent) == str(layout.containerd_dir) for key in ("root", "state"))


def test_pods_get_addresses_from_the_bridge_subnet_with_the_node_as_gateway(tmp_path: Path) -> None:
    settings, layout = _setup(tmp_path)
    bridge = containerd.render_cni_config(settings, layout)["plugins"][0]  # type: ignore[index]
    assert bridge["bridge"] == "gxbr0" and bridge["isGateway"] is True
    assert bridge["ipam"]["ranges"] == [[{"subnet": "10.244.0.0/24", "gateway": "10.244.0.1"}]]
    assert bridge["ipam"]["dataDir"].startswith(str(layout.root))


def test_the_kubelet_runs_on_cgroup_v1_with_swap_and_trusts_the_apiservers_client_certificate(tmp_path: Path) -> None:
    settings, layout = _setup(tmp_path)
    config = kubelet.render_config(settings, layout)
    assert (config["cgroupDriver"], config["failCgroupV1"], config["failSwapOn"]) == ("cgroupfs", False, False)
    assert config["authentication"]["x509"]["clientCAFile"] == str(layout.ca_cert)
    assert config["authentication"]["anonymous"]["enabled"] is False
    assert config["clusterDNS"] == [settings.cluster_dns_ip]
    assert config["address"] == settings.node_ip and config["readOnlyPort"] == 0
    assert config["containerRuntimeEndpoint"] == f"unix://{layout.containerd_socket}"
    assert config["syncFrequency"] == "10s"  # a changed ConfigMap is in the pod's files within about 10 s
    command = kubelet.command("/bin/kubelet", settings, layout)
    assert command[command.index("--root-dir") + 1] == str(layout.kubelet_dir)
    assert command[command.index("--node-ip") + 1] == settings.node_ip


def test_kube_proxy_uses_iptables_and_leaves_conntrack_and_route_localnet_alone(tmp_path: Path) -> None:
    settings, layout = _setup(tmp_path)
    config = kubeproxy.render_config(settings, layout)
    assert config["mode"] == "iptables"
    assert config["conntrack"] == {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s",
                                   "tcpCloseWaitTimeout": "0s"}
    assert config["iptables"]["localhostNodePorts"] is False


def test_coredns_serves_at_the_kubelets_cluster_dns_address_from_its_configmap(tmp_path: Path) -> None:
    settings, _ = _setup(tmp_path)
    objects = {(o["kind"], o["metadata"]["name"]): o for o in addons.coredns_objects(settings, "registry.gx.local/x:1")}
    assert objects[("Service", "kube-dns")]["spec"]["clusterIP"] == settings.cluster_dns_ip
    assert "kubernetes cluster.local" in objects[("ConfigMap", "coredns")]["data"]["Corefile"]
    container = objects[("Deployment", "coredns")]["spec"]["template"]["spec"]["containers"][0]
    assert (container["image"], container["imagePullPolicy"]) == ("registry.gx.local/x:1", "Never")
    assert container["readinessProbe"]["httpGet"]["port"] == 8181
