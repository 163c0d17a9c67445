"""Fixtures of the Kubernetes tests: kustomize and each overlay's objects, and a real control plane on loopback
(etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok with two fake nodes) started once per session.

The binaries come from the cache (``~/.cache/gxlib/k8s-<version>/bin``) and are built first when missing (from the
Go module proxy, which is why these tests are not unit tests); a failed build fails the tests, it never skips them.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

from gxlib.config import Environment, environment_profile
from gxlib.k8sbuild.binaries import CONTROL_PLANE_TOOLS, KUSTOMIZE, ensure_k8s_tools
from gxlib.k8sbuild.controlplane import LocalControlPlane
from gxlib.k8sbuild.settings import K8sBuildSettings
from gxlib.platform.kubernetes import KubernetesCluster
from gxlib.platform.settings import KubernetesPlatformSettings
from gxlib.progress import Progress

REPO_ROOT = Path(__file__).resolve().parents[3]
K8S_DIR = REPO_ROOT / "k8s"
KUBERNETES_ENVS = (Environment.DEVNET, Environment.TESTNET, Environment.MAINNET)


@pytest.fixture(scope="session")
def kustomize() -> Path:
    """The cached kustomize binary. A build failure fails the tests that need it (it is not a skip)."""
    install = ensure_k8s_tools(K8sBuildSettings(), [KUSTOMIZE], progress=Progress())
    return install.binary(KUSTOMIZE)


def kustomize_build(kustomize: Path, directory: Path) -> list[dict[str, Any]]:
    proc = subprocess.run([str(kustomize), "build", str(directory)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"kustomize build {directory} failed:\n{proc.stderr}"
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


@pytest.fixture(scope="session")
def overlays(kustomize: Path) -> dict[Environment, list[dict[str, Any]]]:
    """env → the objects `kustomize build k8s/overlays/<env>` prints."""
    return {env: kustomize_build(kustomize, K8S_DIR / "overlays" / env.value) for env in KUBERNETES_ENVS}


def find(objects: list[dict[str, Any]], kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name
               and (namespace is None or o["metadata"].get("namespace") == namespace)]
    assert len(matches) == 1, f"expected one {kind} {namespace}/{name}, found {len(matches)}"
    return matches[0]


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalControlPlane]:
    install = ensure_k8s_tools(K8sBuildSettings(), [KUSTOMIZE, *CONTROL_PLANE_TOOLS], progress=Progress())
    plane = LocalControlPlane(install, tmp_path_factory.mktemp("k8s"), progress=Progress())
    plane.start()
    started = list(plane.processes)
    try:
        yield plane
    finally:
        plane.stop()
        # Nothing of the control plane outlives the session.
        assert [p.name for p in started if p.popen.poll() is None] == []


@pytest.fixture(scope="session")
def api(control_plane: LocalControlPlane) -> Iterator[k8s_client.ApiClient]:
    client = k8s_config.new_client_from_config(config_file=str(control_plane.kubeconfig))
    yield client
    client.close()


@pytest.fixture(scope="session")
def overlay_objects(control_plane: LocalControlPlane, overlays: dict[Environment, list[dict[str, Any]]]
                    ) -> dict[Environment, list[dict[str, Any]]]:
    return overlays


def make_platform(api: k8s_client.ApiClient, env: Environment) -> KubernetesCluster:
    settings = KubernetesPlatformSettings(poll_interval_s=0.2, request_timeout_s=10)
    return KubernetesCluster(api, environment_profile(env), settings=settings, progress=Progress())


@pytest.fixture(scope="session")
def prometheus_volume(api: k8s_client.ApiClient) -> str:
    """A PersistentVolume for prometheus-0's claim: the cluster has no provisioner, so it is created statically,
    pre-bound to that claim (the devnet overlay's PostgreSQL claims a volume too)."""
    name = "prometheus-data-test"
    k8s_client.CoreV1Api(api).create_persistent_volume({
        "apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name},
        "spec": {"capacity": {"storage": "50Gi"}, "accessModes": ["ReadWriteOnce"],
                 "hostPath": {"path": "/nonexistent/gx-test"}, "persistentVolumeReclaimPolicy": "Retain",
                 "claimRef": {"namespace": "fabric", "name": "data-prometheus-0"}},
    })
    return name
