"""The Kubernetes platform of runbook 01 without a cluster: its view of the ConfigMaps (new / changed / unchanged),
what it applies, how it compares the rules Prometheus loaded, and how the runbook records a Prometheus that does
not answer or refuses the reload — as checks an operator reads, not tracebacks. The platform is a stand-in that
records what it was asked; the real API server is in tests/integration/platform/test_runbook_01_kubernetes.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from gxlib.config import Environment, environment_profile
from gxlib.errors import Unavailable
from gxlib.monitoring.alerts import DeploymentTarget, rule_groups_document
from gxlib.monitoring.artifacts import ALERT_RULES, DASHBOARD, SCRAPE_CONFIG
from gxlib.monitoring.queries import rules_differing
from gxlib.monitoring.render import K8S_ALERTS_FILE, K8S_DASHBOARD_FILE, K8S_SCRAPE_FILE, Artifact
from gxlib.monitoring.settings import MonitoringConfig
from gxlib.platform.base import AppliedObject, ReloadMethod
from gxlib.platform.cluster import ClusterConnection
from gxlib.platform.errors import KubernetesApiError, PrometheusReloadError
from gxlib.platform.kubernetes_platform import KUBERNETES_FABRIC_JOBS, KubernetesPlatform
from gxlib.platform.pod_proxy import ApiServerAccess
from gxlib.platform.settings import KubernetesPlatformSettings
from gxlib.progress import Progress
from gxlib.runbook import InvalidParameter, MainnetNotConfirmed, prepare, runbook
from gxlib.runbook.checks import CheckStatus
from gxlib.runbook.deploy_monitoring import DeployMonitoring
from gxlib.runbook.parameters import DeployMonitoringParameters
from gxlib.runbook.session import Runbook
from gxlib.runbook.steps import StepOutcome

REPO = Path(__file__).resolve().parents[3]
RUNBOOK = "01-deploy-monitoring"
SERVER = "https://k8s.gx.test:6443"
PROXY = f"{SERVER}/api/v1/namespaces/fabric/pods/prometheus-0:9090/proxy"


class FakePlatform:
    """What KubernetesPlatform uses of KubernetesCluster; ``deployed``: path → deployed content
    (missing: deployed as rendered)."""

    def __init__(self, deployed: dict[str, str | None] | None = None, reload_error: Exception | None = None,
                 namespaces: tuple[str, ...] = ("fabric",), read_error: Exception | None = None) -> None:
        self.namespaces = namespaces
        self.read_error = read_error
        self.profile = environment_profile(Environment.DEVNET)
        self.monitoring = MonitoringConfig()
        self.settings = KubernetesPlatformSettings()
        self.progress = Progress(quiet=True)
        self.deployed = deployed or {}
        self.reload_error = reload_error
        self.applied: list[dict[str, Any]] = []
        self.reloads: list[ReloadMethod] = []

    @property
    def monitoring_namespace(self) -> str:
        return self.monitoring.kubernetes.monitoring_namespace

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        if self.read_error is not None:
            raise self.read_error
        assert (api_version, kind) == ("v1", "Namespace")
        return {"metadata": {"name": name}} if name in self.namespaces else None

    def deployed_artifacts(self, artifacts: list[Artifact]) -> dict[str, str | None]:
        return {str(a.path): self.deployed.get(str(a.path), a.content) for a in artifacts}

    def apply(self, objects: list[dict[str, Any]], *, dry_run: bool = False) -> list[AppliedObject]:
        self.applied.extend(objects)
        return [AppliedObject(kind=o["kind"], name=o["metadata"]["name"], namespace="fabric", changed=True)
                for o in objects]

    def reload_prometheus(self, method: ReloadMethod = ReloadMethod.HTTP) -> None:
        self.reloads.append(method)
        if self.reload_error is not None:
            raise self.reload_error


def _deployment(platform: FakePlatform, **kwargs: Any) -> KubernetesPlatform:
    cluster = ClusterConnection(None, SERVER, "ops", "/home/op/.kube/config")  # type: ignore[arg-type]
    return KubernetesPlatform(platform, cluster, ApiServerAccess(SERVER), **kwargs)  # type: ignore[arg-type]


def _unavailable(platform: KubernetesPlatform) -> str | None:
    """Why ``platform`` cannot be used (None: it can)."""
    try:
        platform.check_available()
    except Unavailable as exc:
        return exc.reason
    return None


def _session(dry_run: bool = False, **parameters: object) -> Runbook:
    _, params = prepare(RUNBOOK, {"env": "devnet", **parameters}, environ={})
    return Runbook(runbook(RUNBOOK), params, dry_run=dry_run, progress=Progress(quiet=True))


# --- the deployment ------------------------------------------------------------------------------------------
def test_artifacts_are_the_three_configmaps_each_new_changed_or_unchanged() -> None:
    platform = FakePlatform({str(K8S_SCRAPE_FILE): None, str(K8S_ALERTS_FILE): "apiVersion: v1\ndata: {}\n"})
    artifacts = _deployment(platform).artifacts()
    assert [(a.name, a.location, a.state) for a in artifacts] == [
        (SCRAPE_CONFIG, "ConfigMap fabric/prometheus-scrape-backend", "new"),
        (ALERT_RULES, "ConfigMap fabric/prometheus-alerts-backend", "changed"),
        (DASHBOARD, "ConfigMap fabric/grafana-dashboard-cqrs-backend", "unchanged"),
    ]
    rules = artifacts[1]
    diff = rules.diff()
    assert "+  alerts-backend.yml: |" in diff and "deployed: ConfigMap fabric/prometheus-alerts-backend" in diff


def test_write_applies_only_the_configmaps_it_is_given() -> None:
    platform = FakePlatform({str(K8S_ALERTS_FILE): "old"})
    deployment = _deployment(platform)
    rules = next(a for a in deployment.artifacts() if a.name == ALERT_RULES)
    assert deployment.write([rules]) == ["ConfigMap fabric/prometheus-alerts-backend"]
    (applied,) = platform.applied
    assert applied["metadata"] == {"name": "prometheus-alerts-backend", "namespace": "fabric",
                                   "labels": applied["metadata"]["labels"]}
    assert list(applied["data"]) == ["alerts-backend.yml"]
    dashboard = next(a for a in deployment.artifacts() if a.name == DASHBOARD)
    deployment.write([dashboard])
    assert platform.applied[-1]["metadata"]["labels"]["grafana-dashboard"] == "1"
    assert platform.applied[-1]["data"] == {K8S_DASHBOARD_FILE.name: dashboard.rendered}


def test_prometheus_is_reached_through_the_pod_proxy_unless_a_url_is_given() -> None:
    proxied = _deployment(FakePlatform())
    assert proxied.prometheus_url == PROXY and proxied.proxied
    assert proxied.namespace == "backend-devnet" and proxied.fabric_jobs == KUBERNETES_FABRIC_JOBS
    forwarded = _deployment(FakePlatform(), prometheus_url="http://127.0.0.1:19999/")
    assert forwarded.prometheus_url == "http://127.0.0.1:19999" and not forwarded.proxied
    assert "through the API server's pod proxy" in proxied.reload_action
    signal = _deployment(FakePlatform(), reload_method=ReloadMethod.SIGNAL)
    assert "`kill -HUP 1` in fabric/prometheus-0" in signal.reload_action


def test_the_cluster_is_unavailable_without_its_monitoring_namespace_or_when_the_api_server_refuses() -> None:
    assert _unavailable(_deployment(FakePlatform())) is None
    missing = _unavailable(_deployment(FakePlatform(namespaces=()))) or ""
    assert missing.startswith(f"namespace fabric does not exist on {SERVER} (context ops, kubeconfig ")
    assert "`gx k8s apply devnet`" in missing and "kube_context" in missing
    refused = KubernetesApiError("reading", "Namespace", "fabric", None, 403, "namespaces \"fabric\" is forbidden")
    reason = _unavailable(_deployment(FakePlatform(read_error=refused))) or ""
    assert f"{SERVER} (context ops" in reason and "HTTP 403" in reason and "RBAC" in reason
    down = _unavailable(_deployment(FakePlatform(read_error=ConnectionRefusedError(111, "Connection refused")))) or ""
    assert "does not answer (ConnectionRefusedError" in down and "kube_context / kubeconfig" in down


def test_the_fabric_job_is_the_one_the_shared_prometheus_scrapes() -> None:
    document = yaml.safe_load((REPO / "k8s/monitoring/stack/prometheus.yml").read_text())
    assert set(KUBERNETES_FABRIC_JOBS) <= {job["job_name"] for job in document["scrape_configs"]}


def _loaded(rendered: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rules as Prometheus' rules API reports them (duration in seconds, the expression re-printed)."""
    seconds = {"1m": 60.0, "2m": 120.0, "5m": 300.0, "10m": 600.0, "15m": 900.0, "30s": 30.0, "3m": 180.0}
    return [{"name": r["alert"], "query": " ".join(r["expr"].split()), "duration": seconds.get(r["for"], 0.0),
             "labels": dict(r["labels"]), "annotations": dict(r["annotations"]), "type": "alerting"}
            for r in rendered]


