"""``gx k8s deploy``: the devnet overlay on a real single-node cluster, as an operator sees it — every Deployment
and StatefulSet Ready with its real probes, PostgreSQL's data on a volume that outlives its pod, Prometheus
discovering the gx jobs and kube-state-metrics through Kubernetes service discovery, an alert reaching the
receiver, a second deploy changing nothing, and ``down`` leaving the host as it was.

One cluster for the module, under the host's real-node lock, with its own state dir, bridge and ports
(GX_TEST_PORT_OFFSET). Alertmanager's receiver is a webhook to a sink this test runs on the node's address (the
host side of the pod bridge): the test reads what arrives there directly, and no extra image is needed.
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from gxlib.devnet import processes
from gxlib.fabric.sync import SyncGateway
from gxlib.k8sbuild.binaries import KUBECTL, ensure_k8s_tools
from gxlib.k8sbuild.settings import K8sBuildSettings
from gxlib.k8scluster.cluster import NodeCluster
from gxlib.k8scluster.kubectl import Kubectl
from gxlib.k8scluster.settings import K8sClusterSettings
from gxlib.k8sdeploy.deploy import DeployReport, OverlayDeployment
from gxlib.k8sdeploy.errors import NotReady
from gxlib.k8sdeploy.secrets import API_TOKENS_KEY, API_TOKENS_SECRET, POSTGRES_PASSWORD_KEY, POSTGRES_SECRET, decode
from gxlib.k8sdeploy.settings import DeploySettings, volumes_dir
from gxlib.monitoring.catalog import availability_query
from gxlib.progress import Progress
from tests.conftest import BASE_TEST_OFFSET
from tests.integration.k8scluster.host_lock import one_node_on_this_host, skip_unless_this_host_runs_a_node
from tests.integration.k8scluster.test_real_cluster import HostSnapshot

PORT_OFFSET = int(os.environ.get("GX_TEST_PORT_OFFSET", "0"))
SINK_PORT = 19093 + PORT_OFFSET
REPO_ROOT = Path(__file__).resolve().parents[3]
GX_JOBS = ("gx-outbox-submitter", "gx-projector", "gx-backend-services")
DEVNET_OFFSET = BASE_TEST_OFFSET + 800


class AlertSink:
    """The webhook receiver: an HTTP server on the node address that keeps every notification it gets."""

    def __init__(self, host: str, port: int) -> None:
        received: list[dict[str, Any]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                received.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.received = received
        self.server = HTTPServer((host, port), Handler)
        self.url = f"http://{host}:{port}/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class DeployedOverlay:
    deployment: OverlayDeployment
    kubectl: Kubectl
    before: HostSnapshot
    sink: AlertSink
    report: DeployReport | None
    not_ready: NotReady | None
    wall_s: float
    cpu_s: float
    notes: dict[str, Any] = field(default_factory=dict)

    def run(self, *args: str, timeout_s: float = 60, input_text: str | None = None) -> str:
        proc = self.kubectl.run(*args, timeout_s=timeout_s, input_text=input_text)
        assert proc.returncode == 0, f"kubectl {' '.join(args)} failed:\n{proc.stderr}"
        return proc.stdout

    def raw(self, path: str) -> Any:
        return json.loads(self.run("get", "--raw", path))

    def prometheus(self, path: str) -> Any:
        return self.raw(f"/api/v1/namespaces/fabric/pods/prometheus-0:9090/proxy{path}")

    def wait(self, what: str, probe: Any, timeout_s: float = 180) -> None:
        self.deployment.progress.wait_until(what, probe, timeout_s=timeout_s, interval_s=2.0)


def _cpu_seconds() -> float:
    usage = os.times()
    return usage.user + usage.system + usage.children_user + usage.children_system


@pytest.fixture(scope="module")
def overlay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DeployedOverlay]:
    settings = K8sClusterSettings(state_dir=tmp_path_factory.mktemp("k8sdeploy") / "state", bridge="gxdeploy0",
                                  pod_cidr="10.244.0.0/24", node_name="gx-deploy-node").with_port_offset(PORT_OFFSET)
    skip_unless_this_host_runs_a_node(settings)
    progress = Progress()
    install = ensure_k8s_tools(K8sBuildSettings(), [KUBECTL], progress=progress)
    with one_node_on_this_host("test_devnet_overlay"):
        before = HostSnapshot.take()
        node = NodeCluster(settings, progress=progress)
        sink: AlertSink | None = None
        try:
            node.up()  # the sink binds the node's address, which exists once the bridge does
            sink = AlertSink(settings.node_ip, SINK_PORT)
            deployment = OverlayDeployment(settings, DeploySettings(alert_webhook_url=sink.url, ready_timeout_s=300,
                                                                    devnet_port_offset=DEVNET_OFFSET),
                                           progress=progress)
            started, cpu = time.monotonic(), _cpu_seconds()
            report: DeployReport | None = None
            not_ready: NotReady | None = None
            try:
                report = deployment.deploy()
            except NotReady as exc:
                not_ready = exc
            yield DeployedOverlay(deployment, Kubectl(install.binary(KUBECTL), node.layout.kubeconfig), before,
                                  sink, report, not_ready, time.monotonic() - started, _cpu_seconds() - cpu)
        finally:
            if sink is not None:
                sink.close()
            OverlayDeployment(settings, progress=progress).down()


def _ready_pods(overlay: DeployedOverlay, namespace: str, selector: str) -> list[str]:
    pods = json.loads(overlay.run("get", "pods", "-n", namespace, "-l", selector, "-o", "json"))["items"]
    return [p["metadata"]["name"] for p in pods
            if any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))]


# --- readiness -------------------------------------------------------------------------------------------------
def test_every_deployment_and_statefulset_becomes_ready_with_its_real_probes(overlay: DeployedOverlay) -> None:
    print(f"\ncold deploy: {overlay.wall_s:.0f}s wall, {overlay.cpu_s:.0f} CPU-seconds (this process and children)")
    assert overlay.not_ready is None, str(overlay.not_ready)
    assert overlay.report is not None
    states = {f"{s.kind}/{s.namespace}/{s.name}": s for s in overlay.report.readiness}
    assert states["Deployment/fabric/grafana"].desired == 0, "Grafana is not built here: 0 replicas"
    for key in ("StatefulSet/fabric/prometheus", "Deployment/fabric/alertmanager",
                "Deployment/fabric/kube-state-metrics", "StatefulSet/backend-devnet/postgresql",
                "Deployment/backend-devnet/api", "Deployment/backend-devnet/outbox-submitter",
                "Deployment/backend-devnet/projector", "Job/backend-devnet/backend-migrate"):
        assert states[key].done, key
    assert all(s.done for s in states.values())
    assert _ready_pods(overlay, "fabric", "app.kubernetes.io/name=prometheus") == ["prometheus-0"]


def test_the_services_that_need_no_fabric_are_ready(overlay: DeployedOverlay) -> None:
    """Monitoring, the database, its migrations and the API run whether or not Fabric is reachable."""
    assert _ready_pods(overlay, "fabric", "app.kubernetes.io/name=prometheus") == ["prometheus-0"]
    assert len(_ready_pods(overlay, "fabric", "app.kubernetes.io/name=alertmanager")) == 1
    assert len(_ready_pods(overlay, "fabric", "app.kubernetes.io/name=kube-state-metrics")) == 1
    assert _ready_pods(overlay, "backend-devnet", "app.kubernetes.io/name=postgresql") == ["postgresql-0"]
    job = json.loads(overlay.run("get", "job", "backend-migrate", "-n", "backend-devnet", "-o", "json"))
    assert job["status"].get("succeeded") == 1, "the migrations ran"
    assert len(_ready_pods(overlay, "backend-devnet", "app.kubernetes.io/name=gx-backend-api")) == 1, \
        "the API is Ready only with the database reachable and at the newest schema"
    grafana = json.loads(overlay.run("get", "deployment", "grafana", "-n", "fabric", "-o", "json"))
    assert grafana["spec"]["replicas"] == 0


def test_the_generated_kustomization_says_why_grafana_does_not_run(overlay: DeployedOverlay) -> None:
    text = (overlay.deployment.deploy_dir / "kustomization.yaml").read_text()
    assert "AGPL" in text and "name: grafana" in text
    assert "registry.gx.local/gx/prometheus" in text


# --- Fabric from the pods ----------------------------------------------------------------------------------------
def test_the_peers_on_the_node_address_get_answers_from_the_chaincode_pods(overlay: DeployedOverlay) -> None:
    assert overlay.report is not None and overlay.report.fabric is not None
    assert overlay.report.fabric.version == "1.0"
    devnet = overlay.deployment.fabric.devnet
    # No chaincode server runs on the host: the devnet's processes are its nodes only.
    node_pids = {pid for node in devnet.layout.nodes for pid in processes.node_pids(node)}
    assert set(processes.pids_under(devnet.layout.root)) <= node_pids
    with SyncGateway.from_environment(devnet.environment(), "service") as gateway:
        raw = gateway.network(devnet.settings.channel).contract(overlay.report.fabric.chaincode).evaluate(
            "AdminContract:GetSystemStatus")
    assert "bootstrapped" in json.loads(raw)


def test_the_submitter_and_projector_reach_the_peers_from_their_pods(overlay: DeployedOverlay) -> None:
    for name in ("gx-outbox-submitter", "gx-projector"):
        assert len(_ready_pods(overlay, "backend-devnet", f"app.kubernetes.io/name={name}")) == 1, name
    logs = overlay.run("logs", "-n", "backend-devnet", "deployment/projector", "--tail=200")
    assert "event stream failed" not in logs


# --- storage and the database ----------------------------------------------------------------------------------
def test_volumes_are_local_and_their_directories_get_the_pods_fsgroup(overlay: DeployedOverlay) -> None:
    root = volumes_dir(overlay.deployment.cluster.layout.root)
    prometheus, postgresql = root / "fabric-data-prometheus-0", root / "backend-devnet-data-postgresql-0"
    assert prometheus.stat().st_gid == 65534, "Prometheus' fsGroup"
    assert postgresql.stat().st_gid == 102, "PostgreSQL's fsGroup (the image's postgres group)"
    assert (postgresql / "pgdata" / "PG_VERSION").is_file(), "initdb wrote the cluster onto the volume"
    assert any((prometheus / name).exists() for name in ("wal", "chunks_head")), "Prometheus writes its TSDB there"
    claims = json.loads(overlay.run("get", "pvc", "-A", "-o", "json"))["items"]
    bound = {f"{c['metadata']['namespace']}/{c['metadata']['name']}": c["status"].get("phase") for c in claims}
    assert bound == {"fabric/data-prometheus-0": "Bound", "backend-devnet/data-postgresql-0": "Bound"}


def test_postgresql_data_survives_a_pod_delete(overlay: DeployedOverlay) -> None:
    psql = ["exec", "-n", "backend-devnet", "postgresql-0", "--", "/usr/lib/postgresql/15/bin/psql", "-h", "/tmp",
            "-U", "postgres", "-d", "gx", "-tA", "-c"]
    overlay.run(*psql, "CREATE TABLE IF NOT EXISTS survives (note text); "
                       "INSERT INTO survives VALUES ('written before the delete')")
    uid = json.loads(overlay.run("get", "pod", "postgresql-0", "-n", "backend-devnet", "-o", "json"))[
        "metadata"]["uid"]
    overlay.run("delete", "pod", "postgresql-0", "-n", "backend-devnet", "--wait=true", timeout_s=120)

    def back() -> tuple[bool, str | None]:
        pod = overlay.kubectl.get_json("pod", "postgresql-0", "-n", "backend-devnet") or {}
        ready = any(c["type"] == "Ready" and c["status"] == "True"
                    for c in pod.get("status", {}).get("conditions", []))
        return ready and pod["metadata"]["uid"] != uid, pod.get("status", {}).get("phase")

    overlay.wait("a new postgresql-0 Ready", back)
    assert overlay.run(*psql, "SELECT note FROM survives").strip() == "written before the delete"


# --- monitoring ------------------------------------------------------------------------------------------------
def test_prometheus_discovers_the_gx_jobs_and_kube_state_metrics_and_scrapes_them(overlay: DeployedOverlay) -> None:
    def targets() -> dict[str, list[str]]:
        active = overlay.prometheus("/api/v1/targets?state=active")["data"]["activeTargets"]
        found: dict[str, list[str]] = {}
        for target in active:
            found.setdefault(target["labels"]["job"], []).append(target["health"])
        return found

    def all_up() -> tuple[bool, str | None]:
        found = targets()
        wanted = ("kube-state-metrics", *GX_JOBS)
        return all(found.get(job) and set(found[job]) == {"up"} for job in wanted), json.dumps(found)

    overlay.wait("the gx jobs and kube-state-metrics up", all_up, timeout_s=120)
    found = targets()
    assert set(GX_JOBS) <= set(found)
    up = overlay.prometheus("/api/v1/query?query=up")["data"]["result"]
    assert {r["metric"]["job"] for r in up if r["value"][1] == "1"} >= {"kube-state-metrics", *GX_JOBS}


def test_kube_state_metrics_feeds_the_system_availability_slo(overlay: DeployedOverlay) -> None:
    from urllib.parse import quote

    def has_data(query: str) -> tuple[bool, str | None]:
        result = overlay.prometheus(f"/api/v1/query?query={quote(query)}")["data"]["result"]
        return bool(result), json.dumps(result)[:300]

    overlay.wait("kube_deployment_status_replicas_available",
                 lambda: has_data("kube_deployment_status_replicas_available"), timeout_s=120)
    overlay.wait("the System Availability SLO's query", lambda: has_data(availability_query()), timeout_s=120)


def test_an_alert_reaches_the_webhook_receiver(overlay: DeployedOverlay) -> None:
    managers = overlay.prometheus("/api/v1/alertmanagers")["data"]["activeAlertmanagers"]
    assert managers, "Prometheus sends its alerts to the in-cluster Alertmanager"
    alert = [{"labels": {"alertname": "GxDeployTest", "severity": "warning", "namespace": "backend-devnet"},
              "annotations": {"summary": "sent by test_devnet_overlay"}}]
    # From the node, as an operator there would: the Service's ClusterIP through kube-proxy's rules.
    service = json.loads(overlay.run("get", "service", "alertmanager", "-n", "fabric", "-o", "json"))
    request = urllib.request.Request(f"http://{service['spec']['clusterIP']}:9093/api/v2/alerts",
                                     data=json.dumps(alert).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200

    def received() -> tuple[bool, str | None]:
        names = [a["labels"]["alertname"] for n in overlay.sink.received for a in n.get("alerts", [])]
        return "GxDeployTest" in names, f"{len(overlay.sink.received)} notifications: {names}"

    overlay.wait("the alert at the webhook receiver", received, timeout_s=120)


# --- idempotence, secrets, down --------------------------------------------------------------------------------
def test_a_second_deploy_changes_nothing(overlay: DeployedOverlay) -> None:
    started, cpu = time.monotonic(), _cpu_seconds()
    again = overlay.deployment.deploy()
    print(f"\nwarm deploy: {time.monotonic() - started:.0f}s wall, {_cpu_seconds() - cpu:.0f} CPU-seconds")
    assert again.cluster_already_running
    assert again.changed == [], again.changed
    assert not again.secrets_created
    assert not any(i.built or i.imported for i in again.images)
    assert all(s.done for s in again.readiness)


def test_the_secrets_live_in_the_cluster_only(overlay: DeployedOverlay) -> None:
    postgres = json.loads(overlay.run("get", "secret", POSTGRES_SECRET, "-n", "backend-devnet", "-o", "json"))
    tokens = json.loads(overlay.run("get", "secret", API_TOKENS_SECRET, "-n", "backend-devnet", "-o", "json"))
    values = [decode(postgres, POSTGRES_PASSWORD_KEY), *json.loads(decode(tokens, API_TOKENS_KEY) or "{}")]
    assert all(values)
    for base in (REPO_ROOT / "k8s", overlay.deployment.cluster.layout.root / "deploy"):
        for path in (p for p in base.rglob("*") if p.is_file()):
            text = path.read_text(errors="replace")
            assert not any(v and v in text for v in values), f"{path} holds a generated secret"


def test_down_removes_what_deploy_added_and_leaves_the_host_as_it_was(overlay: DeployedOverlay) -> None:
    node = overlay.deployment.cluster
    state_dir = node.layout.root
    devnet_root = overlay.deployment.fabric.devnet.layout.root
    report = overlay.deployment.down()
    assert report["devnet_stopped"] and report["state_dir_removed"] and not state_dir.exists()
    assert processes.pids_under(devnet_root) == []
    assert not volumes_dir(state_dir).exists() and not overlay.deployment.deploy_dir.exists()
    HostSnapshot.take().assert_restored(overlay.before, state_dir)
