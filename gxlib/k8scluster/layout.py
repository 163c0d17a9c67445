"""The cluster's state directory: one place for its configuration, data, logs and pid files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ClusterLayout:
    """Paths under ``root`` (the state directory). ``down`` removes the whole directory."""

    root: Path

    @property
    def control_plane_dir(self) -> Path:
        return self.root / "control-plane"

    @property
    def kubeconfig(self) -> Path:
        """The admin kubeconfig (the control plane writes it)."""
        return self.control_plane_dir / "kubeconfig.yaml"

    @property
    def ca_cert(self) -> Path:
        return self.control_plane_dir / "pki" / "ca.crt"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    def log(self, component: str) -> Path:
        return self.logs_dir / f"{component}.log"

    @property
    def pid_dir(self) -> Path:
        return self.root / "pids"

    @property
    def host_settings_file(self) -> Path:
        """The host's settings as they were before the first ``up`` (sysctls, network devices, iptables chains)."""
        return self.root / "host-settings.json"

    @property
    def containerd_dir(self) -> Path:
        return self.root / "containerd"

    @property
    def containerd_config(self) -> Path:
        return self.containerd_dir / "config.toml"

    @property
    def containerd_socket(self) -> Path:
        return self.containerd_dir / "containerd.sock"

    @property
    def cni_conf_dir(self) -> Path:
        return self.root / "cni" / "net.d"

    @property
    def kubelet_dir(self) -> Path:
        """The kubelet's --root-dir (pods' volumes are mounted below it)."""
        return self.root / "kubelet"

    @property
    def kubelet_config(self) -> Path:
        return self.root / "kubelet-config.yaml"

    @property
    def kube_proxy_config(self) -> Path:
        return self.root / "kube-proxy-config.yaml"

    @property
    def addons_dir(self) -> Path:
        return self.root / "addons"
