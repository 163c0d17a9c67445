"""The node's network devices: the pod bridge (created before anything starts, its address is the node IP and the
API server's bind address) and the veths the bridge CNI plugin attaches to it."""

from __future__ import annotations

import json
import subprocess

from gxlib.k8scluster.errors import ClusterError


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise ClusterError("network", f"`ip {' '.join(args)}` failed: {proc.stderr.strip()}")
    return proc


def link_names() -> list[str]:
    """Every network device of the host's network namespace."""
    proc = _ip("-j", "link", "show")
    return sorted(str(link["ifname"]) for link in json.loads(proc.stdout or "[]"))


def bridge_ports(bridge: str) -> list[str]:
    """The devices attached to ``bridge`` (the pods' host-side veths)."""
    proc = _ip("-j", "link", "show", "master", bridge, check=False)
    if proc.returncode != 0:
        return []
    return sorted(str(link["ifname"]) for link in json.loads(proc.stdout or "[]"))


def addresses(device: str) -> list[str]:
    proc = _ip("-j", "addr", "show", "dev", device, check=False)
    if proc.returncode != 0:
        return []
    return [f"{a['local']}/{a['prefixlen']}" for link in json.loads(proc.stdout or "[]")
            for a in link.get("addr_info", [])]


def ensure_bridge(bridge: str, address: str, prefix: int) -> bool:
    """Create ``bridge`` with ``address/prefix`` and bring it up; True when it had to be created."""
    created = bridge not in link_names()
    if created:
        _ip("link", "add", "name", bridge, "type", "bridge")
    if f"{address}/{prefix}" not in addresses(bridge):
        _ip("addr", "add", f"{address}/{prefix}", "dev", bridge)
    _ip("link", "set", bridge, "up")
    return created


def remove_bridge(bridge: str, *, keep_bridge: bool = False) -> list[str]:
    """Delete the veths attached to ``bridge`` and (unless ``keep_bridge``) the bridge itself; the devices
    deleted."""
    removed: list[str] = []
    for port in bridge_ports(bridge):
        if _ip("link", "del", port, check=False).returncode == 0:
            removed.append(port)
    if not keep_bridge and bridge in link_names():
        _ip("link", "del", bridge)
        removed.append(bridge)
    return removed
