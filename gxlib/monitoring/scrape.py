"""Prometheus scrape jobs of the backend (SPEC §5): Kubernetes service discovery, and the local static variant.

The job names are the same on both platforms (alerts select ``job=~"gx-.*"``). On Kubernetes the
``namespace`` label comes from ``__meta_kubernetes_namespace``; locally every backend target carries the
static label ``namespace: backend-local``. The local variant also scrapes the devnet's peer and orderer
operations endpoints (the "existing Fabric jobs" of a production Prometheus).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gxlib.config import DevnetSettings
from gxlib.monitoring.settings import MonitoringConfig

SUBMITTER_JOB = "gx-outbox-submitter"
PROJECTOR_JOB = "gx-projector"
BACKEND_SERVICES_JOB = "gx-backend-services"
BACKEND_JOBS: tuple[str, ...] = (SUBMITTER_JOB, PROJECTOR_JOB, BACKEND_SERVICES_JOB)
FABRIC_ORDERER_JOB = "fabric-orderer"
FABRIC_PEER_JOB = "fabric-peer"


def _keep_metrics(regex: str) -> list[dict[str, Any]]:
    return [{"source_labels": ["__name__"], "regex": regex, "action": "keep"}]


def _namespace_from_discovery() -> dict[str, Any]:
    return {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"}


def _kubernetes_sd(role: str, namespaces: list[str]) -> list[dict[str, Any]]:
    return [{"role": role, "namespaces": {"names": list(namespaces)}}]


def kubernetes_scrape_configs(config: MonitoringConfig) -> list[dict[str, Any]]:
    """The three backend jobs with Kubernetes service discovery (SPEC §5)."""
    k8s = config.kubernetes

    def service_job(job: str, service_name: str, keep_regex: str) -> dict[str, Any]:
        return {
            "job_name": job,
            "kubernetes_sd_configs": _kubernetes_sd("service", k8s.namespaces),
            "relabel_configs": [
                {"source_labels": ["__meta_kubernetes_service_name"], "regex": service_name, "action": "keep"},
                _namespace_from_discovery(),
                {"source_labels": ["__meta_kubernetes_service_name"], "target_label": "kubernetes_service"},
            ],
            "metric_relabel_configs": _keep_metrics(keep_regex),
        }

    pod_label_names = list(k8s.api_pod_labels)
    api_pods = {
        "job_name": BACKEND_SERVICES_JOB,
        "kubernetes_sd_configs": _kubernetes_sd("pod", k8s.namespaces),
        "relabel_configs": [
            {"source_labels": [f"__meta_kubernetes_pod_label_{name}" for name in pod_label_names],
             "regex": ";".join(k8s.api_pod_labels[name] for name in pod_label_names), "action": "keep"},
            # prometheus.io/path and prometheus.io/port say where the pod serves its metrics.
            {"source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_path"], "regex": "(.+)",
             "target_label": "__metrics_path__"},
            {"source_labels": ["__address__", "__meta_kubernetes_pod_annotation_prometheus_io_port"],
             "regex": r"([^:]+)(?::\d+)?;(\d+)", "replacement": "$1:$2", "target_label": "__address__"},
            {"source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_scheme"], "regex": "(https?)",
             "target_label": "__scheme__"},
            _namespace_from_discovery(),
            {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
        ],
    }
    return [
        service_job(SUBMITTER_JOB, k8s.submitter_service, k8s.submitter_metric_keep_regex),
        service_job(PROJECTOR_JOB, k8s.projector_service, k8s.projector_metric_keep_regex),
        api_pods,
    ]


@dataclass(frozen=True)
class FabricOperationsTarget:
    node: str
    role: str  # "orderer" | "peer"
    msp_id: str
    address: str  # host:port of the operations endpoint (plain HTTP on the devnet)


def devnet_operations_targets(devnet: DevnetSettings) -> list[FabricOperationsTarget]:
    """The operations endpoints of the devnet's orderer and peers, from its settings."""
    orderer_org = devnet.orderer_org
    targets = [FabricOperationsTarget(orderer_org.node.name, "orderer", orderer_org.msp_id,
                                      f"{devnet.host}:{devnet.port(orderer_org.node.operations_port)}")]
    targets += [FabricOperationsTarget(org.node_name, "peer", org.msp_id,
                                       f"{devnet.host}:{devnet.port(org.operations_port)}")
                for org in devnet.peer_orgs]
    return targets


def local_scrape_configs(config: MonitoringConfig, devnet: DevnetSettings) -> list[dict[str, Any]]:
    """The same three jobs with static targets (``namespace: backend-local``), plus the devnet's nodes."""
    local = config.local_targets
    k8s = config.kubernetes

    def static_job(job: str, port: int, keep_regex: str | None) -> dict[str, Any]:
        scrape: dict[str, Any] = {
            "job_name": job,
            "static_configs": [{"targets": [f"{local.host}:{port}"], "labels": {"namespace": local.namespace}}],
        }
        if keep_regex:
            scrape["metric_relabel_configs"] = _keep_metrics(keep_regex)
        return scrape

    def fabric_job(job: str, role: str) -> dict[str, Any]:
        return {
            "job_name": job,
            "static_configs": [
                {"targets": [target.address], "labels": {"node": target.node, "msp_id": target.msp_id}}
                for target in devnet_operations_targets(devnet) if target.role == role
            ],
        }

    return [
        static_job(SUBMITTER_JOB, local.submitter_metrics_port, k8s.submitter_metric_keep_regex),
        static_job(PROJECTOR_JOB, local.projector_metrics_port, k8s.projector_metric_keep_regex),
        static_job(BACKEND_SERVICES_JOB, local.api_metrics_port, None),
        fabric_job(FABRIC_ORDERER_JOB, "orderer"),
        fabric_job(FABRIC_PEER_JOB, "peer"),
    ]


def local_prometheus_config(config: MonitoringConfig, devnet: DevnetSettings, rule_files: list[str]) -> dict[str, Any]:
    """A complete prometheus.yml for the local stack."""
    stack = config.local_stack
    return {
        "global": {
            "scrape_interval": f"{stack.scrape_interval_s}s",
            "evaluation_interval": f"{stack.evaluation_interval_s}s",
            "external_labels": {"environment": "local"},
        },
        "rule_files": list(rule_files),
        "alerting": {"alertmanagers": [{"static_configs": [
            {"targets": [f"{stack.host}:{stack.alertmanager_port}"]}]}]},
        "scrape_configs": local_scrape_configs(config, devnet),
    }


def kubernetes_scrape_document(config: MonitoringConfig) -> dict[str, Any]:
    """The backend jobs as a Prometheus configuration document (``scrape_configs:`` only).

    Prometheus 2.42 has no ``scrape_config_files``; the deploy runbook merges these jobs into the
    ``scrape_configs`` of the deployed prometheus.yml, next to the existing Fabric jobs.
    """
    return {"scrape_configs": kubernetes_scrape_configs(config)}
