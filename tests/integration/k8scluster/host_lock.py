"""One real node per host: kube-proxy owns host-wide iptables chains, so two clusters cannot run side by side
(``gx k8s up`` refuses while another node's chains are present). A test module that brings a real cluster up
holds this lock for its whole life, so test runs that overlap (several worktrees, a developer's run beside CI)
wait for each other instead of failing."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gxlib.filelock import exclusive_lock

HOST_NODE_LOCK = Path("/run/gxlib/real-node.lock")


@contextmanager
def one_node_on_this_host(who: str) -> Iterator[None]:
    print(f"\n==> {who}: waiting for the host's real-node lock ({HOST_NODE_LOCK}) if another cluster holds it",
          file=sys.stderr, flush=True)
    with exclusive_lock(HOST_NODE_LOCK):
        yield
