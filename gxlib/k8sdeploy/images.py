"""Which catalog image (gxlib.k8simages) stands in for each image the manifests name, and which images are not
built here (their workloads are scaled to zero, the reason written into the generated kustomization).

The manifests keep their upstream names (prom/prometheus:v2.55.1, ...); the deployment points them at the local
builds with kustomize ``images:`` overrides, never by editing the manifests. The version the manifest names must
be the one the catalog builds: a manifest that moves on without the catalog is refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from gxlib.k8simages.catalog import ALERTMANAGER_VERSION, KUBE_STATE_METRICS_VERSION, PROMETHEUS_VERSION

ObjectDoc = Mapping[str, Any]


@dataclass(frozen=True)
class CatalogImage:
    """``manifest_name`` (without tag) is built by catalog recipe ``recipe``; ``manifest_tag`` is the tag the
    manifests must carry (None: a project image, whose manifest tag is a release name the override replaces)."""

    manifest_name: str
    recipe: str
    manifest_tag: str | None


@dataclass(frozen=True)
class NotBuilt:
    """An image this machine cannot build: its workloads run with 0 replicas (``workloads``: kind/name)."""

    manifest_name: str
    workloads: tuple[tuple[str, str], ...]
    reason: str


CATALOG_IMAGES: tuple[CatalogImage, ...] = (
    # Prometheus 2.x is module github.com/prometheus/prometheus v0.x (v0.55.1 is the release v2.55.1).
    CatalogImage("prom/prometheus", "prometheus", "v2." + PROMETHEUS_VERSION.removeprefix("v0.")),
    CatalogImage("prom/alertmanager", "alertmanager", ALERTMANAGER_VERSION),
    CatalogImage("registry.k8s.io/kube-state-metrics/kube-state-metrics", "kube-state-metrics",
                 KUBE_STATE_METRICS_VERSION),
    CatalogImage("registry.gx.local/gx-backend", "backend", None),
    CatalogImage("registry.gx.local/gxtv3-chaincode", "chaincode", None),
    CatalogImage("registry.gx.local/gx/postgresql", "postgresql", None),
)

NOT_BUILT: tuple[NotBuilt, ...] = (
    NotBuilt("grafana/grafana", (("Deployment", "grafana"),),
             "Grafana is not built here: github.com/grafana/grafana is AGPL-3.0, which the package rules refuse "
             "(/work/.library/env/packages/go-partial.tsv). Its Deployment runs 0 replicas; the dashboard's "
             "panels are still verified by running each panel's query against Prometheus (runbook 01)."),
)


def split_reference(reference: str) -> tuple[str, str | None]:
    """``name[:tag]`` (a registry port is not a tag)."""
    name, sep, tag = reference.rpartition(":")
    if not sep or "/" in tag:
        return reference, None
    return name, tag


def images_of(objects: Iterable[ObjectDoc]) -> set[str]:
    """Every container image (init containers included) of every pod template in ``objects``."""
    found: set[str] = set()
    for doc in objects:
        spec = doc.get("spec") or {}
        template = spec.get("jobTemplate", {}).get("spec", spec).get("template") or {}
        pod = template.get("spec") or {}
        for container in [*pod.get("containers", []), *pod.get("initContainers", [])]:
            found.add(str(container["image"]))
    return found


def catalog_entry(manifest_name: str) -> CatalogImage | None:
    return next((c for c in CATALOG_IMAGES if c.manifest_name == manifest_name), None)


def not_built_entry(manifest_name: str) -> NotBuilt | None:
    return next((n for n in NOT_BUILT if n.manifest_name == manifest_name), None)


def unknown_images(manifest_images: Iterable[str]) -> list[str]:
    """Images the manifests name that neither the catalog builds nor NOT_BUILT explains; and catalog images whose
    manifest tag is not the version the catalog builds (as ``name:tag (catalog builds tag)``)."""
    problems: list[str] = []
    for reference in sorted(set(manifest_images)):
        name, tag = split_reference(reference)
        entry = catalog_entry(name)
        if entry is None:
            if not_built_entry(name) is None:
                problems.append(reference)
        elif entry.manifest_tag is not None and tag != entry.manifest_tag:
            problems.append(f"{reference} (the catalog builds {entry.manifest_tag})")
    return problems
