"""Storage for a cluster without a provisioner: a default no-provisioner StorageClass binding at first consumer,
and one local PersistentVolume per StatefulSet claim, pre-bound to it, pinned to the node, under the state dir."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gxlib.k8sdeploy.storage import (
    DEFAULT_CLASS_ANNOTATION,
    claims_of,
    ensure_directories,
    persistent_volume,
    storage_class,
)


def _statefulset(name: str, namespace: str, replicas: int, *templates: tuple[str, str]) -> dict[str, Any]:
    return {"kind": "StatefulSet", "metadata": {"name": name, "namespace": namespace},
            "spec": {"replicas": replicas, "volumeClaimTemplates": [
                {"metadata": {"name": t}, "spec": {"accessModes": ["ReadWriteOnce"],
                                                   "resources": {"requests": {"storage": size}}}}
                for t, size in templates]}}


def test_the_storage_class_is_the_default_one_without_a_provisioner_and_binds_at_first_consumer() -> None:
    sc = storage_class("gx-local")
    assert sc["metadata"]["annotations"][DEFAULT_CLASS_ANNOTATION] == "true"
    assert sc["provisioner"] == "kubernetes.io/no-provisioner"
    assert sc["volumeBindingMode"] == "WaitForFirstConsumer"


def test_every_ordinal_and_claim_template_of_every_statefulset_gets_a_volume(tmp_path: Path) -> None:
    objects = [_statefulset("prometheus", "fabric", 1, ("data", "50Gi")),
               _statefulset("db", "backend-devnet", 2, ("data", "5Gi"), ("wal", "1Gi")),
               {"kind": "Deployment", "metadata": {"name": "api"}, "spec": {}}]
    claims = {(v.namespace, v.claim): (v.capacity, v.directory) for v in claims_of(objects, tmp_path)}
    assert claims == {
        ("fabric", "data-prometheus-0"): ("50Gi", tmp_path / "fabric-data-prometheus-0"),
        ("backend-devnet", "data-db-0"): ("5Gi", tmp_path / "backend-devnet-data-db-0"),
        ("backend-devnet", "wal-db-0"): ("1Gi", tmp_path / "backend-devnet-wal-db-0"),
        ("backend-devnet", "data-db-1"): ("5Gi", tmp_path / "backend-devnet-data-db-1"),
        ("backend-devnet", "wal-db-1"): ("1Gi", tmp_path / "backend-devnet-wal-db-1"),
    }


def test_a_volume_is_local_pre_bound_to_its_claim_and_pinned_to_the_node(tmp_path: Path) -> None:
    [volume] = claims_of([_statefulset("postgresql", "backend-devnet", 1, ("data", "5Gi"))], tmp_path)
    pv = persistent_volume(volume, storage_class_name="gx-local", node_name="gx-node")
    spec = pv["spec"]
    assert spec["local"] == {"path": str(tmp_path / "backend-devnet-data-postgresql-0")}
    assert "hostPath" not in spec, "hostPath volumes do not get the pod's fsGroup"
    assert spec["claimRef"]["namespace"] == "backend-devnet" and spec["claimRef"]["name"] == "data-postgresql-0"
    assert spec["storageClassName"] == "gx-local" and spec["capacity"] == {"storage": "5Gi"}
    assert spec["persistentVolumeReclaimPolicy"] == "Retain"
    term = spec["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]
    assert term == {"key": "kubernetes.io/hostname", "operator": "In", "values": ["gx-node"]}


def test_volume_directories_are_created_once(tmp_path: Path) -> None:
    volumes = claims_of([_statefulset("prometheus", "fabric", 1, ("data", "50Gi"))], tmp_path / "volumes")
    assert ensure_directories(volumes) == [tmp_path / "volumes" / "fabric-data-prometheus-0"]
    assert ensure_directories(volumes) == []
