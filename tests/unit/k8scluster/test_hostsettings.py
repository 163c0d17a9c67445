"""Sysctl bookkeeping of the cluster, on a fake /proc/sys tree."""

from __future__ import annotations

from pathlib import Path

import pytest

from gxlib.k8scluster import hostsettings


@pytest.fixture
def proc_sys(tmp_path: Path) -> Path:
    root = tmp_path / "sys"
    for name, value in {"kernel.panic": "1", "kernel.panic_on_oops": "0", "vm.overcommit_memory": "0",
                        "net.ipv4.ip_forward": "0", "net.bridge.bridge-nf-call-iptables": "0"}.items():
        path = hostsettings.sysctl_path(name, root)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{value}\n")
    return root


def test_down_puts_back_exactly_the_settings_the_kubelet_and_bridge_plugin_changed(proc_sys: Path,
                                                                                   tmp_path: Path) -> None:
    record = tmp_path / "state" / "host-settings.json"
    hostsettings.record_originals(record, proc_sys)
    # What the kubelet and the bridge plugin do while the cluster runs:
    for name, value in {"kernel.panic": "10", "kernel.panic_on_oops": "1", "vm.overcommit_memory": "1",
                        "net.ipv4.ip_forward": "1"}.items():
        hostsettings.write_sysctl(name, value, proc_sys)

    restored = hostsettings.restore(hostsettings.load_originals(record), proc_sys)

    assert {(r.name, r.changed_to, r.original) for r in restored} == {
        ("kernel.panic", "10", "1"), ("kernel.panic_on_oops", "1", "0"), ("vm.overcommit_memory", "1", "0"),
        ("net.ipv4.ip_forward", "1", "0")}
    assert hostsettings.read_sysctls(("kernel.panic", "net.bridge.bridge-nf-call-iptables"), proc_sys) == {
        "kernel.panic": "1", "net.bridge.bridge-nf-call-iptables": "0"}


def test_a_second_up_keeps_the_hosts_original_values_not_the_clusters(proc_sys: Path, tmp_path: Path) -> None:
    record = tmp_path / "host-settings.json"
    hostsettings.record_originals(record, proc_sys)
    hostsettings.write_sysctl("kernel.panic", "10", proc_sys)

    again = hostsettings.record_originals(record, proc_sys)

    assert again["kernel.panic"] == "1"


def test_settings_the_kernel_lacks_are_recorded_as_absent_and_never_written(proc_sys: Path, tmp_path: Path) -> None:
    record = tmp_path / "host-settings.json"
    originals = hostsettings.record_originals(record, proc_sys)
    assert originals["net.netfilter.nf_conntrack_max"] is None
    assert hostsettings.restore(originals, proc_sys) == []
    assert not hostsettings.sysctl_path("net.netfilter.nf_conntrack_max", proc_sys).exists()


def test_up_turns_on_bridge_netfilter_and_forwarding_for_service_traffic(proc_sys: Path) -> None:
    hostsettings.apply_required(proc_sys)
    assert hostsettings.read_sysctls(("net.bridge.bridge-nf-call-iptables", "net.ipv4.ip_forward"), proc_sys) == {
        "net.bridge.bridge-nf-call-iptables": "1", "net.ipv4.ip_forward": "1"}
    # bridge-nf-call-ip6tables is absent in this fake kernel: skipped, not created.
    assert not hostsettings.sysctl_path("net.bridge.bridge-nf-call-ip6tables", proc_sys).exists()
