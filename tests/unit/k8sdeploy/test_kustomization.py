"""The generated kustomization: the repository's overlay as its only resource, every catalog image overridden,
the images that cannot be built scaled to zero with their reason, and the webhook receiver when one is set."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gxlib.k8sdeploy.images import CATALOG_IMAGES, NOT_BUILT
from gxlib.k8sdeploy.kustomization import ALERTMANAGER_FILE, render_kustomization, with_webhook_receiver

OVERLAY = Path("/repo/k8s/overlays/devnet")
BUILT = {entry.recipe: f"registry.gx.local/gx/{entry.recipe}:{index:016x}" for index, entry in
         enumerate(CATALOG_IMAGES)}
ALERTMANAGER_YML = """route:
  receiver: default
receivers:
  - name: default
"""


def test_the_overlay_is_the_only_resource_and_every_catalog_image_points_at_its_local_build() -> None:
    doc = yaml.safe_load(render_kustomization(OVERLAY, BUILT, monitoring_namespace="fabric").text)
    assert doc["resources"] == [str(OVERLAY)]
    overrides = {i["name"]: f"{i['newName']}:{i['newTag']}" for i in doc["images"]}
    assert overrides == {entry.manifest_name: BUILT[entry.recipe] for entry in CATALOG_IMAGES}
    assert all(isinstance(i["newTag"], str) for i in doc["images"]), "a tag of digits must stay a string"


def test_the_overlay_is_named_relative_to_where_the_file_is_written(tmp_path: Path) -> None:
    generated = render_kustomization(tmp_path / "repo" / "k8s" / "overlays" / "devnet", BUILT,
                                     monitoring_namespace="fabric", directory=tmp_path / "state" / "deploy")
    assert yaml.safe_load(generated.text)["resources"] == ["../../repo/k8s/overlays/devnet"]


def test_grafana_runs_no_replica_and_the_file_says_why() -> None:
    generated = render_kustomization(OVERLAY, BUILT, monitoring_namespace="fabric")
    doc = yaml.safe_load(generated.text)
    assert {"name": "grafana", "count": 0} in doc["replicas"]
    assert "AGPL" in generated.text and "go-partial.tsv" in generated.text
    assert any(n.manifest_name == "grafana/grafana" for n in NOT_BUILT)


def test_without_a_webhook_alertmanager_keeps_the_overlays_config() -> None:
    generated = render_kustomization(OVERLAY, BUILT, monitoring_namespace="fabric")
    assert "configMapGenerator" not in yaml.safe_load(generated.text) and not generated.files


def test_a_webhook_replaces_alertmanagers_config_with_a_receiver_posting_there(tmp_path: Path) -> None:
    url = "http://10.244.0.1:19093/alerts"
    generated = render_kustomization(OVERLAY, BUILT, monitoring_namespace="fabric",
                                     alertmanager_yml=ALERTMANAGER_YML, webhook_url=url)
    generator = yaml.safe_load(generated.text)["configMapGenerator"][0]
    assert generator == {"name": "alertmanager-config", "namespace": "fabric", "behavior": "replace",
                         "files": [ALERTMANAGER_FILE]}
    config = yaml.safe_load(generated.files[ALERTMANAGER_FILE])
    assert config["route"]["receiver"] == "default"
    assert config["receivers"] == [{"name": "default", "webhook_configs": [{"url": url, "send_resolved": True}]}]
    path = generated.write(tmp_path)
    assert path.read_text() == generated.text and (tmp_path / ALERTMANAGER_FILE).is_file()


def test_a_missing_built_image_is_refused_rather_than_left_at_its_upstream_name() -> None:
    partial = {k: v for k, v in BUILT.items() if k != "prometheus"}
    with pytest.raises(ValueError, match="prometheus"):
        render_kustomization(OVERLAY, partial, monitoring_namespace="fabric")


def test_the_webhook_receiver_is_added_when_the_config_has_no_default_receiver() -> None:
    config = yaml.safe_load(with_webhook_receiver("route:\n  receiver: default\n", "http://sink/"))
    assert config["receivers"][0]["webhook_configs"][0]["url"] == "http://sink/"


def test_the_package_ids_the_pods_run_are_kept_by_a_patch() -> None:
    running = {("fabric", "gxtv3-package-org1-devnet"): "gxtv3_1.0:" + "ab" * 32}
    doc = yaml.safe_load(render_kustomization(OVERLAY, BUILT, monitoring_namespace="fabric",
                                              package_ids=running).text)
    [patch] = [yaml.safe_load(p["patch"]) for p in doc["patches"]]
    assert patch["metadata"] == {"name": "gxtv3-package-org1-devnet", "namespace": "fabric"}
    assert patch["data"] == {"CHAINCODE_ID": "gxtv3_1.0:" + "ab" * 32}
    assert "patches" not in yaml.safe_load(render_kustomization(OVERLAY, BUILT, monitoring_namespace="fabric").text)
