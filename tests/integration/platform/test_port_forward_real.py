"""The platform's port-forward on a real single-node cluster (``gx k8s up``, under the host's one-node lock, as in
tests/integration/k8scluster/test_real_cluster.py, whose module-scoped cluster and busybox image it reuses): HTTP
through the forward reaches a Ready pod behind a Service, many connections at once, and a Service without a Ready
pod is refused with an error that names it."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from gxlib.backend.settings import ApiRole
from gxlib.config import Environment
from gxlib.platform.backend_access import ClusterBackend, cluster_backend_endpoints
from gxlib.platform.cluster import ClusterConnection, connect_cluster
from gxlib.platform.pod_proxy import ApiServerAccess, pod_proxy_url, service_proxy_url
from gxlib.platform.port_forward import NoReadyPodError, PortForward
from gxlib.platform.settings import KubernetesPlatformSettings
from tests.integration.k8scluster.test_real_cluster import RunningCluster, cluster

__all__ = ["cluster"]  # the module-scoped real cluster fixture

NAMESPACE = "gx-forward-test"


def _web_pod(name: str, image: str, labels: dict[str, str], *, ready_port: int = 8080) -> dict[str, Any]:
    """busybox httpd on 8080 serving a page with the pod's name; Ready only when ``ready_port`` answers."""
    container = {"name": "web", "image": image, "imagePullPolicy": "Never",
                 "command": ["/bin/sh", "-c", "hostname > /tmp/index.html; exec httpd -f -p 8080 -h /tmp"],
                 "ports": [{"name": "http", "containerPort": 8080}],
                 "readinessProbe": {"httpGet": {"path": "/index.html", "port": ready_port}, "periodSeconds": 1}}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels},
            "spec": {"containers": [container], "terminationGracePeriodSeconds": 1}}


def _service(name: str, selector: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"selector": selector, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}