def test_loaded_rules_are_compared_by_name_for_labels_and_annotations() -> None:
    rendered = rule_groups_document(MonitoringConfig(), DeploymentTarget.KUBERNETES)["groups"][0]["rules"]
    assert {r["for"] for r in rendered} <= {"1m", "2m", "5m", "10m", "15m", "30s", "3m"}
    loaded = _loaded(rendered)
    assert rules_differing(rendered, loaded) == []
    # A threshold change shows in the summary Prometheus reports verbatim.
    loaded[5]["annotations"]["summary"] += " (old threshold)"
    loaded[6]["duration"] = 1.0
    del loaded[0]
    assert rules_differing(rendered, loaded) == sorted([rendered[0]["alert"], rendered[5]["alert"],
                                                        rendered[6]["alert"]])
    assert rules_differing(rendered, [*_loaded(rendered), {"name": "Extra", "duration": 0}]) == ["Extra"]


# --- the runbook's sections with the deployment ------------------------------------------------------------------
def test_a_refused_reload_is_a_failed_check_naming_pod_namespace_and_status_and_the_run_goes_on() -> None:
    refusal = PrometheusReloadError("prometheus-0", "fabric", "POST /-/reload through the API server's pod proxy",
                                    "HTTP 503: no endpoints available")
    platform = FakePlatform({str(K8S_ALERTS_FILE): "old"}, reload_error=refusal)
    deployment = _deployment(platform)
    deployment.prometheus_unready = lambda: None  # type: ignore[method-assign]
    rb = _session()
    deploy = DeployMonitoring(rb, deployment)
    deploy.check_target()
    deploy.render()
    deploy.apply()  # no exception: the refusal is recorded
    deploy.load_dashboard()
    for section in (deploy.verify_targets, deploy.verify_rules, deploy.verify_dashboard_queries):
        section()
    assert [(s.name, s.outcome) for s in rb.steps] == [
        ("write scrape config and alert rules", StepOutcome.CHANGED), ("reload Prometheus", StepOutcome.FAILED),
        ("load the dashboard", StepOutcome.ALREADY_DONE)]
    assert platform.reloads == [ReloadMethod.HTTP]
    failed = [c for c in rb.checks if c.status is CheckStatus.FAILED]
    assert [c.name for c in failed] == ["Prometheus loaded the deployed configuration"]
    detail = failed[0].detail
    assert "fabric/prometheus-0" in detail and "HTTP 503" in detail and detail.startswith("PrometheusReloadError")
    skipped = {c.name for c in rb.checks if c.status is CheckStatus.SKIPPED}
    assert skipped == {"scrape targets", "alert rules loaded", "dashboard queries"}


