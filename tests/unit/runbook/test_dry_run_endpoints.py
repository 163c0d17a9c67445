"""A dry run checks that every endpoint the run would use answers (issue 13): with one that does not (a closed
port), each runbook's dry run fails on a check that names the endpoint and says what was wrong; with endpoints
that answer the same checks pass. No network beyond this machine's loopback."""

from __future__ import annotations

import http.server
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gxlib.platform.probes import http_endpoint, tcp_probe
from gxlib.progress import Progress
from gxlib.runbook import prepare, runbook
from gxlib.runbook.bootstrap_system import BootstrapSystem
from gxlib.runbook.checks import Check, CheckStatus
from gxlib.runbook.deploy_monitoring import DeployMonitoring
from gxlib.runbook.endpoint_checks import check_endpoints
from gxlib.runbook.section import RunbookSection
from gxlib.runbook.session import Runbook
from gxlib.runbook.upgrade_chaincode import UpgradeChaincode
from gxlib.runbook.validate_cqrs import ValidateCqrs
from gxlib.runbook.validate_monitoring import ValidateMonitoring


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def dead() -> str:
    return f"127.0.0.1:{closed_port()}"


@pytest.fixture
def answering_http() -> Iterator[str]:
    """An HTTP server on loopback that answers 200 to every GET."""

    class Ok(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def network_file(tmp_path: Path, address: str) -> Path:
    """A Fabric network file whose orderer and peer are at ``address``."""
    path = tmp_path / "network.json"
    path.write_text(json.dumps({
        "channel": "gxchannel-devnet",
        "orderer": {"name": "orderer.gx.test", "endpoint": address},
        "peers": [{"name": "peer0.org1.gx.test", "org": "org1", "endpoint": address}],
        "identities": [], "roles": {"service": "service"},
    }))
    return path


def kubeconfig(tmp_path: Path, address: str) -> Path:
    """A kubeconfig whose only context's API server is at ``address``."""
    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "dead",
        "clusters": [{"name": "dead", "cluster": {"server": f"https://{address}", "insecure-skip-tls-verify": True}}],
        "users": [{"name": "dead", "user": {"token": "t"}}],
        "contexts": [{"name": "dead", "context": {"cluster": "dead", "user": "dead"}}],
    }))
    return path


def dry_run(name: str, raw: dict[str, object]) -> Runbook:
    _, params = prepare(name, raw, dry_run=True, environ={})
    return Runbook(runbook(name), params, dry_run=True, progress=Progress(quiet=True))


def failed(rb: Runbook) -> list[Check]:
    return rb.checks.failed()


def assert_fails_naming(rb: Runbook, what: str, address: str) -> Check:
    """The dry run fails on a check naming ``what`` at ``address``, saying why."""
    matching = [c for c in failed(rb) if what in c.name and address in c.name]
    assert matching, [c.as_dict() for c in rb.checks]
    assert matching[0].detail, "the failed check says what was wrong"
    assert rb.summary()["passed"] is False
    return matching[0]


# --- runbook 01 --------------------------------------------------------------------------------------------------
def test_01_dry_run_fails_naming_a_prometheus_that_does_not_answer(dead: str) -> None:
    rb = dry_run("01-deploy-monitoring", {"prometheus_url": f"http://{dead}"})
    DeployMonitoring(rb).check_target()
    check = assert_fails_naming(rb, "Prometheus", dead)
    assert "dry run" in check.detail


def test_01_dry_run_on_kubernetes_fails_naming_an_api_server_that_does_not_answer(tmp_path: Path,
                                                                                   dead: str) -> None:
    rb = dry_run("01-deploy-monitoring", {"env": "devnet", "kubeconfig": str(kubeconfig(tmp_path, dead))})
    DeployMonitoring(rb).check_target()
    assert_fails_naming(rb, "platform available", "")
    assert dead in failed(rb)[0].detail


