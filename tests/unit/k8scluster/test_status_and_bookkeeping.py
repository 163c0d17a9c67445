"""Status parsing, pid files and the mounts ``down`` unmounts."""

from __future__ import annotations

import os
from pathlib import Path

from gxlib.k8scluster.mounts import mounts_under
from gxlib.k8scluster.processes import ProcessRecord, parse_pid_file, start_ticks
from gxlib.k8scluster.status import ClusterStatus, ProcessState, parse_nodes, parse_pods

NODES = {"items": [{
    "metadata": {"name": "gx-node"},
    "status": {"conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}],
               "addresses": [{"type": "InternalIP", "address": "10.244.0.1"}, {"type": "Hostname", "address": "vm"}],
               "nodeInfo": {"kubeletVersion": "v1.36.3", "containerRuntimeVersion": "containerd://1.6.20"}},
}]}
PODS = {"items": [
    {"metadata": {"name": "coredns-1", "namespace": "kube-system"},
     "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [{"restartCount": 2}]}},
    {"metadata": {"name": "pending", "namespace": "kube-system"}, "status": {"phase": "Pending"}},
]}


def test_nodes_are_read_with_readiness_address_and_runtime() -> None:
    [node] = parse_nodes(NODES)
    assert (node.name, node.ready, node.internal_ip, node.container_runtime) == (
        "gx-node", True, "10.244.0.1", "containerd://1.6.20")


def test_pods_are_read_with_phase_readiness_and_restarts() -> None:
    pods = parse_pods(PODS)
    assert [(p.name, p.phase, p.ready, p.restarts) for p in pods] == [
        ("coredns-1", "Running", True, 2), ("pending", "Pending", False, 0)]


def test_the_cluster_counts_as_running_only_when_every_process_runs_and_the_api_answers() -> None:
    processes = [ProcessState(name="etcd", pid=1, running=True), ProcessState(name="kubelet", pid=2, running=False)]
    assert not ClusterStatus(state_dir="/s", processes=processes, api_answers=True).running
    assert ClusterStatus(state_dir="/s", processes=processes[:1], api_answers=True).running
    assert not ClusterStatus(state_dir="/s", processes=processes[:1], api_answers=False).running
    assert not ClusterStatus(state_dir="/s").running


def test_a_pid_the_kernel_gave_to_another_program_is_not_ours() -> None:
    me = os.getpid()
    assert parse_pid_file("kubelet", f"{me} {start_ticks(me)}\n") == ProcessRecord("kubelet", me, start_ticks(me))
    assert ProcessRecord("kubelet", me, start_ticks(me)).alive()
    assert not ProcessRecord("kubelet", me, (start_ticks(me) or 0) + 1).alive()
    assert parse_pid_file("etcd", "4242\n") == ProcessRecord("etcd", 4242, None)
    assert parse_pid_file("etcd", "") is None


MOUNTINFO = """22 1 8:1 / / rw - ext4 /dev/sda1 rw
90 22 0:50 / /state/kubelet/pods/p1/volumes/kubernetes.io~projected/token rw - tmpfs tmpfs rw
91 22 0:51 / /state/containerd/state/io.containerd.grpc.v1.cri/netns/cni-1 rw - nsfs nsfs rw
92 22 0:52 / /state-other/x rw - tmpfs tmpfs rw
93 22 0:53 / /state/kubelet rw - ext4 /dev/sda1 rw
"""


def test_mounts_under_the_state_dir_are_unmounted_deepest_first_and_nothing_else() -> None:
    assert mounts_under(Path("/state"), MOUNTINFO) == [
        "/state/kubelet/pods/p1/volumes/kubernetes.io~projected/token",
        "/state/containerd/state/io.containerd.grpc.v1.cri/netns/cni-1",
        "/state/kubelet",
    ]
