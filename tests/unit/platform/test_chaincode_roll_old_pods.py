"""A chaincode roll is done when the old pods are gone, not when the rollout says complete: an old pod that still
terminates can take a peer's new connection (the node's proxy rules lag) and register with the old package ID,
which leaves the peer waiting for the new one. No cluster: the pod listing is scripted."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gxlib.config import Environment, environment_profile
from gxlib.platform.base import PodState
from gxlib.platform.errors import RolloutFailedError
from gxlib.platform.kubernetes import KubernetesCluster
from gxlib.platform.settings import PACKAGE_ID_ANNOTATION, KubernetesPlatformSettings
from gxlib.progress import Progress

NEW = "gxtv3_1.1:" + "a" * 64
OLD = "gxtv3_1.0:" + "0" * 64


IMAGE = "registry.gx.local/gx/chaincode:2550ad1b15c6704b"
OLD_IMAGE = "registry.gx.local/gx/chaincode:previous"


def _pod(name: str, package_id: str, image: str = OLD_IMAGE) -> PodState:
    return PodState(namespace="fabric", name=name, phase="Running", ready=True, restarts=0, node="n",
                    labels={}, annotations={PACKAGE_ID_ANNOTATION: package_id}, images={"chaincode": image})


def _cluster(listings: Iterator[list[PodState]]) -> tuple[KubernetesCluster, list[str]]:
    cluster = KubernetesCluster.__new__(KubernetesCluster)  # no API client: only the pod listing is used
    cluster.profile = environment_profile(Environment.DEVNET)
    cluster.settings = KubernetesPlatformSettings(poll_interval_s=0.001)
    cluster.progress = Progress(quiet=True)
    asked: list[str] = []

    def chaincode_pods(org: str) -> list[PodState]:
        asked.append(org)
        return next(listings)

    cluster.chaincode_pods = chaincode_pods  # type: ignore[method-assign]
    return cluster, asked


def test_the_roll_waits_until_the_old_pods_are_gone() -> None:
    listings = iter([[_pod("new", NEW), _pod("old", OLD)], [_pod("new", NEW), _pod("old", OLD)], [_pod("new", NEW)]])
    cluster, asked = _cluster(listings)
    cluster._wait_old_chaincode_pods_gone("org1", NEW, timeout_s=60)
    assert asked == ["org1", "org1", "org1"]


def test_old_pods_that_never_go_fail_the_roll_naming_them() -> None:
    cluster, _ = _cluster(iter(lambda: [_pod("new", NEW), _pod("gxtv3-org1-devnet-old", OLD)], None))
    with pytest.raises(RolloutFailedError, match="pods of another package ID or image remain: gxtv3-org1-devnet-old"):
        cluster._wait_old_chaincode_pods_gone("org1", NEW, timeout_s=0.01)


def test_with_a_new_image_pods_of_the_right_package_but_the_old_image_are_old_pods_too() -> None:
    listings = iter([[_pod("new", NEW, IMAGE), _pod("same-package-old-image", NEW)], [_pod("new", NEW, IMAGE)]])
    cluster, asked = _cluster(listings)
    cluster._wait_old_chaincode_pods_gone("org1", NEW, IMAGE, timeout_s=60)
    assert asked == ["org1", "org1"]
    cluster, _ = _cluster(iter(lambda: [_pod("new", NEW, IMAGE), _pod("gxtv3-org1-devnet-old", NEW)], None))
    with pytest.raises(RolloutFailedError, match="another package ID or image remain: gxtv3-org1-devnet-old"):
        cluster._wait_old_chaincode_pods_gone("org1", NEW, IMAGE, timeout_s=0.01)