# --- runbook 02 --------------------------------------------------------------------------------------------------
def test_02_dry_run_fails_naming_the_api_server_and_each_fabric_node_that_do_not_answer(tmp_path: Path,
                                                                                         dead: str) -> None:
    rb = dry_run("02-upgrade-chaincode", {"env": "devnet", "kubeconfig": str(kubeconfig(tmp_path, dead)),
                                          "fabric_network_file": str(network_file(tmp_path, dead))})
    section = UpgradeChaincode(rb)
    assert section.query_committed() is None
    assert dead in assert_fails_naming(rb, "Kubernetes API server", "kubeconfig").detail
    assert "refused" in assert_fails_naming(rb, "Fabric orderer orderer.gx.test", dead).detail.lower()
    assert_fails_naming(rb, "Fabric peer peer0.org1.gx.test", dead)
    assert section.stopped is not None and dead in section.stopped
    assert not any(c.name == "platform available" for c in rb.checks)  # stopped before the operator was built


# --- runbooks 03 and 04 --------------------------------------------------------------------------------------------
def _remote_backend(tmp_path: Path, api: str, fabric: str) -> dict[str, object]:
    return {"env": "devnet", "api_url": api, "api_token": "token",
            "fabric_network_file": str(network_file(tmp_path, fabric))}


def test_03_dry_run_fails_naming_a_backend_api_that_does_not_answer(tmp_path: Path, dead: str) -> None:
    rb = dry_run("03-bootstrap-system", _remote_backend(tmp_path, f"http://{dead}", dead))
    section = BootstrapSystem(rb)
    section.pre_checks()
    assert "refused" in assert_fails_naming(rb, "backend API", dead).detail.lower()
    assert_fails_naming(rb, "Fabric peer peer0.org1.gx.test", dead)
    assert section.target is None  # nothing was asked of a backend that is not there


def test_04_dry_run_fails_naming_the_fabric_nodes_that_do_not_answer(tmp_path: Path, dead: str,
                                                                     answering_http: str) -> None:
    rb = dry_run("04-validate-cqrs", {**_remote_backend(tmp_path, answering_http, dead),
                                      "submitter_metrics_url": answering_http})
    ValidateCqrs(rb).connect()
    assert_fails_naming(rb, "Fabric orderer", dead)
    assert_fails_naming(rb, "Fabric peer", dead)
    passed = {c.name for c in rb.checks if c.status is CheckStatus.PASSED}
    assert f"endpoint answers: backend API at {answering_http}" in passed
    assert f"endpoint answers: outbox-submitter metrics at {answering_http}" in passed


# --- runbook 05 --------------------------------------------------------------------------------------------------
def test_05_dry_run_fails_naming_prometheus_and_alertmanager_that_do_not_answer(dead: str) -> None:
    rb = dry_run("05-validate-monitoring", {"prometheus_url": f"http://{dead}", "alertmanager_url": f"http://{dead}",
                                            "breaker_drill": "false"})
    section = ValidateMonitoring(rb)
    section.connect()
    assert_fails_naming(rb, "Prometheus", dead)
    assert_fails_naming(rb, "Alertmanager", dead)
    assert section.queries is None


def test_05_dry_run_on_kubernetes_fails_when_prometheus_does_not_answer(dead: str, answering_http: str) -> None:
    rb = dry_run("05-validate-monitoring", {"env": "devnet", "prometheus_url": f"http://{dead}",
                                            "alertmanager_url": answering_http})
    ValidateMonitoring(rb).connect()
    check = assert_fails_naming(rb, "Prometheus reachable", "")
    assert dead in check.detail


# --- the checks themselves ---------------------------------------------------------------------------------------
def test_endpoints_that_answer_pass_their_checks_and_the_run_goes_on(answering_http: str) -> None:
    rb = dry_run("05-validate-monitoring", {})
    section: RunbookSection[Any] = ValidateMonitoring(rb)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        peer = f"127.0.0.1:{listener.getsockname()[1]}"
        assert tcp_probe(peer)() is None
    assert check_endpoints(section, [http_endpoint("Prometheus", answering_http, "/-/ready")])
    assert section.stopped is None and not failed(rb)
    assert [c.name for c in rb.checks] == [f"endpoint answers: Prometheus at {answering_http}"]


def test_an_endpoint_is_asked_once_even_when_named_twice(dead: str) -> None:
    rb = dry_run("05-validate-monitoring", {})
    section: RunbookSection[Any] = ValidateMonitoring(rb)
    endpoint = http_endpoint("backend API", f"http://{dead}", "/healthz")
    assert not check_endpoints(section, [endpoint, endpoint])
    assert len(rb.checks) == 1 and section.stopped is not None and dead in section.stopped