def test_with_prometheus_not_answering_the_configmaps_are_applied_and_nothing_is_reloaded() -> None:
    platform = FakePlatform({str(K8S_ALERTS_FILE): "old"})
    deployment = _deployment(platform)
    reason = "Prometheus in fabric/prometheus-0 is not ready: GET …/-/ready answered HTTP 503: no endpoints"
    deployment.prometheus_unready = lambda: reason  # type: ignore[method-assign]
    rb = _session()
    deploy = DeployMonitoring(rb, deployment)
    deploy.check_target()
    deploy.apply()
    deploy.load_dashboard()
    assert [(s.name, s.outcome) for s in rb.steps] == [
        ("write scrape config and alert rules", StepOutcome.CHANGED), ("load the dashboard", StepOutcome.ALREADY_DONE)]
    assert [o["metadata"]["name"] for o in platform.applied] == ["prometheus-alerts-backend"]
    assert platform.reloads == []
    by_name = {c.name: c for c in rb.checks}
    reachable = by_name[f"Prometheus reachable at {PROXY}"]
    assert reachable.status is CheckStatus.FAILED and reachable.detail.startswith(reason)
    assert by_name["Prometheus loaded the deployed configuration"].status is CheckStatus.SKIPPED
    platform_check = by_name["platform available"]
    assert platform_check.status is CheckStatus.PASSED and SERVER in platform_check.measured


def test_a_dry_run_with_prometheus_not_answering_fails_changes_nothing_and_says_what_a_real_run_would_do() -> None:
    platform = FakePlatform({str(K8S_ALERTS_FILE): "old"})
    deployment = _deployment(platform)
    deployment.prometheus_unready = lambda: "not ready"  # type: ignore[method-assign]
    rb = _session(dry_run=True)
    deploy = DeployMonitoring(rb, deployment)
    deploy.check_target()
    deploy.apply()
    deploy.load_dashboard()
    assert [(s.name, s.outcome) for s in rb.steps] == [
        ("write scrape config and alert rules", StepOutcome.WOULD_CHANGE),
        ("reload Prometheus", StepOutcome.WOULD_CHANGE), ("load the dashboard", StepOutcome.ALREADY_DONE)]
    assert platform.applied == [] and platform.reloads == []
    # Issue 13: the Prometheus the run would reload does not answer, so the dry run fails on it (it used to be
    # skipped) — still showing what it would change, and what a real run would do.
    (failed,) = [c for c in rb.checks if c.status is CheckStatus.FAILED]
    assert failed.name.startswith("Prometheus reachable") and "not ready" in failed.detail
    assert "a real run applies the artifacts, but cannot reload or verify" in failed.detail


