"""Scrape jobs (SPEC §5) on Kubernetes and locally, and the local Alertmanager routing."""

from __future__ import annotations

from gxlib.backend.settings import BackendSettings
from gxlib.config import DevnetSettings
from gxlib.monitoring.alertmanager import local_alertmanager_config
from gxlib.monitoring.scrape import (
    BACKEND_JOBS,
    devnet_operations_targets,
    kubernetes_scrape_configs,
    local_prometheus_config,
    local_scrape_configs,
)
from gxlib.monitoring.settings import MonitoringConfig, committed_devnet_settings

NAMESPACES = ["backend-mainnet", "backend-testnet", "backend-devnet"]


def jobs(configs: list[dict]) -> dict[str, dict]:  # type: ignore[type-arg]
    return {job["job_name"]: job for job in configs}


def test_kubernetes_jobs_discover_the_three_backend_namespaces() -> None:
    by_name = jobs(kubernetes_scrape_configs(MonitoringConfig()))
    assert list(by_name) == list(BACKEND_JOBS) == ["gx-outbox-submitter", "gx-projector", "gx-backend-services"]
    roles = {name: job["kubernetes_sd_configs"][0]["role"] for name, job in by_name.items()}
    assert roles == {"gx-outbox-submitter": "service", "gx-projector": "service", "gx-backend-services": "pod"}
    for job in by_name.values():
        assert job["kubernetes_sd_configs"][0]["namespaces"]["names"] == NAMESPACES
        assert {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"} in job["relabel_configs"]


def test_kubernetes_jobs_keep_the_right_services_pods_and_metrics() -> None:
    by_name = jobs(kubernetes_scrape_configs(MonitoringConfig()))
    submitter_keep = by_name["gx-outbox-submitter"]["relabel_configs"][0]
    assert submitter_keep == {"source_labels": ["__meta_kubernetes_service_name"],
                              "regex": "outbox-submitter-metrics", "action": "keep"}
    assert by_name["gx-projector"]["relabel_configs"][0]["regex"] == "projector-metrics"
    assert by_name["gx-outbox-submitter"]["metric_relabel_configs"] == [{
        "source_labels": ["__name__"], "action": "keep",
        "regex": "outbox_.*|fabric_.*|circuit_breaker_.*|db_pool_.*|process_.*|python_.*"}]
    pod_rules = by_name["gx-backend-services"]["relabel_configs"]
    assert pod_rules[0] == {"source_labels": ["__meta_kubernetes_pod_label_tier",
                                              "__meta_kubernetes_pod_label_component"],
                            "regex": "backend;api", "action": "keep"}
    targets = {rule.get("target_label") for rule in pod_rules}
    assert {"__metrics_path__", "__address__", "__scheme__"} <= targets


def test_local_jobs_have_the_same_names_and_the_backend_local_namespace() -> None:
    by_name = jobs(local_scrape_configs(MonitoringConfig(), committed_devnet_settings()))
    for name in BACKEND_JOBS:
        (static,) = by_name[name]["static_configs"]
        assert static["labels"] == {"namespace": "backend-local"}
    assert by_name["gx-outbox-submitter"]["static_configs"][0]["targets"] == ["127.0.0.1:9101"]


def test_local_backend_jobs_scrape_the_ports_the_backend_listens_on_by_default() -> None:
    backend = BackendSettings.model_construct()
    by_name = jobs(local_scrape_configs(MonitoringConfig(), committed_devnet_settings()))
    assert {name: by_name[name]["static_configs"][0]["targets"] for name in BACKEND_JOBS} == {
        "gx-outbox-submitter": [f"127.0.0.1:{backend.submitter_metrics_port}"],
        "gx-projector": [f"127.0.0.1:{backend.projector_metrics_port}"],
        "gx-backend-services": [f"127.0.0.1:{backend.api_port}"],
    }


def test_local_fabric_jobs_follow_the_devnet_port_offset() -> None:
    devnet = DevnetSettings.model_construct(port_offset=20600)
    assert [(t.node, t.address) for t in devnet_operations_targets(devnet)] == [
        ("orderer0", "127.0.0.1:30043"), ("peer0-org1", "127.0.0.1:30044"), ("peer0-org2", "127.0.0.1:30045")]
    by_name = jobs(local_scrape_configs(MonitoringConfig(), devnet))
    assert [c["targets"] for c in by_name["fabric-peer"]["static_configs"]] == [["127.0.0.1:30044"],
                                                                              ["127.0.0.1:30045"]]
    assert by_name["fabric-orderer"]["static_configs"][0]["labels"] == {"node": "orderer0", "msp_id": "OrdererMSP"}


def test_local_prometheus_sends_alerts_to_the_configured_alertmanager_port() -> None:
    config = MonitoringConfig()
    config.local_stack.alertmanager_port = 29093
    prometheus = local_prometheus_config(config, committed_devnet_settings(), ["rules/x.yml"])
    assert prometheus["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["127.0.0.1:29093"]
    assert prometheus["rule_files"] == ["rules/x.yml"]


def test_local_alertmanager_routes_everything_to_the_webhook_recorder() -> None:
    config = MonitoringConfig()
    alertmanager = local_alertmanager_config(config)
    (receiver,) = alertmanager["receivers"]
    assert alertmanager["route"]["receiver"] == receiver["name"]
    assert receiver["webhook_configs"][0]["url"] == "http://127.0.0.1:19094/alerts"
    assert {"source_matchers": ['alertname="ProjectionLagCritical"'],
            "target_matchers": ['alertname="ProjectionLagExceedsSLO"'],
            "equal": ["namespace"]} in alertmanager["inhibit_rules"]
