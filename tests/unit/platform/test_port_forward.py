"""Which pod and port a port-forward to a Service goes to, and the error when there is none — from the Service and
pod documents alone (the forward itself is tested on a real cluster: tests/integration/platform/
test_port_forward_real.py)."""

from __future__ import annotations

from typing import Any

import pytest

from gxlib.platform.errors import PlatformError
from gxlib.platform.port_forward import ForwardTarget, NoReadyPodError, choose_pod, portforward_url


def _service(ports: list[dict[str, Any]] | None = None, selector: dict[str, str] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": "api", "namespace": "backend-devnet"},
            "spec": {"selector": {"app": "api"} if selector is None else selector,
                     "ports": ports if ports is not None else [{"name": "http", "port": 80, "targetPort": "http"}]}}


def _pod(name: str, *, ready: bool = True, deleting: bool = False, phase: str = "Running",
         port: int = 8080) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if deleting:
        metadata["deletionTimestamp"] = "2026-12-06T18:00:00Z"
    return {"metadata": metadata,
            "spec": {"containers": [{"name": "api", "ports": [{"name": "http", "containerPort": port}]}]},
            "status": {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def test_the_first_ready_pod_by_name_is_chosen_and_a_named_target_port_is_resolved_in_it() -> None:
    pods = [_pod("api-c"), _pod("api-a", ready=False), _pod("api-b", port=8081)]
    assert choose_pod(_service(), pods) == ForwardTarget("backend-devnet", "api", "api-b", 8081)


def test_a_terminating_pod_is_not_chosen_although_it_still_reports_ready() -> None:
    pods = [_pod("api-a", deleting=True), _pod("api-b")]
    assert choose_pod(_service(), pods).pod == "api-b"


@pytest.mark.parametrize("port", [80, "http"])
def test_the_service_port_is_found_by_number_or_name_and_a_numeric_target_port_is_taken_as_is(
        port: int | str) -> None:
    service = _service([{"name": "http", "port": 80, "targetPort": 9000}, {"name": "metrics", "port": 9101}])
    assert choose_pod(service, [_pod("api-a")], port).port == 9000
    assert choose_pod(service, [_pod("api-a")], "metrics").port == 9101  # no targetPort: the port itself


def test_no_ready_pod_is_an_error_that_names_the_service_and_what_its_pods_are_doing() -> None:
    with pytest.raises(NoReadyPodError) as refused:
        choose_pod(_service(), [_pod("api-a", ready=False, phase="Pending")])
    assert refused.value.message == ("no Ready pod behind service backend-devnet/api to forward to: api-a (Pending, "
                                     "not Ready)")
    assert "kubectl -n backend-devnet get pods" in (refused.value.hint or "")
    assert (refused.value.namespace, refused.value.service) == ("backend-devnet", "api")


def test_a_selector_that_matches_no_pod_says_so() -> None:
    with pytest.raises(NoReadyPodError, match="its selector matches no pod"):
        choose_pod(_service(), [])


def test_a_service_without_a_selector_is_refused() -> None:
    with pytest.raises(NoReadyPodError, match="has no selector"):
        choose_pod(_service(selector={}), [_pod("api-a")])


def test_a_port_the_service_does_not_have_is_refused_listing_its_ports() -> None:
    with pytest.raises(PlatformError, match=r"has no port 8080 \(its ports: http=80\)"):
        choose_pod(_service(), [_pod("api-a")], 8080)


def test_a_service_with_several_ports_needs_the_port_named() -> None:
    service = _service([{"name": "http", "port": 80}, {"name": "metrics", "port": 9101}])
    with pytest.raises(PlatformError, match=r"has 2 ports \(http, metrics\): say which one"):
        choose_pod(service, [_pod("api-a")])


def test_a_named_target_port_no_ready_pod_declares_is_refused() -> None:
    pod = _pod("api-a")
    pod["spec"]["containers"][0]["ports"] = []
    with pytest.raises(NoReadyPodError, match="no Ready pod has a container port named 'http'"):
        choose_pod(_service(), [pod])


def test_the_websocket_url_is_the_pods_portforward_subresource_on_the_api_server() -> None:
    target = ForwardTarget("backend-devnet", "api", "api-7d9f", 8080)
    assert portforward_url("https://10.0.0.1:6443/", target) == (
        "wss://10.0.0.1:6443/api/v1/namespaces/backend-devnet/pods/api-7d9f/portforward?ports=8080")
    assert portforward_url("http://127.0.0.1:8001", target).startswith("ws://127.0.0.1:8001/api/v1/")
