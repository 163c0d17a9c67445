"""Runbook 05 off local: Prometheus and Alertmanager reached by URL or through the API server's proxy, as the
kubeconfig's user — and the drill refused there — without a cluster."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gxlib.platform.endpoints import MonitoringEndpoints, kubernetes_endpoints
from gxlib.platform.pod_proxy import service_proxy_url
from gxlib.platform.settings import KubernetesPlatformSettings, platform_settings
from gxlib.progress import Progress
from gxlib.runbook import prepare, runbook
from gxlib.runbook.checks import CheckStatus
from gxlib.runbook.parameters import ValidateMonitoringParameters
from gxlib.runbook.session import Runbook
from gxlib.runbook.validate_monitoring import ValidateMonitoring

REPO = Path(__file__).resolve().parents[3]
RUNBOOK = "05-validate-monitoring"
TOKEN = "kube-t0ken"


def _kubeconfig(path: Path, server: str) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "gx-devnet",
        "clusters": [{"name": "gx", "cluster": {"server": server, "insecure-skip-tls-verify": True}}],
        "users": [{"name": "op", "user": {"token": TOKEN}}],
        "contexts": [{"name": "gx-devnet", "context": {"cluster": "gx", "user": "op"}}],
    }))
    return path


def _params(**raw: object) -> ValidateMonitoringParameters:
    _, params = prepare(RUNBOOK, {"env": "devnet", **raw}, environ={})
    assert isinstance(params, ValidateMonitoringParameters)
    return params


def _endpoints(params: ValidateMonitoringParameters) -> MonitoringEndpoints:
    return kubernetes_endpoints(params.env, platform_settings(params.kubeconfig, params.kube_context),
                                prometheus_url=params.prometheus_url, alertmanager_url=params.alertmanager_url)


def test_a_service_is_proxied_under_its_name_and_port() -> None:
    assert (service_proxy_url("https://k8s.test:6443/", "fabric", "alertmanager", 9093)
            == "https://k8s.test:6443/api/v1/namespaces/fabric/services/alertmanager:9093/proxy")


def test_the_alertmanager_settings_are_the_manifests_service() -> None:
    documents = list(yaml.safe_load_all((REPO / "k8s/monitoring/stack/alertmanager.yaml").read_text()))
    service = next(d for d in documents if d["kind"] == "Service")
    settings = KubernetesPlatformSettings()
    assert service["metadata"]["name"] == settings.alertmanager_service
    assert [p["port"] for p in service["spec"]["ports"]] == [settings.alertmanager_port]


def test_with_both_urls_given_no_cluster_is_asked() -> None:
    found = _endpoints(_params(prometheus_url="http://127.0.0.1:29090/",
                                         alertmanager_url="http://127.0.0.1:29093"))
    assert (found.prometheus.url, found.prometheus.access) == ("http://127.0.0.1:29090", None)
    assert found.alertmanager.description == "Alertmanager at http://127.0.0.1:29093"


def test_otherwise_both_are_reached_through_the_api_server_as_the_kubeconfigs_user(tmp_path: Path) -> None:
    server = "https://k8s.gx.test:6443"
    found = _endpoints(_params(kubeconfig=str(_kubeconfig(tmp_path / "config", server)),
                                         alertmanager_url="http://127.0.0.1:29093"))
    assert found.prometheus.url == f"{server}/api/v1/namespaces/fabric/pods/prometheus-0:9090/proxy"
    assert found.prometheus.access is not None and TOKEN in str(dict(found.prometheus.access.headers))
    assert "fabric/prometheus-0 (through the API server's pod proxy)" in found.prometheus.description
    assert found.alertmanager.access is None, "a given URL is plain HTTP"
    proxied = _endpoints(_params(kubeconfig=str(tmp_path / "config")))
    assert proxied.alertmanager.url == f"{server}/api/v1/namespaces/fabric/services/alertmanager:9093/proxy"


def test_without_a_cluster_or_urls_the_run_stops_saying_what_to_give(tmp_path: Path) -> None:
    config = _kubeconfig(tmp_path / "config", "https://127.0.0.1:9")
    params = _params(kubeconfig=str(config))
    rb = Runbook(runbook(RUNBOOK), params, dry_run=False, progress=Progress(quiet=True))
    monitoring = ValidateMonitoring(rb)
    monitoring.connect()
    check = next(iter(rb.checks))
    assert (check.name, check.status) == ("Prometheus reachable", CheckStatus.FAILED)
    assert "fabric/prometheus-0" in check.detail and "set prometheus_url" in check.detail
    monitoring.breaker_drill()
    assert monitoring.stopped is not None and len(list(rb.checks)) == 1, "later sections do nothing"


@pytest.mark.parametrize(("env", "why"), [
    ("devnet", "off by default on devnet: set it true to stop the devnet's Gateway peer"),
    ("testnet", "only the local profile and devnet can stop the Gateway peer")])
def test_off_local_the_drill_section_is_skipped_by_default_saying_why(env: str, why: str) -> None:
    params = _params(env=env, prometheus_url="http://127.0.0.1:29090", alertmanager_url="http://127.0.0.1:29093")
    rb = Runbook(runbook(RUNBOOK), params, dry_run=False, progress=Progress(quiet=True))
    monitoring = ValidateMonitoring(rb)
    monitoring.queries = object()  # type: ignore[assignment]  # connected, as far as the section is concerned
    monitoring.breaker_drill()
    check = next(iter(rb.checks))
    assert check.status is CheckStatus.SKIPPED
    assert why in check.detail
