"""containerd (Debian's 1.6) as the node's container runtime: its configuration, the CNI network it hands pods,
starting it, importing images into its ``k8s.io`` namespace, and stopping every container it runs.

Limits of containerd 1.6 with Kubernetes 1.36 (1.36 supports containerd 2.x; 1.6 still serves CRI v1, and
pods, exec, logs and probes work; the integration test covers them): the kubelet logs "RuntimeConfig from
runtime service failed … Unimplemented" and "CRI implementation should be updated to support RuntimeConfig.
Falling back to using cgroupDriver from kubelet config", so ``cgroupDriver`` is set explicitly. Features that
need a newer CRI than 1.6 serves are not available (none is used here; none was tried). Root here lacks
CAP_SYS_RESOURCE, so runc cannot raise a container's oom_score_adj: ``restrict_oom_score_adj``.
Everything containerd keeps (content, snapshots, runc state, pod network namespaces) lives in the state dir.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from gxlib.k8scluster.errors import ClusterError, log_tail
from gxlib.k8scluster.layout import ClusterLayout
from gxlib.k8scluster.settings import K8sClusterSettings
from gxlib.progress import Progress

NAMESPACE = "k8s.io"
NETWORK_NAME = "gx-pods"


def render_config(settings: K8sClusterSettings, layout: ClusterLayout, sandbox_image: str, runc: str) -> str:
    """containerd's config.toml (version 2, containerd 1.6)."""
    base = layout.containerd_dir
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    return f"""version = 2
root = "{base / 'root'}"
state = "{base / 'state'}"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
                    "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs"]

[grpc]
  address = "{layout.containerd_socket}"

[plugins."io.containerd.internal.v1.opt"]
  path = "{base / 'opt'}"

[{cri}]
  sandbox_image = "{sandbox_image}"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_selinux = false
  stream_server_address = "127.0.0.1"
  [{cri}.cni]
    bin_dir = "{settings.cni_bin_dir}"
    conf_dir = "{layout.cni_conf_dir}"
  [{cri}.containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [{cri}.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [{cri}.containerd.runtimes.runc.options]
        BinaryName = "{runc}"
        Root = "{base / 'runc'}"
        SystemdCgroup = false
"""


def render_cni_config(settings: K8sClusterSettings, layout: ClusterLayout) -> dict[str, object]:
    """The pod network: the pre-created bridge as the pods' gateway, addresses from host-local IPAM (its state
    in the state dir), the node's addresses reachable; no masquerade, since pods need nothing off the node."""
    return {
        "cniVersion": "1.0.0",
        "name": NETWORK_NAME,
        "plugins": [
            {
                "type": "bridge", "bridge": settings.bridge, "isGateway": True, "ipMasq": False,
                "hairpinMode": True,
                "ipam": {"type": "host-local", "dataDir": str(layout.root / "cni" / "ipam"),
                         "ranges": [[{"subnet": settings.pod_cidr, "gateway": settings.node_ip}]],
                         "routes": [{"dst": "0.0.0.0/0"}]},
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def write_configs(settings: K8sClusterSettings, layout: ClusterLayout, sandbox_image: str, runc: str) -> None:
    layout.containerd_dir.mkdir(parents=True, exist_ok=True)
    layout.containerd_config.write_text(render_config(settings, layout, sandbox_image, runc))
    layout.cni_conf_dir.mkdir(parents=True, exist_ok=True)
    (layout.cni_conf_dir / "10-gx-pods.conflist").write_text(
        json.dumps(render_cni_config(settings, layout), indent=2))


def ctr(settings: K8sClusterSettings, layout: ClusterLayout, *args: str, timeout_s: float = 120.0
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([settings.ctr_binary, "--address", str(layout.containerd_socket), "-n", NAMESPACE, *args],
                          capture_output=True, text=True, check=False, timeout=timeout_s)


def wait_ready(settings: K8sClusterSettings, layout: ClusterLayout, popen: subprocess.Popen[bytes],
               progress: Progress, timeout_s: float = 60.0) -> None:
    log = layout.log("containerd")

    def probe() -> tuple[bool, str | None]:
        if popen.poll() is not None:
            raise ClusterError("containerd", f"exited with {popen.returncode} while starting", log_file=log,
                               log_tail=log_tail(log))
        if not layout.containerd_socket.exists():
            return False, "no socket yet"
        proc = ctr(settings, layout, "version", timeout_s=10)
        return proc.returncode == 0, (proc.stderr.strip().splitlines() or ["answering"])[-1]

    try:
        progress.wait_until(f"containerd on {layout.containerd_socket}", probe, timeout_s=timeout_s)
    except ClusterError:
        raise
    except Exception as exc:
        raise ClusterError("containerd", str(exc), log_file=log, log_tail=log_tail(log)) from exc


def image_names(settings: K8sClusterSettings, layout: ClusterLayout) -> list[str]:
    """References of the images in the k8s.io namespace (those the kubelet sees)."""
    proc = ctr(settings, layout, "images", "ls", "-q", timeout_s=30)
    return sorted(line.strip() for line in proc.stdout.splitlines() if line.strip()) if proc.returncode == 0 else []


def import_image(settings: K8sClusterSettings, layout: ClusterLayout, archive: Path, reference: str) -> bool:
    """Import an OCI archive (unless ``reference`` is already there); True when it was imported now. The
    image is unpacked for the overlayfs snapshotter so the first pod does not wait for it."""
    if reference in image_names(settings, layout):
        return False
    proc = ctr(settings, layout, "images", "import", "--snapshotter", "overlayfs", str(archive), timeout_s=300)
    if proc.returncode != 0 or reference not in image_names(settings, layout):
        raise ClusterError("containerd", f"importing {archive} as {reference} failed: "
                           f"{(proc.stderr or proc.stdout).strip()}", log_file=layout.log("containerd"),
                           hint="the archive must name the image (org.opencontainers.image.ref.name / a full "
                           "reference with a non-latest tag)")
    return True


def kill_all_tasks(settings: K8sClusterSettings, layout: ClusterLayout, timeout_s: float = 20.0) -> list[str]:
    """SIGKILL every container task in k8s.io and delete it; the container IDs handled."""
    proc = ctr(settings, layout, "tasks", "ls", "-q", timeout_s=30)
    ids = [line.strip() for line in proc.stdout.splitlines() if line.strip()] if proc.returncode == 0 else []
    for task in ids:
        ctr(settings, layout, "tasks", "kill", "-a", "-s", "SIGKILL", task, timeout_s=10)
    deadline = time.monotonic() + timeout_s
    for task in ids:
        while time.monotonic() < deadline:
            proc = ctr(settings, layout, "tasks", "delete", "--force", task, timeout_s=10)
            if proc.returncode == 0 or "not found" in proc.stderr:
                break
            time.sleep(0.2)
    return ids