def test_an_unreachable_cluster_stops_every_section_before_reading_anything() -> None:
    platform = FakePlatform()
    deployment = _deployment(platform)
    def unreachable() -> None:
        raise Unavailable(f"the Kubernetes API server {SERVER} does not answer")

    deployment.check_available = unreachable  # type: ignore[method-assign]
    rb = _session(dry_run=True)
    deploy = DeployMonitoring(rb, deployment)
    deploy.check_target()
    assert deploy.render() == []
    for section in (deploy.show_diff, deploy.apply, deploy.load_dashboard, deploy.verify_targets,
                    deploy.verify_rules, deploy.verify_dashboard_queries):
        section()
    (check,) = list(rb.checks)
    assert check.name == "platform available" and check.status is CheckStatus.FAILED and SERVER in check.detail
    assert rb.steps == [] and platform.applied == []


def test_without_a_kubeconfig_the_run_says_which_file_it_tried_and_what_to_do(monkeypatch: pytest.MonkeyPatch,
                                                                              tmp_path: Path) -> None:
    monkeypatch.setenv("GX_K8S_PLATFORM_KUBECONFIG", str(tmp_path / "missing-kubeconfig"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    rb = _session()
    deploy = DeployMonitoring(rb)
    deploy.check_target()
    (check,) = list(rb.checks)
    assert check.name == "platform available" and check.status is CheckStatus.FAILED
    assert "env=devnet: no Kubernetes cluster to act on" in check.detail
    assert str(tmp_path / "missing-kubeconfig") in check.detail and "pass kubeconfig" in check.detail


# --- parameters --------------------------------------------------------------------------------------------------
def _kubeconfig(path: Path, *contexts: str) -> Path:
    path.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Config", "current-context": contexts[0],
                                    "contexts": [{"name": c, "context": {"cluster": "c", "user": "u"}}
                                                 for c in contexts]}))
    return path


def test_kubernetes_parameters_are_validated_before_anything(tmp_path: Path) -> None:
    kubeconfig = _kubeconfig(tmp_path / "config", "ops", "staging")
    _, params = prepare(RUNBOOK, {"env": "testnet", "kubeconfig": str(kubeconfig), "kube_context": "staging",
                                  "reload_method": "signal"}, environ={})
    assert isinstance(params, DeployMonitoringParameters)
    assert params.kubeconfig == kubeconfig and params.kube_context == "staging"
    assert params.reload_method is ReloadMethod.SIGNAL
    refused = [
        ({"env": "devnet", "kubeconfig": str(tmp_path / "nope")}, "kubeconfig", "is not a file"),
        ({"env": "devnet", "kubeconfig": str(tmp_path)}, "kubeconfig", "is not a file"),
        ({"env": "devnet", "kubeconfig": str(kubeconfig), "kube_context": "prod"}, "kube_context",
         "'prod' is not a context of"),
        ({"env": "devnet", "kube_context": " "}, "kube_context", "cannot be empty"),
        ({"env": "devnet", "reload_method": "restart"}, "reload_method", "'http' or 'signal'"),
        ({"kubeconfig": str(kubeconfig)}, "kubeconfig", "env=local acts on this machine"),
        ({"reload_method": "signal"}, "reload_method", "env=local reloads the local Prometheus"),
    ]
    for values, parameter, why in refused:
        with pytest.raises(InvalidParameter) as caught:
            prepare(RUNBOOK, values, environ={})
        assert caught.value.parameter == parameter and why in caught.value.message, caught.value.message
    (tmp_path / "not-yaml").write_text("contexts: [")
    with pytest.raises(InvalidParameter, match="cannot be read as a kubeconfig"):
        prepare(RUNBOOK, {"env": "devnet", "kubeconfig": str(tmp_path / "not-yaml")}, environ={})
    with pytest.raises(MainnetNotConfirmed):
        prepare(RUNBOOK, {"env": "mainnet", "kubeconfig": str(kubeconfig)}, environ={})


def test_the_new_parameters_are_listed_with_their_descriptions() -> None:
    described = {name: (default, text) for name, default, text in runbook(RUNBOOK).describe_parameters()}
    assert described["kubeconfig"][0] is None and "$KUBECONFIG" in described["kubeconfig"][1]
    assert described["kube_context"][0] is None and "context" in described["kube_context"][1]
    assert described["reload_method"] == ("http", described["reload_method"][1])
    assert "kill -HUP 1" in described["reload_method"][1]