@pytest.fixture(scope="module")
def connection(cluster: RunningCluster) -> Iterator[ClusterConnection]:
    image = cluster.workload_image.reference
    cluster.kubectl.apply([
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        _web_pod("web-a", image, {"app": "web"}),
        _service("web", {"app": "web"}),
        # Ready only if port 9 answered, which nothing listens on: the Service has a pod, never a Ready one.
        _web_pod("stuck", image, {"app": "stuck"}, ready_port=9),
        _service("stuck", {"app": "stuck"}),
        _service("nobody", {"app": "nobody"}),
    ])

    def state(name: str, wanted: Callable[[dict[str, Any]], bool]) -> Callable[[], tuple[bool, str | None]]:
        def probe() -> tuple[bool, str | None]:
            status = (cluster.kubectl.get_json("pod", name, "-n", NAMESPACE) or {}).get("status", {})
            return wanted(status), status.get("phase")
        return probe

    cluster.wait("pod web-a Ready", state("web-a", lambda status: any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions", []))))
    cluster.wait("pod stuck Running", state("stuck", lambda status: status.get("phase") == "Running"))
    connection = connect_cluster(KubernetesPlatformSettings(kubeconfig=cluster.cluster.layout.kubeconfig))
    yield connection
    connection.close()


def test_an_http_get_through_the_forward_is_answered_by_the_ready_pod_behind_the_service(
        connection: ClusterConnection) -> None:
    with PortForward(connection, NAMESPACE, "web") as forward:
        assert forward.url.startswith("http://127.0.0.1:")
        response = httpx.get(f"{forward.url}/index.html", timeout=30)
        second = httpx.get(f"{forward.url}/index.html", timeout=30)
    assert (response.status_code, response.text) == (200, "web-a\n")
    assert (second.status_code, second.text) == (200, "web-a\n")
    assert forward.target is not None and (forward.target.pod, forward.target.port) == ("web-a", 8080)
    assert forward.failures == []


def test_twenty_concurrent_gets_through_one_forward_are_all_answered(connection: ClusterConnection) -> None:
    with PortForward(connection, NAMESPACE, "web", 80) as forward:
        def get(_: int) -> tuple[int, str]:
            # A client per request: twenty connections, each its own tunnel, open at the same time.
            with httpx.Client(timeout=60) as client:
                answer = client.get(f"{forward.url}/index.html")
                return answer.status_code, answer.text

        with ThreadPoolExecutor(max_workers=20) as pool:
            answers = list(pool.map(get, range(20)))
    assert answers == [(200, "web-a\n")] * 20
    assert forward.failures == []


def test_a_closed_forward_no_longer_accepts_connections(connection: ClusterConnection) -> None:
    with PortForward(connection, NAMESPACE, "web") as forward:
        port = forward.local_port
        assert httpx.get(f"{forward.url}/index.html", timeout=30).status_code == 200
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


@pytest.mark.parametrize(("service", "why"), [("stuck", "stuck (Running, not Ready)"),
                                               ("nobody", "its selector matches no pod"),
                                               ("missing", "the Service does not exist")])
def test_a_service_without_a_ready_pod_is_refused_naming_the_service_and_namespace(
        connection: ClusterConnection, service: str, why: str) -> None:
    with pytest.raises(NoReadyPodError) as refused:
        PortForward(connection, NAMESPACE, service).open()
    assert f"service {NAMESPACE}/{service}" in refused.value.message
    assert why in refused.value.message


def test_the_api_servers_service_and_pod_proxies_reach_the_pod_as_runbook_05_reaches_prometheus(
        connection: ClusterConnection) -> None:
    # Runbook 05 on Kubernetes asks Prometheus (pod proxy) and Alertmanager (service proxy) this way
    # (gxlib.platform.endpoints): the same access, here to the test's web pod.
    access = ApiServerAccess.from_configuration(connection.api.configuration)
    with access.requests_session() as session:
        by_service = session.get(f"{service_proxy_url(access.server, NAMESPACE, 'web', 80)}/index.html", timeout=30)
        by_pod = session.get(f"{pod_proxy_url(access.server, NAMESPACE, 'web-a', 8080)}/index.html", timeout=30)
    assert (by_service.status_code, by_service.text) == (200, "web-a\n")
    assert (by_pod.status_code, by_pod.text) == (200, "web-a\n")


def test_the_backend_of_a_namespace_is_reached_as_runbooks_03_to_05_reach_it(cluster: RunningCluster,
                                                                            connection: ClusterConnection) -> None:
    # backend-devnet as the overlay names it (Service api, port 80 → the pods' port "http"; the tokens Secret),
    # played by busybox: what ClusterBackend takes from it and what a dry run probes.
    namespace = "backend-devnet"
    image = cluster.workload_image.reference
    api_pod = _web_pod("api-0", image, {"app.kubernetes.io/name": "gx-backend-api"})
    api_pod["metadata"]["namespace"] = namespace
    api_pod["spec"]["containers"][0]["command"] = [
        "/bin/sh", "-c", "hostname > /tmp/index.html; echo ok > /tmp/healthz; exec httpd -f -p 8080 -h /tmp"]
    tokens = json.dumps({"tok-reader": "reader", "tok-admin": "admin"})
    cluster.kubectl.apply([
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        api_pod,
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "api", "namespace": namespace},
         "spec": {"selector": {"app.kubernetes.io/name": "gx-backend-api"},
                  "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "backend-api-tokens", "namespace": namespace},
         "stringData": {"GX_BACKEND_API_TOKENS": tokens}},
    ])
    cluster.wait("pod api-0 Ready", lambda: (any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in ((cluster.kubectl.get_json(
            "pod", "api-0", "-n", namespace) or {}).get("status", {}).get("conditions", []))), None))
    settings = KubernetesPlatformSettings(kubeconfig=cluster.cluster.layout.kubeconfig)
    with ClusterBackend.connect(Environment.DEVNET, settings) as backend:
        api = backend.api_forward()
        assert httpx.get(f"{api.value}/healthz", timeout=30).text == "ok\n"
        assert "service backend-devnet/api → pod api-0:8080" in api.source
        assert backend.api_token(ApiRole.OPERATOR).value == "tok-admin"
        assert backend.fabric_network_file() is None  # this cluster has no backend-fabric-client
    probes = {e.what: e.probe() for e in cluster_backend_endpoints(
        Environment.DEVNET, settings, api=True, token_role=ApiRole.ADMIN, network=True, submitter=True)}
    assert probes["Kubernetes API server"] is None and probes["backend API (port-forward)"] is None
    assert probes["API token of role admin"] is None
    assert "backend-devnet/backend-fabric-client does not exist" in str(probes["Fabric network of the backend"])
    assert "no Ready pod behind service backend-devnet/outbox-submitter-metrics" in str(
        probes["outbox-submitter metrics (port-forward)"])
