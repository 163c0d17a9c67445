"""Prometheus in the cluster scrapes the devnet's Fabric nodes where they run (on the node IP, not in pods): the
deploy's prometheus.yml keeps the fabric-nodes job, with the nodes' operations endpoints as its targets."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gxlib.k8sdeploy.fabric import FABRIC_NODES_JOB, with_host_fabric_nodes
from gxlib.k8sdeploy.images import CATALOG_IMAGES
from gxlib.k8sdeploy.kustomization import ALERTMANAGER_FILE, PROMETHEUS_FILE, render_kustomization
from gxlib.k8simages.catalog import REPO_ROOT

PROMETHEUS_YML = REPO_ROOT / "k8s" / "monitoring" / "stack" / "prometheus.yml"
NODES = {"orderer0": "10.244.0.1:16443", "peer0-org1": "10.244.0.1:16444", "peer0-org2": "10.244.0.1:16445"}


def _jobs(text: str) -> dict[str, dict]:
    return {job["job_name"]: job for job in yaml.safe_load(text)["scrape_configs"]}


def test_the_fabric_nodes_job_scrapes_each_devnet_node_by_its_operations_endpoint() -> None:
    jobs = _jobs(with_host_fabric_nodes(PROMETHEUS_YML.read_text(), NODES))
    assert jobs[FABRIC_NODES_JOB] == {"job_name": FABRIC_NODES_JOB, "static_configs": [
        {"targets": [address], "labels": {"pod": name}} for name, address in sorted(NODES.items())]}


def test_the_other_jobs_and_settings_stay_as_the_overlay_has_them() -> None:
    overlay = yaml.safe_load(PROMETHEUS_YML.read_text())
    generated = yaml.safe_load(with_host_fabric_nodes(PROMETHEUS_YML.read_text(), NODES))
    assert {k: v for k, v in generated.items() if k != "scrape_configs"} == \
        {k: v for k, v in overlay.items() if k != "scrape_configs"}
    overlay_jobs = {job["job_name"]: job for job in overlay["scrape_configs"]}
    assert {name: job for name, job in _jobs(yaml.safe_dump(generated)).items() if name != FABRIC_NODES_JOB} == \
        {name: job for name, job in overlay_jobs.items() if name != FABRIC_NODES_JOB}


def test_a_config_without_the_fabric_job_is_refused() -> None:
    with pytest.raises(ValueError, match=FABRIC_NODES_JOB):
        with_host_fabric_nodes("scrape_configs:\n  - job_name: prometheus\n", NODES)


def test_the_kustomization_replaces_prometheus_config_beside_alertmanagers(tmp_path: Path) -> None:
    built = {entry.recipe: f"registry.gx.local/gx/{entry.recipe}:{i:016x}" for i, entry in enumerate(CATALOG_IMAGES)}
    prometheus = with_host_fabric_nodes(PROMETHEUS_YML.read_text(), NODES)
    generated = render_kustomization(Path("/repo/k8s/overlays/devnet"), built, monitoring_namespace="fabric",
                                     alertmanager_yml="receivers: []\n", webhook_url="http://10.244.0.1:1/a",
                                     prometheus_yml=prometheus)
    generators = yaml.safe_load(generated.text)["configMapGenerator"]
    assert [(g["name"], g["files"]) for g in generators] == [("alertmanager-config", [ALERTMANAGER_FILE]),
                                                             ("prometheus-config", [PROMETHEUS_FILE])]
    assert all(g["behavior"] == "replace" and g["namespace"] == "fabric" for g in generators)
    assert generated.files[PROMETHEUS_FILE] == prometheus
