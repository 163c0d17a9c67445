"""One real node per host: kube-proxy owns host-wide iptables chains, so two clusters cannot run side by side
(``gx k8s up`` refuses while another node's chains are present). A test module that brings a real cluster up
holds this lock for its whole life, so test runs that overlap (several worktrees, a developer's run beside CI)
wait for each other instead of failing."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from gxlib.filelock import exclusive_lock
from gxlib.k8scluster.cluster import check_host
from gxlib.k8scluster.errors import HostNotSupported
from gxlib.k8scluster.settings import K8sClusterSettings

HOST_NODE_LOCK = Path("/run/gxlib/real-node.lock")


@contextmanager
def one_node_on_this_host(who: str) -> Iterator[None]:
    print(f"\n==> {who}: waiting for the host's real-node lock ({HOST_NODE_LOCK}) if another cluster holds it",
          file=sys.stderr, flush=True)
    with exclusive_lock(HOST_NODE_LOCK):
        yield


def skip_unless_this_host_runs_a_node(settings: K8sClusterSettings) -> None:
    """Skip when the host cannot run a node at all (not root, no cgroups); any other refusal is a failure."""
    try:
        check_host(settings)
    except HostNotSupported as exc:
        if "root" in exc.reason or "cgroup" in exc.reason:
            pytest.skip(str(exc))
        raise
