"""The catalog: every project image with a full name, a tag from its inputs, and the versions the manifests use."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from gxlib.k8simages import catalog
from gxlib.k8simages.errors import UnknownImage
from gxlib.k8simages.recipe import reference_of
from gxlib.k8simages.settings import ImageSettings

REPO = Path(__file__).resolve().parents[3]


def _manifest_image(path: str) -> str:
    docs = [d for d in yaml.safe_load_all((REPO / path).read_text()) if d]
    [image] = [
        c["image"]
        for d in docs
        if d["kind"] == "StatefulSet" or d["kind"] == "Deployment"
        for c in d["spec"]["template"]["spec"]["containers"]
    ]
    return str(image)


def test_catalog_lists_every_project_image_pause_first() -> None:
    names = [recipe.name for recipe in catalog.images(ImageSettings())]
    assert names[0] == "pause"
    assert set(names) == {
        "pause",
        "coredns",
        "kube-state-metrics",
        "alertmanager",
        "prometheus",
        "postgresql",
        "chaincode",
        "backend",
    }


def test_every_image_has_a_full_name_and_a_tag_from_its_input_digest() -> None:
    for recipe in catalog.images(ImageSettings()):
        reference = reference_of(recipe)
        assert reference.repository == f"registry.gx.local/gx/{recipe.name}"
        assert re.fullmatch(r"[0-9a-f]{16}", reference.tag)


def test_prometheus_and_alertmanager_are_the_versions_the_monitoring_manifests_name() -> None:
    settings = ImageSettings()
    prometheus_tag = _manifest_image("k8s/monitoring/stack/prometheus.yaml").split(":")[1]  # v2.55.1
    alertmanager_tag = _manifest_image("k8s/monitoring/stack/alertmanager.yaml").split(":")[1]
    # Prometheus's Go module tags are v0.<minor>.<patch> for release 2.<minor>.<patch>.
    assert catalog.prometheus(settings).version == "v0." + prometheus_tag.removeprefix("v2.")
    assert catalog.alertmanager(settings).version == alertmanager_tag


def test_prometheus_image_has_kill_for_the_signal_reload_and_runs_as_nobody() -> None:
    recipe = catalog.prometheus(ImageSettings())
    assert [tool.name for tool in recipe.c_tools] == ["kill"]
    assert recipe.config.user == "65534:65534"
    assert {d.path for d in recipe.root.directories} >= {"etc/prometheus", "prometheus"}


def test_a_new_module_version_changes_the_image_tag() -> None:
    settings = ImageSettings()
    current = catalog.kube_state_metrics(settings)
    assert reference_of(replace(current, version="v2.19.0")).tag != reference_of(current).tag


def test_selecting_an_unknown_image_names_the_known_ones() -> None:
    with pytest.raises(UnknownImage, match="known images: pause"):
        catalog.select(ImageSettings(), ("grafana",))
