"""Storage for a single-node cluster without a provisioner, the way such clusters are given it: a default
StorageClass with no provisioner and ``WaitForFirstConsumer`` binding, and one static ``local``
PersistentVolume per claim the overlay's StatefulSets make, pre-bound to that claim (claimRef) and pinned to the
node. Each volume is a directory under the cluster's state dir (so ``gx k8s down`` removes it).

``local`` volumes, unlike ``hostPath`` ones, get the pod's fsGroup: the kubelet makes the directory group-owned
by it and group-writable, so Prometheus (65534) and PostgreSQL (the image's postgres user) can write.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

NO_PROVISIONER = "kubernetes.io/no-provisioner"
DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
MANAGED_BY = {"app.kubernetes.io/managed-by": "gx-k8s-deploy"}


@dataclass(frozen=True)
class StaticVolume:
    """One claim of a StatefulSet's pod (``<template>-<statefulset>-<ordinal>``) and the volume made for it."""

    namespace: str
    claim: str
    capacity: str
    access_modes: tuple[str, ...]
    directory: Path

    @property
    def name(self) -> str:
        return f"gx-{self.namespace}-{self.claim}"


def storage_class(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": {"name": name, "labels": dict(MANAGED_BY), "annotations": {DEFAULT_CLASS_ANNOTATION: "true"}},
        "provisioner": NO_PROVISIONER,
        "volumeBindingMode": "WaitForFirstConsumer",
        "reclaimPolicy": "Retain",
    }


def claims_of(objects: Iterable[Mapping[str, Any]], volumes_root: Path) -> list[StaticVolume]:
    """The claims every StatefulSet's pods will make (each ordinal, each volumeClaimTemplate)."""
    found: list[StaticVolume] = []
    for doc in objects:
        if doc.get("kind") != "StatefulSet":
            continue
        meta, spec = doc["metadata"], doc["spec"]
        namespace = meta.get("namespace", "default")
        for ordinal in range(int(spec.get("replicas", 1))):
            for template in spec.get("volumeClaimTemplates", []):
                claim = f"{template['metadata']['name']}-{meta['name']}-{ordinal}"
                found.append(StaticVolume(
                    namespace=namespace, claim=claim,
                    capacity=str(template["spec"]["resources"]["requests"]["storage"]),
                    access_modes=tuple(template["spec"].get("accessModes", ["ReadWriteOnce"])),
                    directory=volumes_root / f"{namespace}-{claim}"))
    return found


def persistent_volume(volume: StaticVolume, *, storage_class_name: str, node_name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": volume.name, "labels": dict(MANAGED_BY)},
        "spec": {
            "capacity": {"storage": volume.capacity},
            "accessModes": list(volume.access_modes),
            "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": storage_class_name,
            "volumeMode": "Filesystem",
            "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": volume.namespace,
                         "name": volume.claim},
            "local": {"path": str(volume.directory)},
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "kubernetes.io/hostname", "operator": "In", "values": [node_name]}]}]}},
        },
    }


def ensure_directories(volumes: Iterable[StaticVolume]) -> list[Path]:
    """Create the volumes' directories (a local PV's path must exist); those created now."""
    created: list[Path] = []
    for volume in volumes:
        if not volume.directory.is_dir():
            volume.directory.mkdir(parents=True, mode=0o755)
            created.append(volume.directory)
    return created
