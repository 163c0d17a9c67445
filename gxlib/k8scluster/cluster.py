"""``gx k8s up|status|down``: the single-node cluster as a whole.

``up`` checks the host, builds or finds the binaries and images, records the host settings it will change,
creates the pod bridge, then starts containerd, the control plane (gxlib.k8sbuild.controlplane, bound to the
bridge), the kubelet and kube-proxy, and applies CoreDNS, waiting for each with progress. A second ``up`` finds
it running and changes nothing. ``down`` stops every process, container and shim, unmounts what is mounted
under the state dir, removes the kubelet's cgroups, the bridge and its veths, the iptables chains added since
``up`` and puts every recorded sysctl back; then it removes the state dir.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gxlib.k8sbuild.binaries import (
    ETCD,
    KUBE_APISERVER,
    KUBE_CONTROLLER_MANAGER,
    KUBE_PROXY,
    KUBE_SCHEDULER,
    KUBECTL,
    KUBELET,
    K8sInstall,
    ensure_k8s_tools,
    k8s_install,
)
from gxlib.k8sbuild.controlplane import LocalControlPlane
from gxlib.k8sbuild.settings import K8sBuildSettings
from gxlib.k8scluster import (
    addons,
    cgroups,
    containerd,
    hostsettings,
    iptables,
    kubelet,
    kubeproxy,
    mounts,
    network,
    processes,
)
from gxlib.k8scluster.errors import ClusterError, HostNotSupported, log_tail
from gxlib.k8scluster.images import NodeImage, node_images
from gxlib.k8scluster.kubectl import Kubectl
from gxlib.k8scluster.layout import ClusterLayout
from gxlib.k8scluster.settings import K8sClusterSettings
from gxlib.k8scluster.status import ClusterStatus, ProcessState, parse_nodes, parse_pods
from gxlib.k8simages.settings import ImageSettings
from gxlib.progress import Progress, WaitTimeout

NODE_BINARIES = (ETCD, KUBE_APISERVER, KUBE_CONTROLLER_MANAGER, KUBE_SCHEDULER, KUBELET, KUBE_PROXY, KUBECTL)
# Stopped in this order: the node first, then the control plane, the runtime last.
STOP_ORDER = ("kube-proxy", "kubelet", "kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd",
              "containerd")
CNI_PLUGINS = ("bridge", "host-local", "loopback", "portmap")


@dataclass
class UpResult:
    already_running: bool
    seconds: float
    status: ClusterStatus


@dataclass
class DownReport:
    stopped: list[str] = field(default_factory=list)
    containers: list[str] = field(default_factory=list)
    unmounted: list[str] = field(default_factory=list)
    cgroups: list[str] = field(default_factory=list)
    devices: list[str] = field(default_factory=list)
    iptables_chains: list[str] = field(default_factory=list)
    sysctls: list[str] = field(default_factory=list)
    state_dir_removed: bool = False

    def to_json(self) -> dict[str, object]:
        return dict(self.__dict__)


def check_host(settings: K8sClusterSettings) -> None:
    """Raise HostNotSupported when this host cannot run the node (nothing is changed before this passes)."""
    if os.geteuid() != 0:
        raise HostNotSupported("not running as root (containerd, the kubelet and the bridge need it)",
                               hint="run `gx k8s up` as root")
    root = Path("/sys/fs/cgroup")
    if not ((root / "memory").is_dir() or (root / "cgroup.controllers").is_file()):
        raise HostNotSupported("no memory cgroup under /sys/fs/cgroup")
    missing = [tool for tool in (settings.containerd_binary, settings.ctr_binary, settings.runc_binary, "ip",
                                 "iptables", "iptables-save", "umount") if shutil.which(tool) is None]
    missing += [str(settings.cni_bin_dir / p) for p in CNI_PLUGINS if not (settings.cni_bin_dir / p).exists()]
    if missing:
        raise HostNotSupported(f"missing {', '.join(missing)}",
                               hint="install the packages in scripts/system-packages.txt (`make system-packages`)")


class NodeCluster:
    """One single-node cluster, its state in ``settings.state_dir``."""

    def __init__(self, settings: K8sClusterSettings | None = None, build: K8sBuildSettings | None = None,
                 images: ImageSettings | None = None, progress: Progress | None = None) -> None:
        self.settings = settings or K8sClusterSettings()
        self.build = build or K8sBuildSettings()
        self.image_settings = images or ImageSettings()
        self.progress = progress or Progress()
        self.layout = ClusterLayout(self.settings.state_dir)

    # --- up ------------------------------------------------------------------------------------------------
    def up(self) -> UpResult:
        started = time.monotonic()
        check_host(self.settings)
        current = self.status(with_api=True)
        if current.running:
            self.progress.info(f"the cluster is already running ({self.layout.root}); nothing to do")
            return UpResult(True, time.monotonic() - started, current)
        if any(p.running for p in current.processes):
            raise ClusterError("cluster", f"partly running in {self.layout.root} (stopped: "
                               f"{', '.join(current.stopped_processes) or 'the API server does not answer'})",
                               hint="`gx k8s down` puts the host back; then `gx k8s up`")
        if self.layout.root.exists():
            # A cluster that stopped (reboot, killed processes) left its state: start from a clean host, not
            # from an etcd and PKI that no running process matches.
            self.progress.info(f"a stopped cluster's state is in {self.layout.root}; cleaning it up first")
            self.down()
        self.progress.info(f"starting a single-node Kubernetes cluster in {self.layout.root}")
        install = ensure_k8s_tools(self.build, NODE_BINARIES, progress=self.progress)
        node_images = self._images()
        self._record_host()
        hostsettings.apply_required()
        with self.progress.task(f"creating bridge {self.settings.bridge} ({self.settings.node_ip}/"
                                f"{self.settings.bridge_prefix})"):
            network.ensure_bridge(self.settings.bridge, self.settings.node_ip, self.settings.bridge_prefix)
        self._start_containerd(node_images)
        self._start_control_plane(install)
        kubectl = Kubectl(install.binary(KUBECTL), self.layout.kubeconfig)
        self._start_kubelet(install, kubectl)
        self._start_kube_proxy(install)
        self._apply_addons(kubectl, node_images)
        status = self.status(with_api=True)
        return UpResult(False, time.monotonic() - started, status)

    def _images(self) -> list[NodeImage]:
        with self.progress.task("finding or building the node images (pause, CoreDNS)"):
            return node_images(self.image_settings, self.progress)

    def _record_host(self) -> None:
        record = self.layout.host_settings_file
        if record.exists():
            return
        chains = {family: iptables.chain_names(iptables.snapshot(family)) for family in iptables.FAMILIES}
        if "KUBE-SERVICES" in chains.get("iptables", {}).get("nat", []):
            # kube-proxy's chains are global: two nodes on one host would program the same ones.
            raise ClusterError("host", "kube-proxy chains (nat KUBE-SERVICES) are already present: another node runs "
                               "on this host, or one was not taken down",
                               hint="`gx k8s down` with that cluster's GX_K8S_CLUSTER_STATE_DIR first")
        self.layout.root.mkdir(parents=True, exist_ok=True)
        hostsettings.record_originals(record)
        data = json.loads(record.read_text())
        data["links"] = network.link_names()
        data["iptables"] = chains
        data["nft_tables"] = iptables.nft_tables()
        record.write_text(json.dumps(data, indent=2, sort_keys=True))

    def _start_containerd(self, images: list[NodeImage]) -> None:
        sandbox = next(image.reference for image in images if image.role == "sandbox")
        runc = shutil.which(self.settings.runc_binary) or self.settings.runc_binary
        containerd.write_configs(self.settings, self.layout, sandbox, runc)
        binary = shutil.which(self.settings.containerd_binary) or self.settings.containerd_binary
        popen = processes.spawn("containerd", [binary, "--config", str(self.layout.containerd_config)],
                                pid_dir=self.layout.pid_dir, log_file=self.layout.log("containerd"),
                                cwd=self.layout.root)
        containerd.wait_ready(self.settings, self.layout, popen, self.progress)
        for image in images:
            with self.progress.task(f"importing {image.reference} into containerd ({containerd.NAMESPACE})"):
                containerd.import_image(self.settings, self.layout, image.archive, image.reference)

    def _start_control_plane(self, install: K8sInstall) -> None:
        plane = LocalControlPlane(install, self.layout.control_plane_dir, progress=self.progress, nodes=0,
                                  apiserver_port=self.settings.apiserver_port, host=self.settings.node_ip,
                                  pki_valid_days=365, pid_dir=self.layout.pid_dir)
        plane.start(stop_on_failure=False)  # on failure the processes stay for `down`, with their logs
        self.layout.logs_dir.mkdir(parents=True, exist_ok=True)
        for process in plane.processes:
            link = self.layout.log(process.name)
            if not link.exists():
                link.symlink_to(process.log_file)

    def _start_kubelet(self, install: K8sInstall, kubectl: Kubectl) -> None:
        kubelet.write_config(self.settings, self.layout)
        self.layout.kubelet_dir.mkdir(parents=True, exist_ok=True)
        popen = processes.spawn("kubelet", kubelet.command(str(install.binary(KUBELET)), self.settings, self.layout),
                                pid_dir=self.layout.pid_dir, log_file=self.layout.log("kubelet"),
                                cwd=self.layout.root)
        log = self.layout.log("kubelet")

        def node_ready() -> tuple[bool, str | None]:
            if popen.poll() is not None:
                raise ClusterError("kubelet", f"exited with {popen.returncode}", log_file=log, log_tail=log_tail(log))
            nodes = parse_nodes(kubectl.get_json("nodes") or {})
            node = next((n for n in nodes if n.name == self.settings.node_name), None)
            return (node is not None and node.ready), ("not registered" if node is None else
                                                       f"Ready={node.ready}")

        self._wait(f"node {self.settings.node_name} Ready", node_ready, "kubelet", timeout_s=180)

    def _start_kube_proxy(self, install: K8sInstall) -> None:
        kubeproxy.write_config(self.settings, self.layout)
        popen = processes.spawn("kube-proxy", kubeproxy.command(str(install.binary(KUBE_PROXY)), self.layout),
                                pid_dir=self.layout.pid_dir, log_file=self.layout.log("kube-proxy"),
                                cwd=self.layout.root)
        log = self.layout.log("kube-proxy")
        url = f"http://127.0.0.1:{self.settings.kube_proxy_healthz_port}/healthz"

        def healthy() -> tuple[bool, str | None]:
            if popen.poll() is not None:
                raise ClusterError("kube-proxy", f"exited with {popen.returncode}", log_file=log,
                                   log_tail=log_tail(log))
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    return response.status == 200, f"HTTP {response.status}"
            except urllib.error.HTTPError as exc:
                return False, f"HTTP {exc.code}"
            except OSError as exc:
                return False, str(exc)

        self._wait("kube-proxy healthy", healthy, "kube-proxy", timeout_s=90)

    def _apply_addons(self, kubectl: Kubectl, images: list[NodeImage]) -> None:
        dns = next(image for image in images if image.role == "dns")
        with self.progress.task("applying CoreDNS"):
            kubectl.apply(addons.coredns_objects(self.settings, dns.reference))

        def available() -> tuple[bool, str | None]:
            deployment = kubectl.get_json("deployment", addons.COREDNS, "-n", addons.NAMESPACE) or {}
            ready = int(deployment.get("status", {}).get("readyReplicas", 0) or 0)
            return ready >= 1, f"{ready} ready"

        self._wait("CoreDNS Ready", available, "coredns", timeout_s=180)

    def _wait(self, what: str, probe: Callable[[], tuple[bool, str | None]], component: str, *,
              timeout_s: float) -> None:
        try:
            self.progress.wait_until(what, probe, timeout_s=timeout_s)
        except WaitTimeout as exc:
            log = self.layout.log(component)
            raise ClusterError(component, str(exc), log_file=log, log_tail=log_tail(log),
                               hint="`gx k8s status` shows what runs; `gx k8s down` puts the host back") from exc

    # --- status --------------------------------------------------------------------------------------------
    def status(self, *, with_api: bool = True) -> ClusterStatus:
        records = processes.read_records(self.layout.pid_dir)
        status = ClusterStatus(state_dir=str(self.layout.root),
                               processes=[ProcessState(name=r.name, pid=r.pid, running=r.alive()) for r in records])
        install = k8s_install(self.build)
        status.binaries = {tool.name: str(install.binary(tool)) for tool in NODE_BINARIES if install.has(tool)}
        if self.layout.kubeconfig.exists():
            status.kubeconfig = str(self.layout.kubeconfig)
            status.server = f"https://{self.settings.node_ip}:{self.settings.apiserver_port}"
        if with_api and install.has(KUBECTL) and self.layout.kubeconfig.exists() and \
                any(p.name == "kube-apiserver" and p.running for p in status.processes):
            kubectl = Kubectl(install.binary(KUBECTL), self.layout.kubeconfig)
            node_list = kubectl.get_json("nodes")
            status.api_answers = node_list is not None
            status.nodes = parse_nodes(node_list or {})
            status.system_pods = parse_pods(kubectl.get_json("pods", "-n", "kube-system") or {})
        if any(p.name == "containerd" and p.running for p in status.processes):
            status.images = containerd.image_names(self.settings, self.layout)
        return status

    # --- down ----------------------------------------------------------------------------------------------
    def down(self) -> DownReport:
        report = DownReport()
        records = {r.name: r for r in processes.read_records(self.layout.pid_dir)}
        for name in STOP_ORDER[:2]:
            if name in records and processes.stop(records[name]):
                report.stopped.append(name)
        containerd_record = records.get("containerd")
        if containerd_record is not None and containerd_record.alive():
            with self.progress.task("stopping the pods' containers"):
                report.containers = containerd.kill_all_tasks(self.settings, self.layout)
        for name in STOP_ORDER[2:]:
            if name in records and processes.stop(records[name]):
                report.stopped.append(name)
        for name, record in records.items():  # anything else recorded
            if name not in STOP_ORDER and processes.stop(record):
                report.stopped.append(name)
        # Shims of our containerd outlive it when a task could not be deleted.
        for pid in processes.pids_with_argument(str(self.layout.containerd_socket)):
            if processes.stop(processes.ProcessRecord("containerd-shim", pid, None), timeout_s=5):
                report.stopped.append(f"containerd-shim[{pid}]")
        report.cgroups = cgroups.remove_kubelet_cgroups()
        report.unmounted = mounts.unmount_under(self.layout.root)
        record_file = self.layout.host_settings_file
        data = json.loads(record_file.read_text()) if record_file.exists() else {}
        # A bridge that was there before `up` (or with no record of `up` at all) is not ours: only the pods' veths
        # are taken off it.
        report.devices = network.remove_bridge(self.settings.bridge,
                                               keep_bridge=not data or self.settings.bridge in data.get("links", []))
        if data:
            report.iptables_chains = iptables.remove_added(data.get("iptables", {}))
            if "nft_tables" in data:
                report.iptables_chains += [f"nft table {t}" for t in iptables.remove_new_tables(data["nft_tables"])]
            restored = hostsettings.restore(hostsettings.load_originals(record_file))
            report.sysctls = [f"{r.name}: {r.changed_to} → {r.original}" for r in restored]
        if self.layout.root.exists():
            if mounts.mounts_under(self.layout.root):
                raise ClusterError("down", f"mounts remain under {self.layout.root}; the state dir is kept",
                                   hint="find them with `grep " + str(self.layout.root) + " /proc/self/mountinfo`")
            shutil.rmtree(self.layout.root)
            report.state_dir_removed = True
        return report
