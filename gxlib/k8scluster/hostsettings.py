"""The host settings the cluster changes, recorded before the first ``up`` and put back by ``down``.

The kubelet sets kernel.panic, kernel.panic_on_oops, vm.overcommit_memory (and the kernel keyring limits), the
bridge CNI plugin sets net.ipv4.ip_forward, ``up`` itself sets the bridge-netfilter switches kube-proxy needs.
``record_originals`` writes the values as they were (a second ``up`` keeps the first record), ``restore`` writes
back every one that differs and says which.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

PROC_SYS = Path("/proc/sys")
# Everything a component of the cluster may change. A name the kernel does not have is recorded as absent.
SYSCTLS: tuple[str, ...] = (
    "kernel.panic",
    "kernel.panic_on_oops",
    "kernel.keys.root_maxkeys",
    "kernel.keys.root_maxbytes",
    "vm.overcommit_memory",
    "vm.panic_on_oom",
    "net.ipv4.ip_forward",
    "net.ipv4.conf.all.forwarding",
    "net.ipv4.conf.all.route_localnet",
    "net.ipv6.conf.all.forwarding",
    "net.bridge.bridge-nf-call-iptables",
    "net.bridge.bridge-nf-call-ip6tables",
    "net.bridge.bridge-nf-call-arptables",
    "net.netfilter.nf_conntrack_max",
    "net.netfilter.nf_conntrack_tcp_timeout_established",
    "net.netfilter.nf_conntrack_tcp_timeout_close_wait",
)
# What `up` sets before kube-proxy starts: Service traffic between two pods on the bridge must pass iptables.
REQUIRED: dict[str, str] = {
    "net.bridge.bridge-nf-call-iptables": "1",
    "net.bridge.bridge-nf-call-ip6tables": "1",
    "net.ipv4.ip_forward": "1",
}


def sysctl_path(name: str, proc_sys: Path = PROC_SYS) -> Path:
    return proc_sys.joinpath(*name.split("."))


def read_sysctls(names: tuple[str, ...] = SYSCTLS, proc_sys: Path = PROC_SYS) -> dict[str, str | None]:
    """name → current value (whitespace-normalised), None when the kernel has no such setting."""
    values: dict[str, str | None] = {}
    for name in names:
        try:
            values[name] = " ".join(sysctl_path(name, proc_sys).read_text().split())
        except (FileNotFoundError, PermissionError):
            values[name] = None
    return values


def write_sysctl(name: str, value: str, proc_sys: Path = PROC_SYS) -> None:
    sysctl_path(name, proc_sys).write_text(f"{value}\n")


@dataclass(frozen=True)
class Restored:
    """One setting put back: what it was while the cluster ran and what it is again."""

    name: str
    changed_to: str
    original: str


def record_originals(record_file: Path, proc_sys: Path = PROC_SYS) -> dict[str, str | None]:
    """The originals as recorded; written now unless an earlier ``up`` already recorded them (its values are
    the host's own, ours would already be the cluster's)."""
    if record_file.exists():
        return load_originals(record_file)
    originals = read_sysctls(SYSCTLS, proc_sys)
    record_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = record_file.with_suffix(".tmp")
    tmp.write_text(json.dumps({"sysctls": originals}, indent=2, sort_keys=True))
    tmp.replace(record_file)
    return originals


def load_originals(record_file: Path) -> dict[str, str | None]:
    data = json.loads(record_file.read_text())
    sysctls = data.get("sysctls", {}) if isinstance(data, dict) else {}
    return {str(k): (None if v is None else str(v)) for k, v in sysctls.items()}


def apply_required(proc_sys: Path = PROC_SYS) -> None:
    """Set what the node needs (see ``REQUIRED``); settings this kernel lacks are skipped."""
    for name, value in REQUIRED.items():
        if sysctl_path(name, proc_sys).exists():
            write_sysctl(name, value, proc_sys)


def restore(originals: dict[str, str | None], proc_sys: Path = PROC_SYS) -> list[Restored]:
    """Write back every recorded setting whose value differs now; the ones written, in record order."""
    current = read_sysctls(tuple(originals), proc_sys)
    restored: list[Restored] = []
    for name, original in originals.items():
        now = current.get(name)
        if original is None or now is None or now == original:
            continue
        write_sysctl(name, original, proc_sys)
        restored.append(Restored(name, now, original))
    return restored
