"""What ``up`` refuses before changing anything, and the kubelet cgroups ``down`` removes."""

from __future__ import annotations

from pathlib import Path

import pytest

from gxlib.k8scluster import cluster as cluster_module
from gxlib.k8scluster.cgroups import kubelet_cgroup_dirs
from gxlib.k8scluster.cluster import NodeCluster, check_host
from gxlib.k8scluster.errors import ClusterError, HostNotSupported
from gxlib.k8scluster.settings import K8sClusterSettings


def test_up_without_root_is_refused_before_the_state_dir_exists(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cluster_module.os, "geteuid", lambda: 1000)
    settings = K8sClusterSettings(state_dir=tmp_path / "state")
    with pytest.raises(HostNotSupported, match="root"):
        NodeCluster(settings).up()
    assert not settings.state_dir.exists()


def test_a_missing_cni_plugin_is_named_with_the_package_list_as_hint(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cluster_module.os, "geteuid", lambda: 0)
    settings = K8sClusterSettings(state_dir=tmp_path / "state", cni_bin_dir=tmp_path / "no-cni")
    with pytest.raises(HostNotSupported) as raised:
        check_host(settings)
    assert str(tmp_path / "no-cni" / "bridge") in raised.value.reason
    assert raised.value.hint is not None and "system-packages" in raised.value.hint


def test_a_component_error_names_the_component_and_its_log(tmp_path: Path) -> None:
    log = tmp_path / "kubelet.log"
    error = ClusterError("kubelet", "exited with 1", log_file=log, log_tail="E1206 failed to run Kubelet")
    assert str(error).startswith("kubelet: exited with 1; last lines of ")
    assert str(log) in str(error) and "failed to run Kubelet" in str(error)


def test_the_kubelets_cgroups_are_found_in_every_controller_deepest_first(tmp_path: Path) -> None:
    for controller in ("memory", "cpu"):
        (tmp_path / controller / "kubepods" / "besteffort" / "pod1").mkdir(parents=True)
        (tmp_path / controller / "user.slice").mkdir(parents=True)
    found = [p.relative_to(tmp_path).as_posix() for p in kubelet_cgroup_dirs(tmp_path)]
    assert set(found) == {f"{c}/kubepods{s}" for c in ("memory", "cpu") for s in ("", "/besteffort",
                                                                                 "/besteffort/pod1")}
    assert found.index("memory/kubepods/besteffort/pod1") < found.index("memory/kubepods")


def test_up_refuses_to_record_the_host_while_another_nodes_kube_proxy_chains_are_present(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gxlib.k8scluster.iptables import parse_save

    other_node = parse_save("*nat\n:PREROUTING ACCEPT [0:0]\n:KUBE-SERVICES - [0:0]\nCOMMIT\n")
    monkeypatch.setattr(cluster_module.iptables, "snapshot", lambda family: other_node if family == "iptables" else {})
    node = NodeCluster(K8sClusterSettings(state_dir=tmp_path / "state"))

    with pytest.raises(ClusterError, match="KUBE-SERVICES") as raised:
        node._record_host()

    assert raised.value.hint is not None and "gx k8s down" in raised.value.hint
    assert not (tmp_path / "state").exists()
