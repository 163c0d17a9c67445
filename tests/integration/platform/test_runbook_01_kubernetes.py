"""Runbook 01 with env=devnet through the platform layer, against the session's real kube-apiserver (etcd,
controller-manager, scheduler, kwok's fake nodes), run the way an operator runs it: `gxlib.runbook.run` executes
the notebook with the control plane's kubeconfig as the ``kubeconfig`` parameter.

What is real and what cannot be:
- The monitoring stack of ``k8s/monitoring`` is applied (namespace ``fabric``, the Prometheus StatefulSet with its
  pod ``prometheus-0`` scheduled on a kwok node, the rendered ConfigMaps). The runbook reads the ConfigMaps, diffs
  them, applies them by server-side apply and reads them back — all real.
- kwok pods run no process: there is no Prometheus behind ``prometheus-0``. Its readiness, the reload through the
  API server's pod proxy and every verification (targets up, 18 rules loaded, dashboard queries) therefore cannot
  pass here. What is tested instead is that each of them fails the way an operator needs: a failed check naming
  ``fabric/prometheus-0`` and the HTTP status the API server answered, never a traceback; the ConfigMaps are applied
  all the same; a second run finds them "already done". The reload and the verification against a Prometheus that
  runs are tested with the local stack (tests/integration/runbook/test_runbook_01_deploy_monitoring.py).

Only ``k8s/monitoring`` is applied here, not the devnet overlay: the overlay tests of test_kubernetes_platform.py
require the backend namespaces' objects not to exist before their own first apply.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import nbformat
import pytest
import yaml
from kubernetes import client as k8s_client

from gxlib.config import Environment
from gxlib.k8sbuild.controlplane import LocalControlPlane, free_port
from gxlib.monitoring.render import committed_artifacts, render_artifacts
from gxlib.monitoring.settings import AlertThresholds, MonitoringConfig, committed_devnet_settings
from gxlib.platform.base import ReloadMethod
from gxlib.platform.errors import PrometheusReloadError
from gxlib.platform.kubernetes import KubernetesCluster
from gxlib.platform.kubernetes_platform import KubernetesPlatform
from gxlib.platform.pod_proxy import ApiServerAccess
from gxlib.platform.settings import platform_settings
from gxlib.progress import Progress
from gxlib.runbook import RunbookFailed, prepare, run, runbook
from gxlib.runbook.checks import CheckStatus
from gxlib.runbook.deploy_monitoring import DeployMonitoring
from gxlib.runbook.parameters import DeployMonitoringParameters
from gxlib.runbook.session import Runbook
from gxlib.runbook.settings import RunbookSettings
from tests.integration.platform.conftest import K8S_DIR, kustomize_build, make_platform

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

RUNBOOK = "01-deploy-monitoring"
CONFIGMAPS = ("prometheus-scrape-backend", "prometheus-alerts-backend", "grafana-dashboard-cqrs-backend")
WRITE, RELOAD, DASHBOARD = "write scrape config and alert rules", "reload Prometheus", "load the dashboard"
# The committed outbox_pending warning threshold is 100; the drifted deployment has 150.
DRIFTED = MonitoringConfig(thresholds=AlertThresholds(outbox_pending_warning=150))


@pytest.fixture(scope="module")
def platform(api: k8s_client.ApiClient, kustomize: Path, prometheus_volume: str) -> KubernetesCluster:
    """The devnet platform, with the monitoring stack applied and prometheus-0 Running on a kwok node."""
    platform = make_platform(api, Environment.DEVNET)
    platform.apply(kustomize_build(kustomize, K8S_DIR / "monitoring"))

    def running() -> tuple[bool, str | None]:
        pod = {p.name: p for p in platform.pods("fabric", "app.kubernetes.io/name=prometheus")}.get("prometheus-0")
        return pod is not None and pod.phase == "Running", repr(pod)

    platform.progress.wait_until("prometheus-0 Running", running, timeout_s=120, interval_s=0.5)
    return platform


@pytest.fixture(scope="module")
def drifted(platform: KubernetesCluster) -> Iterator[None]:
    """The deployed rules ConfigMap drifted from the code (threshold 150, the code says 100); committed again after
    the module, as the other platform tests expect."""
    platform.apply_monitoring(render_artifacts(DRIFTED, committed_devnet_settings()))
    assert platform.monitoring_diff(committed_artifacts()) == ["prometheus-alerts-backend"]
    yield
    platform.apply_monitoring(committed_artifacts())


def _configmaps(platform: KubernetesCluster) -> dict[str, tuple[dict[str, str], str]]:
    """name → (data, resourceVersion) of the three monitoring ConfigMaps, read back from the API server."""
    found = {}
    for name in CONFIGMAPS:
        obj = platform.get("v1", "ConfigMap", name, "fabric")
        assert obj is not None, name
        found[name] = (obj.get("data") or {}, obj["metadata"]["resourceVersion"])
    return found


def _parameters(control_plane: LocalControlPlane, **extra: object) -> dict[str, object]:
    return {"env": "devnet", "kubeconfig": str(control_plane.kubeconfig), "targets_timeout_s": 5,
            "rules_timeout_s": 10, **extra}


def _run(tmp_path: Path, gx_kernel: str, parameters: dict[str, object], **kwargs: Any) -> tuple[dict[str, Any], Path,
                                                                                             bool]:
    """Run the runbook; its summary, its executed notebook, and whether it passed."""
    settings = RunbookSettings(runs_dir=tmp_path / "runs", kernel_name=gx_kernel)
    try:
        record = run(RUNBOOK, parameters, settings=settings, progress=Progress(quiet=True), **kwargs)
    except RunbookFailed as failure:
        # A failed check ends the run in its summary cell: the summary is there (not an exception in a section).
        assert failure.summary is not None and failure.exception == "ChecksFailed", failure
        return failure.summary, failure.record_dir / f"{RUNBOOK}.ipynb", False
    assert record.summary is not None
    return record.summary, record.notebook, True


def _steps(summary: dict[str, Any]) -> dict[str, str]:
    return {step["name"]: step["outcome"] for step in summary["steps"]}


def _checks(summary: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {check["name"]: check for check in summary["checks"]}


def _outputs(notebook: Path) -> str:
    nb = nbformat.read(notebook, as_version=4)
    return "\n".join(json.dumps(cell.get("outputs", [])) for cell in nb.cells)


def _proxy(control_plane: LocalControlPlane) -> str:
    return f"{control_plane.server}/api/v1/namespaces/fabric/pods/prometheus-0:9090/proxy"


# --- the access the runbook reads Prometheus with --------------------------------------------------------------
def test_the_access_built_from_the_kubeconfig_authenticates_to_the_api_server(api: k8s_client.ApiClient,
                                                                               platform: KubernetesCluster) -> None:
    access = ApiServerAccess.from_configuration(api.configuration)
    session = access.requests_session()
    assert session.get(f"{access.server}/api/v1/namespaces/fabric", timeout=10).status_code == 200
    session.headers.pop("authorization")
    assert session.get(f"{access.server}/api/v1/namespaces/fabric", timeout=10).status_code in (401, 403)


# --- the runbook through papermill ---------------------------------------------------------------------------------
def test_a_dry_run_lists_the_drifted_configmap_changes_nothing_and_fails_on_the_prometheus_kwok_cannot_run(
        control_plane: LocalControlPlane, platform: KubernetesCluster, drifted: None, gx_kernel: str,
        tmp_path: Path) -> None:
    before = _configmaps(platform)
    summary, notebook, passed = _run(tmp_path, gx_kernel, _parameters(control_plane), dry_run=True)
    # Issue 13: a dry run fails when an endpoint the run would use does not answer — here the Prometheus the run
    # would reload (kwok runs no process). It still shows the plan and the diff.
    assert not passed and summary["dry_run"]
    assert summary["failed_checks"] == [f"Prometheus reachable at {_proxy(control_plane)}"]
    steps = {step["name"]: step for step in summary["steps"]}
    assert {name: step["outcome"] for name, step in steps.items()} == {
        WRITE: "would change (dry run)", RELOAD: "would change (dry run)", DASHBOARD: "already done"}
    # 4 lines: the rule's expression and its summary, each once removed and once added.
    assert steps[WRITE]["changes"] == "ConfigMap fabric/prometheus-alerts-backend (changed, 4 lines)"
    checks = _checks(summary)
    assert checks["platform available"]["status"] == "pass"
    assert control_plane.server in checks["platform available"]["measured"]
    reachable = checks[f"Prometheus reachable at {_proxy(control_plane)}"]
    assert reachable["status"] == "FAIL" and "a real run applies the artifacts" in reachable["detail"]
    outputs = _outputs(notebook)
    assert "outbox_pending_commands" in outputs and "> 150" in outputs and "> 100" in outputs  # the diff
    assert _configmaps(platform) == before  # same data, same resourceVersion: nothing was written


def test_a_real_run_applies_the_configmap_and_fails_on_the_prometheus_kwok_cannot_run(
        control_plane: LocalControlPlane, platform: KubernetesCluster, drifted: None, gx_kernel: str,
        tmp_path: Path) -> None:
    before = _configmaps(platform)
    summary, _, passed = _run(tmp_path, gx_kernel, _parameters(control_plane))
    assert _steps(summary) == {WRITE: "changed", DASHBOARD: "already done"}
    # The ConfigMap is now the fresh render; the other two were not written.
    assert platform.monitoring_diff(committed_artifacts()) == []
    after = _configmaps(platform)
    assert after["prometheus-alerts-backend"][1] != before["prometheus-alerts-backend"][1]
    for name in ("prometheus-scrape-backend", "grafana-dashboard-cqrs-backend"):
        assert after[name] == before[name]
    # No process answers in prometheus-0: the run fails on exactly that, with what the API server answered.
    assert not passed and summary["failed_checks"] == [f"Prometheus reachable at {_proxy(control_plane)}"]
    reachable = _checks(summary)[f"Prometheus reachable at {_proxy(control_plane)}"]
    assert "fabric/prometheus-0" in reachable["detail"] and re.search(r"HTTP [45]\d\d", reachable["detail"])
    assert "the artifacts are applied all the same" in reachable["detail"]
    checks = _checks(summary)
    assert checks["Prometheus loaded the deployed configuration"]["status"] == "skipped"
    assert {checks[name]["status"] for name in ("scrape targets", "alert rules loaded", "dashboard queries")} == {
        "skipped"}


@pytest.fixture
def ready_stand_in() -> Iterator[str]:
    """An HTTP server that answers ``/-/ready`` like Prometheus (and nothing else), as a port-forward would: the
    runbook then gets past the readiness check and reloads through the pod proxy, which kwok cannot serve."""
    class Ready(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status = 200 if self.path == "/-/ready" else 404
            self.send_response(status)
            self.end_headers()
            self.wfile.write(b"Prometheus Server is Ready.\n" if status == 200 else b"")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Ready)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        thread.join(timeout=5)
        server.server_close()


def test_a_reload_refused_through_the_pod_proxy_is_a_check_naming_pod_namespace_and_status(
        control_plane: LocalControlPlane, platform: KubernetesCluster, drifted: None, gx_kernel: str, tmp_path: Path,
        ready_stand_in: str) -> None:
    platform.apply_monitoring(render_artifacts(DRIFTED, committed_devnet_settings()))  # something to reload
    summary, _, passed = _run(tmp_path, gx_kernel, _parameters(control_plane, prometheus_url=ready_stand_in))
    assert _steps(summary) == {WRITE: "changed", RELOAD: "FAILED", DASHBOARD: "already done"}
    assert not passed and summary["failed_checks"] == ["Prometheus loaded the deployed configuration"]
    detail = _checks(summary)["Prometheus loaded the deployed configuration"]["detail"]
    assert detail.startswith("PrometheusReloadError: reloading Prometheus in fabric/prometheus-0 by POST /-/reload "
                             "through the API server's pod proxy failed: HTTP ")
    assert re.search(r"HTTP [45]\d\d", detail)
    assert platform.monitoring_diff(committed_artifacts()) == []  # applied before the reload was tried


def test_a_second_run_finds_the_configmaps_already_applied_and_writes_nothing(
        control_plane: LocalControlPlane, platform: KubernetesCluster, drifted: None, gx_kernel: str,
        tmp_path: Path) -> None:
    _run(tmp_path, gx_kernel, _parameters(control_plane))
    before = _configmaps(platform)
    summary, _, passed = _run(tmp_path, gx_kernel, _parameters(control_plane))
    assert _steps(summary) == {WRITE: "already done", DASHBOARD: "already done"}
    assert _configmaps(platform) == before
    assert not passed and len(summary["failed_checks"]) == 1  # still: no Prometheus runs in prometheus-0


# --- the same pieces without a notebook ----------------------------------------------------------------------------
def _deployment(control_plane: LocalControlPlane, **parameters: object) -> KubernetesPlatform:
    _, params = prepare(RUNBOOK, _parameters(control_plane, **parameters), environ={})
    assert isinstance(params, DeployMonitoringParameters)
    return KubernetesPlatform.connect(params.env, platform_settings(params.kubeconfig, params.kube_context),
                                      prometheus_url=params.prometheus_url, reload_method=params.reload_method,
                                      reload_timeout_s=params.rules_timeout_s)


def test_the_deployment_reload_names_the_pod_namespace_and_status(control_plane: LocalControlPlane,
                                                                  platform: KubernetesCluster) -> None:
    deployment = _deployment(control_plane)
    deployment.check_available()
    assert deployment.cluster.context == "gx-test"
    with pytest.raises(PrometheusReloadError) as caught:
        deployment.reload_prometheus()
    assert caught.value.pod == "prometheus-0" and caught.value.namespace == "fabric"
    assert re.search(r"HTTP [45]\d\d", str(caught.value))
    assert deployment.reload_method is ReloadMethod.HTTP and not deployment.config_loaded()


def test_an_api_server_that_does_not_answer_stops_the_run_naming_server_and_context(
        control_plane: LocalControlPlane, tmp_path: Path) -> None:
    document = yaml.safe_load(control_plane.kubeconfig.read_text())
    nowhere = f"https://127.0.0.1:{free_port()}"
    document["clusters"][0]["cluster"]["server"] = nowhere
    kubeconfig = tmp_path / "kubeconfig-nowhere.yaml"
    kubeconfig.write_text(yaml.safe_dump(document))
    _, params = prepare(RUNBOOK, {"env": "devnet", "kubeconfig": str(kubeconfig)}, environ={})
    rb = Runbook(runbook(RUNBOOK), params, dry_run=True, progress=Progress(quiet=True))
    deploy = DeployMonitoring(rb)
    deploy.check_target()
    assert deploy.render() == []
    (check,) = list(rb.checks)
    assert check.name == "platform available" and check.status is CheckStatus.FAILED
    assert f"the Kubernetes API server {nowhere} (context gx-test, kubeconfig {kubeconfig}) does not answer" \
        in check.detail
