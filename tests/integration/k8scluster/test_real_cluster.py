"""A real single-node cluster (``gx k8s up``): containerd, the control plane, a kubelet, kube-proxy and CoreDNS
on this host, once per module, and ``down`` leaving the host as it found it.

Skipped only when the host cannot run a node (not root, no cgroups). Everything it needs is built through the same
caches as ``gx k8s up`` (binaries in ~/.cache/gxlib/k8s-<version>, images in ~/.cache/gxlib/images), with
progress. Ports move by GX_TEST_PORT_OFFSET; the test cluster has its own bridge, pod subnet and state dir.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gxlib.k8sbuild.binaries import KUBECTL, ensure_k8s_tools
from gxlib.k8sbuild.settings import K8sBuildSettings
from gxlib.k8scluster import containerd, hostsettings, iptables, network
from gxlib.k8scluster.cgroups import kubelet_cgroup_dirs
from gxlib.k8scluster.cluster import NodeCluster, UpResult
from gxlib.k8scluster.kubectl import Kubectl
from gxlib.k8scluster.mounts import MOUNTINFO, mount_points
from gxlib.k8scluster.processes import pids_with_argument
from gxlib.k8scluster.settings import K8sClusterSettings
from gxlib.k8simages.settings import ImageSettings
from gxlib.k8simages.store import BuiltImage, ImageStore
from gxlib.progress import Progress
from tests.integration.k8scluster.busybox_image import BusyboxRecipe
from tests.integration.k8scluster.host_lock import one_node_on_this_host, skip_unless_this_host_runs_a_node

PORT_OFFSET = int(os.environ.get("GX_TEST_PORT_OFFSET", "0"))
TEST_NAMESPACE = "gx-cluster-test"


_BUILT_IN_CHAINS = frozenset({"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"})


def _own_chains(tables: dict[str, list[str]]) -> dict[str, list[str]]:
    """The chains someone created, per table. A table's built-in chains appear when the kernel first loads it (on a
    fresh host, the first cluster's kube-proxy does) and can never be removed, so they are not a leftover."""
    own = {table: [c for c in chains if c not in _BUILT_IN_CHAINS] for table, chains in tables.items()}
    return {table: chains for table, chains in own.items() if chains}


@dataclass(frozen=True)
class HostSnapshot:
    """What ``down`` must leave as it was."""

    links: list[str]
    iptables_chains: dict[str, dict[str, list[str]]]
    nft_tables: list[str]
    sysctls: dict[str, str | None]
    mounts: list[str]
    kubelet_cgroups: list[str]

    @staticmethod
    def take() -> HostSnapshot:
        return HostSnapshot(
            links=network.link_names(),
            iptables_chains={f: _own_chains(iptables.chain_names(iptables.snapshot(f))) for f in iptables.FAMILIES},
            nft_tables=sorted(iptables.nft_tables()),
            sysctls=hostsettings.read_sysctls(),
            mounts=mount_points(MOUNTINFO.read_text()),
            kubelet_cgroups=[str(p) for p in kubelet_cgroup_dirs()],
        )

    def assert_restored(self, before: HostSnapshot, state_dir: Path) -> None:
        """This snapshot (taken after ``down``) shows the host as ``before`` (taken before ``up``) did."""
        new_mounts = [m for m in set(self.mounts) - set(before.mounts)
                      if str(state_dir) in m or "kubelet" in m or "/netns/" in m]
        assert new_mounts == []
        assert self.links == before.links
        assert self.iptables_chains == before.iptables_chains
        assert self.nft_tables == before.nft_tables
        assert self.sysctls == before.sysctls
        assert self.kubelet_cgroups == before.kubelet_cgroups


@dataclass
class RunningCluster:
    cluster: NodeCluster
    first_up: UpResult
    before: HostSnapshot
    kubectl: Kubectl
    workload_image: BuiltImage

    def run(self, *args: str, timeout_s: float = 60) -> str:
        proc = self.kubectl.run(*args, timeout_s=timeout_s)
        assert proc.returncode == 0, f"kubectl {' '.join(args)} failed:\n{proc.stderr}"
        return proc.stdout

    def wait(self, what: str, probe: Callable[[], tuple[bool, str | None]], timeout_s: float = 120) -> None:
        self.cluster.progress.wait_until(what, probe, timeout_s=timeout_s, interval_s=0.5)

    def pod(self, name: str) -> dict[str, Any]:
        return self.kubectl.get_json("pod", name, "-n", TEST_NAMESPACE) or {}


def _settings(state_dir: Path) -> K8sClusterSettings:
    return K8sClusterSettings(state_dir=state_dir, bridge="gxtest0", pod_cidr="10.244.0.0/24",
                              node_name="gx-test-node").with_port_offset(PORT_OFFSET)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCluster]:
    settings = _settings(tmp_path_factory.mktemp("k8scluster") / "state")
    skip_unless_this_host_runs_a_node(settings)
    progress = Progress()
    install = ensure_k8s_tools(K8sBuildSettings(), [KUBECTL], progress=progress)
    workload = ImageStore(ImageSettings().cache_root).ensure(BusyboxRecipe(), progress).image
    with one_node_on_this_host("test_real_cluster"):
        before = HostSnapshot.take()
        node = NodeCluster(settings, progress=progress)
        try:
            first = node.up()
            containerd.import_image(settings, node.layout, workload.archive, workload.reference)
            kubectl = Kubectl(install.binary(KUBECTL), node.layout.kubeconfig)
            yield RunningCluster(node, first, before, kubectl, workload)
        finally:
            node.down()


