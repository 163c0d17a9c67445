"""Drift between the manifests and the image catalog: every image `kustomize build` of the devnet overlay names is
one gxlib.k8simages builds (at the version the manifest names) or one written down as not buildable here, and
after the deploy's overrides every image is a local build. Needs kustomize (built into the cache), no cluster."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from gxlib.k8sdeploy.images import CATALOG_IMAGES, NOT_BUILT, images_of, split_reference, unknown_images
from gxlib.k8sdeploy.kustomization import render_kustomization
from gxlib.k8simages.catalog import REPO_ROOT, select
from gxlib.k8simages.recipe import reference_of
from gxlib.k8simages.settings import ImageSettings
from tests.integration.platform.conftest import kustomize_build

OVERLAY = REPO_ROOT / "k8s" / "overlays" / "devnet"


@pytest.fixture(scope="module")
def built_references() -> dict[str, str]:
    """Catalog recipe → the reference its current inputs are built as (no build: the tag is the input digest)."""
    names = tuple(dict.fromkeys(entry.recipe for entry in CATALOG_IMAGES))
    return {recipe.name: str(reference_of(recipe)) for recipe in select(ImageSettings(), names)}


def _generated(tmp_path: Path, kustomize: Path, references: dict[str, str]) -> list[dict[str, Any]]:
    directory = tmp_path / "deploy"
    render_kustomization(OVERLAY, references, monitoring_namespace="fabric", directory=directory).write(directory)
    return kustomize_build(kustomize, directory)


def test_every_image_the_overlay_names_is_built_by_the_catalog_or_explained(kustomize: Path) -> None:
    assert unknown_images(images_of(kustomize_build(kustomize, OVERLAY))) == []


def test_after_the_overrides_every_image_is_a_local_build_except_the_ones_at_zero_replicas(
        kustomize: Path, tmp_path: Path, built_references: dict[str, str]) -> None:
    objects = _generated(tmp_path, kustomize, built_references)
    not_built = {n.manifest_name for n in NOT_BUILT}
    strays = {i for i in images_of(objects) if i not in built_references.values()
              and split_reference(i)[0] not in not_built}
    assert strays == set()
    scaled = {name for n in NOT_BUILT for _, name in n.workloads}
    for doc in objects:
        if doc["metadata"]["name"] in scaled and doc["kind"] == "Deployment":
            assert doc["spec"]["replicas"] == 0


def test_a_manifest_image_without_a_catalog_entry_is_caught(kustomize: Path, tmp_path: Path,
                                                            built_references: dict[str, str]) -> None:
    """The drift check itself: an overlay that adds a workload with an unknown image fails it."""
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "redis.yaml").write_text(yaml.safe_dump({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "redis", "namespace": "fabric"},
        "spec": {"selector": {"matchLabels": {"app": "redis"}}, "template": {
            "metadata": {"labels": {"app": "redis"}},
            "spec": {"containers": [{"name": "redis", "image": "redis:7.2"}]}}}}))
    (extra / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": [os.path.relpath(OVERLAY, extra), "redis.yaml"]}))
    assert unknown_images(images_of(kustomize_build(kustomize, extra))) == ["redis:7.2"]

