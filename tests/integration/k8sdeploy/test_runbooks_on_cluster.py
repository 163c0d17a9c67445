"""The five runbooks with ``env=devnet`` on the real single-node cluster, through papermill as CI and operators run
them, with the parameters `gx demo --env devnet` gives them (gxlib.demo_k8s.ClusterRun): the cluster's kubeconfig,
the host devnet's document for 02, its state dir for 05's drill; the API, its token and the backend's Fabric network
come from the cluster.

One deploy for the module (`gx k8s deploy`: cluster, images, overlay, the devnet on the node IP, chaincode 1.0 in
the pods), under the host's real-node lock, with its own state dir, bridge, ports (GX_TEST_PORT_OFFSET) and devnet
ports; taken down at the end. One test per runbook, in the runbooks' order, so a failure names the runbook; then a
second run of 01, 02, 03 and 04 is "already done", a second run of 05 runs the breaker drill (last: its failed
attempts stay in the SLO windows for 5 minutes), and a second deploy (warm) changes nothing.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from gxlib.config import Environment
from gxlib.demo_k8s import ClusterRun, cluster_run
from gxlib.k8scluster import containerd
from gxlib.k8scluster.cluster import NodeCluster
from gxlib.k8scluster.settings import K8sClusterSettings
from gxlib.k8sdeploy.deploy import DeployReport, OverlayDeployment
from gxlib.k8sdeploy.settings import DeploySettings
from gxlib.platform.kubernetes_chaincode import kubernetes_operator
from gxlib.platform.settings import ChaincodeAddressing, KubernetesPlatformSettings
from gxlib.progress import Progress
from gxlib.runbook import RunbookFailed, run
from gxlib.runbook.settings import RunbookSettings
from tests.conftest import BASE_TEST_OFFSET
from tests.integration.k8scluster.host_lock import one_node_on_this_host, skip_unless_this_host_runs_a_node
from tests.integration.k8sdeploy.test_devnet_overlay import AlertSink

pytestmark = [pytest.mark.integration, pytest.mark.timeout(5400)]

PORT_OFFSET = int(os.environ.get("GX_TEST_PORT_OFFSET", "0"))
SINK_PORT = 19193 + PORT_OFFSET
DEVNET_OFFSET = BASE_TEST_OFFSET + 900


@dataclass
class Deployed:
    deployment: OverlayDeployment
    report: DeployReport
    run: ClusterRun
    runs_dir: Path
    kernel: str
    sink: AlertSink
    cold_s: float
    results: dict[str, dict[str, Any]] = field(default_factory=dict)

    def runbook(self, name: str, drill: bool = False, kernel_extra: dict[str, str] | None = None,
                **extra: object) -> dict[str, Any]:
        """The runbook's summary (a failed run's too), with its wall time; every run is recorded in ``results``."""
        parameters = {**self.run.parameters(name, drill), **extra}
        settings = RunbookSettings(runs_dir=self.runs_dir, kernel_name=self.kernel)
        environ = self.run.environ(dict(os.environ))
        started = time.monotonic()
        try:
            record = run(name, parameters, settings=settings, progress=Progress(), environ=environ,
                         kernel_environ={**self.run.kernel_environ(), **(kernel_extra or {})})
            summary = record.summary or {}
        except RunbookFailed as failure:
            summary = failure.summary or {"passed": False, "error": str(failure)}
        summary = {**summary, "seconds": round(time.monotonic() - started, 1)}
        self.results.setdefault(name, summary)
        print(f"\n{name}: {'passed' if summary.get('passed') else 'FAILED'} in {summary['seconds']:.0f}s")
        return summary


def _failures(summary: dict[str, Any]) -> str:
    failed = [c for c in summary.get("checks", []) if c.get("status") not in ("pass", "skip")]
    steps = [s for s in summary.get("steps", []) if s.get("outcome") == "failed"]
    return json.dumps({"error": summary.get("error"), "failed checks": failed, "failed steps": steps}, indent=1)[:6000]


def _committed_version(deployed: Deployed) -> str | None:
    fabric = deployed.deployment.fabric
    operator = kubernetes_operator(Environment.DEVNET, KubernetesPlatformSettings(
        kubeconfig=deployed.run.kubeconfig, chaincode_addressing=ChaincodeAddressing.CLUSTER_IP),
        fabric_network_file=fabric.network_file, channel=fabric.profile.channel, chaincode_name="gxtv3",
        chaincode_addresses={}, restart_timeout_s=60, progress=Progress())
    committed = operator.committed()
    return committed.version if committed is not None else None


def _steps(summary: dict[str, Any]) -> dict[str, str]:
    return {step["name"]: step["outcome"] for step in summary.get("steps", [])}


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory, gx_kernel: str) -> Iterator[Deployed]:
    root = tmp_path_factory.mktemp("k8srunbooks")
    settings = K8sClusterSettings(state_dir=root / "state", bridge="gxrunbk0", pod_cidr="10.244.0.0/24",
                                  node_name="gx-runbooks-node").with_port_offset(PORT_OFFSET)
    skip_unless_this_host_runs_a_node(settings)
    progress = Progress()
    with one_node_on_this_host("test_runbooks_on_cluster"):
        node = NodeCluster(settings, progress=progress)
        sink: AlertSink | None = None
        deployment: OverlayDeployment | None = None
        try:
            node.up()  # the sink binds the node's address, which exists once the bridge does
            sink = AlertSink(settings.node_ip, SINK_PORT)
            deployment = OverlayDeployment(settings, DeploySettings(alert_webhook_url=sink.url, ready_timeout_s=600,
                                                                    devnet_port_offset=DEVNET_OFFSET),
                                           progress=progress)
            started = time.monotonic()
            report = deployment.deploy()
            cold = time.monotonic() - started
            print(f"\ncold deploy (cluster already up): {cold:.0f}s")
            yield Deployed(deployment, report, cluster_run(deployment), root / "runs", gx_kernel, sink, cold)
        finally:
            if sink is not None:
                sink.close()
            if deployment is not None:
                deployment.down()  # the devnet, then the cluster
            node.down()  # nothing left to stop when the deployment's down ran


def test_the_deploy_serves_chaincode_1_0_from_the_pods_and_gives_each_worker_its_fabric_secret(
        deployed: Deployed) -> None:
    assert deployed.report.fabric is not None and deployed.report.fabric.version == "1.0"
    assert all(state.done for state in deployed.report.readiness), [s.to_json() for s in deployed.report.readiness
                                                                   if not s.done]
    keys: dict[str, set[str]] = {}
    for name in ("backend-fabric-client", "backend-fabric-reader"):
        secret = deployed.deployment.kubectl.get_json("secret", name, "-n", "backend-devnet") or {}
        keys[name] = {key for key in secret.get("data", {}) if key.endswith("-key.pem")}
        assert "network.json" in secret.get("data", {}), name
    # The submitter signs as the super admin and the service; the projector (Ready above) reads as the service.
    assert keys == {"backend-fabric-client": {"super_admin-key.pem", "service-key.pem"},
                    "backend-fabric-reader": {"service-key.pem"}}


def test_01_deploy_monitoring_passes(deployed: Deployed) -> None:
    summary = deployed.runbook("01-deploy-monitoring")
    assert summary.get("passed"), _failures(summary)


CHAINCODE_DEPLOYMENTS = ("gxtv3-org1-devnet", "gxtv3-org2-devnet")  # in namespace fabric


def _deployment_images(deployed: Deployed) -> dict[str, str]:
    kubectl = deployed.deployment.kubectl
    found: dict[str, str] = {}
    for name in CHAINCODE_DEPLOYMENTS:
        doc = kubectl.get_json("deployment", name, "-n", "fabric") or {}
        (container,) = [c for c in doc["spec"]["template"]["spec"]["containers"] if c["name"] == "chaincode"]
        found[name] = container["image"]
    return found


def _pod_images(deployed: Deployed) -> set[str]:
    pods = deployed.deployment.kubectl.get_json("pods", "-n", "fabric", "-l", "app.kubernetes.io/component=chaincode")
    return {c["image"] for pod in (pods or {}).get("items", []) if not pod["metadata"].get("deletionTimestamp")
            for c in pod["spec"]["containers"]}


def test_02_builds_the_chaincode_image_imports_it_and_rolls_the_pods_to_it_with_1_1(
        deployed: Deployed, tmp_path_factory: pytest.TempPathFactory) -> None:
    # The Deployments run an older image (the deployed content, tagged :previous, stands in for older sources), the
    # node no longer has the image of the current sources, and the runbook's image cache is empty: 02 must build
    # it, import it and roll the pods to it along with the 1.1 package.
    cluster = deployed.deployment.cluster
    current = _pod_images(deployed)
    assert len(current) == 1
    (reference,) = current
    previous = reference.rsplit(":", 1)[0] + ":previous"
    assert containerd.ctr(cluster.settings, cluster.layout, "images", "tag", "--force", reference,
                          previous).returncode == 0
    kubectl = deployed.deployment.kubectl
    for name in CHAINCODE_DEPLOYMENTS:
        set_image = kubectl.run("set", "image", f"deployment/{name}", f"chaincode={previous}", "-n", "fabric")
        assert set_image.returncode == 0, set_image.stderr
        assert kubectl.run("rollout", "status", f"deployment/{name}", "-n", "fabric", "--timeout=180s",
                           timeout_s=200).returncode == 0
    assert containerd.ctr(cluster.settings, cluster.layout, "images", "rm", reference).returncode == 0
    assert reference not in containerd.image_names(cluster.settings, cluster.layout)

    cache = tmp_path_factory.mktemp("image-cache")
    summary = deployed.runbook("02-upgrade-chaincode", kernel_extra={"GX_IMAGES_CACHE_ROOT": str(cache)})
    assert summary.get("passed"), _failures(summary)
    assert _committed_version(deployed) == "1.1"
    assert _steps(summary)["chaincode image on the node"] == "changed"
    image_check = {c["name"]: c for c in summary["checks"]}["chaincode image"]
    assert image_check["status"] == "pass" and f"{reference}: built in {cache}" in image_check["measured"]
    assert reference in containerd.image_names(cluster.settings, cluster.layout)
    assert set(_deployment_images(deployed).values()) == {reference}
    assert _pod_images(deployed) == {reference}


def test_03_bootstrap_system_passes(deployed: Deployed) -> None:
    summary = deployed.runbook("03-bootstrap-system")
    assert summary.get("passed"), _failures(summary)
    # The backend's network has no org admin: the service identity reads the committed definition itself.
    checks = {c["name"]: c for c in summary["checks"]}
    assert checks["chaincode committed and answering"]["measured"] == "gxtv3 1.1 seq 2"


def test_04_validate_cqrs_passes(deployed: Deployed) -> None:
    summary = deployed.runbook("04-validate-cqrs")
    assert summary.get("passed"), _failures(summary)


def test_05_validate_monitoring_passes_and_changes_nothing_but_its_report(deployed: Deployed) -> None:
    # 05 is a validation: without the drill (off by default on devnet) its one change is the new SLO report. The
    # drill runs in 05's second run, last: its failed attempts stay in the SLOs' 5-minute windows afterwards, so a
    # 05 right after a drill rightly reports Transaction Success Rate red.
    summary = deployed.runbook("05-validate-monitoring", drill=False)
    assert summary.get("passed"), _failures(summary)
    assert _steps(summary) == {"write the SLO report": "changed"}, _steps(summary)
    checks = {c["name"]: c for c in summary["checks"]}
    assert "off by default on devnet" in checks["circuit-breaker drill"]["detail"]


def test_a_second_run_of_01_is_already_done(deployed: Deployed) -> None:
    summary = deployed.runbook("01-deploy-monitoring")
    assert summary.get("passed"), _failures(summary)
    assert set(_steps(summary).values()) == {"already done"}, _steps(summary)


PROMETHEUS_POD = ("fabric", "prometheus-0")
RULES_CONFIGMAP, RULES_KEY = "prometheus-alerts-backend", "alerts-backend.yml"


def _prometheus(deployed: Deployed, path: str, method: str = "get") -> dict[str, Any]:
    """A call to prometheus-0's HTTP API through the API server's pod proxy."""
    namespace, pod = PROMETHEUS_POD
    raw = f"/api/v1/namespaces/{namespace}/pods/{pod}:9090/proxy{path}"
    args = ("get", "--raw", raw) if method == "get" else ("create", "--raw", raw, "-f", "-")
    proc = deployed.deployment.kubectl.run(*args, input_text="", timeout_s=30)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout) if proc.stdout.strip().startswith("{") else {}


def _loaded_rules(deployed: Deployed) -> int:
    groups = _prometheus(deployed, "/api/v1/rules")["data"]["groups"]
    return sum(len(group["rules"]) for group in groups)


def _prometheus_pod(deployed: Deployed) -> tuple[str, int]:
    namespace, pod = PROMETHEUS_POD
    doc = deployed.deployment.kubectl.get_json("pod", pod, "-n", namespace) or {}
    return doc["metadata"]["uid"], sum(c["restartCount"] for c in doc["status"]["containerStatuses"])


def test_01_puts_back_drifted_rules_and_reloads_prometheus_by_signal(deployed: Deployed) -> None:
    # Someone changed the rules ConfigMap (one rule dropped) and Prometheus loaded it; 01 with reload_method=signal
    # must apply the rendered rules again and make Prometheus load them by `kill -HUP 1` in prometheus-0.
    rendered = _loaded_rules(deployed)
    kubectl = deployed.deployment.kubectl
    configmap = kubectl.get_json("configmap", RULES_CONFIGMAP, "-n", PROMETHEUS_POD[0]) or {}
    rules = yaml.safe_load(configmap["data"][RULES_KEY])
    rules["groups"][0]["rules"].pop()
    patch = json.dumps({"data": {RULES_KEY: yaml.safe_dump(rules)}})
    assert kubectl.run("patch", "configmap", RULES_CONFIGMAP, "-n", PROMETHEUS_POD[0], "--type", "merge",
                       "-p", patch).returncode == 0
    deadline = time.monotonic() + 240  # the kubelet brings a ConfigMap into the pod at its next sync (10 s)
    while _loaded_rules(deployed) != rendered - 1:
        assert time.monotonic() < deadline, "Prometheus never loaded the drifted rules"
        _prometheus(deployed, "/-/reload", method="post")
        time.sleep(3)
    pod_before = _prometheus_pod(deployed)

    summary = deployed.runbook("01-deploy-monitoring", reload_method="signal")
    assert summary.get("passed"), _failures(summary)
    steps = _steps(summary)
    assert steps["write scrape config and alert rules"] == "changed", steps
    assert steps["reload Prometheus"] == "changed", steps
    assert _loaded_rules(deployed) == rendered
    assert _prometheus_pod(deployed) == pod_before  # the same pod, not restarted: a signal reloaded it


def test_a_second_run_of_02_is_already_done(deployed: Deployed) -> None:
    summary = deployed.runbook("02-upgrade-chaincode")
    assert summary.get("passed"), _failures(summary)
    assert set(_steps(summary).values()) == {"already done"}, _steps(summary)


def test_a_second_run_of_03_is_already_done(deployed: Deployed) -> None:
    summary = deployed.runbook("03-bootstrap-system")
    assert summary.get("passed"), _failures(summary)
    assert set(_steps(summary).values()) == {"already done"}, _steps(summary)


def test_a_second_run_of_04_is_already_done(deployed: Deployed) -> None:
    summary = deployed.runbook("04-validate-cqrs")
    assert summary.get("passed"), _failures(summary)
    assert set(_steps(summary).values()) == {"already done"}, _steps(summary)


def test_a_second_run_of_05_validates_again_and_its_breaker_drill_loses_nothing(deployed: Deployed) -> None:
    summary = deployed.runbook("05-validate-monitoring", drill=True)
    assert summary.get("passed"), _failures(summary)
    checks = {c["name"]: c for c in summary["checks"]}
    assert checks["drill: nothing lost"]["status"] == "pass"
    assert checks["drill: no command sent to the DLQ"]["status"] == "pass"
    assert _steps(summary)["restore the gateway"] == "changed", _steps(summary)


def test_a_second_deploy_changes_nothing_and_keeps_the_upgraded_chaincode(deployed: Deployed) -> None:
    started = time.monotonic()
    again = deployed.deployment.deploy()
    warm = time.monotonic() - started
    times = {name: s["seconds"] for name, s in deployed.results.items()}
    print(f"\nwarm deploy: {warm:.0f}s (cold {deployed.cold_s:.0f}s); first runs of the runbooks: {times}")
    assert again.changed == []
    assert again.fabric is not None and (again.fabric.version, again.fabric.already_committed) == ("1.1", True)
    assert _committed_version(deployed) == "1.1"