def _pod(name: str, image: str, command: str, *, labels: dict[str, str] | None = None,
         readiness_port: int | None = None) -> dict[str, Any]:
    container: dict[str, Any] = {"name": name, "image": image, "imagePullPolicy": "Never",
                                 "command": ["/bin/sh", "-c", command]}
    if readiness_port is not None:
        container["readinessProbe"] = {"httpGet": {"path": "/index.html", "port": readiness_port},
                                       "periodSeconds": 1}
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": TEST_NAMESPACE, "labels": labels or {}},
            "spec": {"containers": [container], "terminationGracePeriodSeconds": 1}}


@pytest.fixture(scope="module")
def web(cluster: RunningCluster) -> str:
    """A pod serving HTTP from the locally imported busybox image, and a Service in front of it."""
    image = cluster.workload_image.reference
    cluster.kubectl.apply([
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": TEST_NAMESPACE}},
        _pod("web", image, "echo web-started; exec httpd -f -v -p 8080 -h /www", labels={"app": "web"},
             readiness_port=8080),
        _pod("client", image, "exec sleep 3600"),
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": TEST_NAMESPACE},
         "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}},
    ])

    def ready(name: str) -> Callable[[], tuple[bool, str | None]]:
        def probe() -> tuple[bool, str | None]:
            status = cluster.pod(name).get("status", {})
            ok = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions", []))
            return ok, status.get("phase")
        return probe

    cluster.wait("pod web Ready", ready("web"))
    cluster.wait("pod client Ready", ready("client"))
    return "web"


def test_the_node_is_ready_at_the_bridge_address(cluster: RunningCluster) -> None:
    status = cluster.cluster.status()
    [node] = status.nodes
    assert (node.name, node.ready, node.internal_ip) == ("gx-test-node", True, cluster.cluster.settings.node_ip)
    assert node.container_runtime and node.container_runtime.startswith("containerd://")
    assert status.running and not status.stopped_processes
    assert {"containerd", "etcd", "kube-apiserver", "kubelet", "kube-proxy"} <= {p.name for p in status.processes}


def test_the_running_kubelet_syncs_pods_every_10s(cluster: RunningCluster) -> None:
    # What the kubelet itself reports (configz, through the API server): a changed ConfigMap — an alert rule that
    # runbook 01 applied — is in the pod's files within about 10 s, not the default minute.
    node = cluster.cluster.settings.node_name
    live = json.loads(cluster.run("get", "--raw", f"/api/v1/nodes/{node}/proxy/configz"))["kubeletconfig"]
    assert live["syncFrequency"] == "10s"


def test_a_pod_from_a_locally_imported_image_runs_and_passes_its_readiness_probe(cluster: RunningCluster,
                                                                                  web: str) -> None:
    status = cluster.pod(web)["status"]
    assert status["phase"] == "Running"
    [container] = status["containerStatuses"]
    assert container["ready"] is True and container["image"].endswith(cluster.workload_image.reference)
    assert status["podIP"].startswith("10.244.0.")


def test_exec_and_logs_reach_the_container_through_the_kubelet(cluster: RunningCluster, web: str) -> None:
    assert cluster.run("exec", "-n", TEST_NAMESPACE, web, "--", "cat", "/www/index.html") == "gx cluster test\n"
    assert "web-started" in cluster.run("logs", "-n", TEST_NAMESPACE, web)


def test_a_service_resolves_through_coredns_and_answers_through_kube_proxy(cluster: RunningCluster, web: str) -> None:
    dns_pods = [p for p in cluster.cluster.status().system_pods if p.name.startswith("coredns")]
    assert dns_pods and all(p.ready for p in dns_pods), f"CoreDNS is not running: {dns_pods}"
    name = f"web.{TEST_NAMESPACE}.svc.cluster.local"
    # The pod's resolv.conf names the kubelet's clusterDNS, CoreDNS's Service IP.
    lookup = cluster.run("exec", "-n", TEST_NAMESPACE, "client", "--", "nslookup", name)
    service_ip = cluster.run("get", "service", "web", "-n", TEST_NAMESPACE, "-o", "jsonpath={.spec.clusterIP}")
    assert cluster.cluster.settings.cluster_dns_ip in lookup
    assert f"Address: {service_ip}" in lookup
    # The Service IP exists only in kube-proxy's iptables rules; wget gets the address CoreDNS answered.
    # (`-q` and `-T` make busybox 1.35's wget crash with SIGSEGV, so neither is used.)
    page = cluster.run("exec", "-n", TEST_NAMESPACE, "client", "--", "wget", "-O", "-", f"http://{service_ip}/")
    assert page == "gx cluster test\n"


def test_a_second_up_finds_the_cluster_running_and_changes_nothing(cluster: RunningCluster) -> None:
    pids = {p.name: p.pid for p in cluster.cluster.status().processes}
    again = cluster.cluster.up()
    assert again.already_running
    assert {p.name: p.pid for p in cluster.cluster.status().processes} == pids


def test_down_leaves_no_process_mount_device_chain_cgroup_or_changed_sysctl(cluster: RunningCluster) -> None:
    node = cluster.cluster
    state_dir = node.layout.root
    report = node.down()

    assert "kubelet" in report.stopped and "containerd" in report.stopped
    assert report.state_dir_removed and not state_dir.exists()
    assert pids_with_argument(str(node.layout.containerd_socket)) == []
    assert _pids_mentioning(str(state_dir)) == []
    HostSnapshot.take().assert_restored(cluster.before, state_dir)
    # down is safe to repeat
    assert node.down().stopped == []


def _pids_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found
