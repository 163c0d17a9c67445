"""Which images the overlay may name: those the catalog builds (at the version the catalog builds) and those
written down as not buildable here."""

from __future__ import annotations

from gxlib.k8sdeploy.images import CATALOG_IMAGES, images_of, split_reference, unknown_images
from gxlib.k8simages.catalog import images
from gxlib.k8simages.settings import ImageSettings


def _deployment(*images: str, init: str | None = None) -> dict[str, object]:
    pod: dict[str, object] = {"containers": [{"name": f"c{i}", "image": image} for i, image in enumerate(images)]}
    if init:
        pod["initContainers"] = [{"name": "init", "image": init}]
    return {"kind": "Deployment", "metadata": {"name": "x"}, "spec": {"template": {"spec": pod}}}


def test_every_catalog_image_of_the_mapping_is_a_recipe_the_catalog_has() -> None:
    recipes = {recipe.name for recipe in images(ImageSettings())}
    assert {entry.recipe for entry in CATALOG_IMAGES} <= recipes


def test_images_of_reads_containers_and_init_containers_of_every_pod_template() -> None:
    job = {"kind": "CronJob", "metadata": {"name": "c"},
           "spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "j", "image": "j:1"}]}}}}}}
    assert images_of([_deployment("a:1", init="b:2"), job, {"kind": "Service", "metadata": {}}]) == {
        "a:1", "b:2", "j:1"}


def test_an_image_without_a_catalog_entry_or_a_reason_is_named() -> None:
    assert unknown_images(["prom/prometheus:v2.55.1", "grafana/grafana:11.6.0", "redis:7.2"]) == ["redis:7.2"]


def test_a_manifest_that_moves_to_another_version_than_the_catalog_builds_is_named() -> None:
    problems = unknown_images(["prom/alertmanager:v0.28.0"])
    assert problems and "v0.27.0" in problems[0]


def test_a_registry_port_is_not_a_tag() -> None:
    assert split_reference("registry.gx.local:5000/gx/backend") == ("registry.gx.local:5000/gx/backend", None)
    assert split_reference("registry.gx.local:5000/gx/backend:1.0") == ("registry.gx.local:5000/gx/backend", "1.0")
