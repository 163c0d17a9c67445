"""Runbooks 03, 04 and 05 with ``env=devnet``: everything reached through the parameters, as on Kubernetes.

What stands in for the Kubernetes env — honestly: there is no real backend in pods here (the kwok cluster of the
platform tests runs no containers). The env's endpoints are local processes reached by URL, exactly as an operator
reaches the cluster's through an ingress or ``kubectl port-forward``:

- the env's Fabric network: a throwaway devnet (port offset GX_TEST_PORT_OFFSET + 500, its own channel, gxtv3
  deployed), given to the runbooks as ``fabric_network_file`` — its ``gx devnet env --json`` document written to a
  file — with ``channel`` (env=devnet's profile channel, gxchannel-devnet, is not this devnet's);
- the env's backend: a LocalBackend on free ports, given as ``api_url`` + ``api_token``;
- the env's Prometheus and Alertmanager: a LocalMonitoringStack on free ports whose backend series carry
  ``namespace="backend-devnet"`` (what the shared Prometheus's service discovery gives the devnet backend), given as
  ``prometheus_url`` / ``alertmanager_url``.

No ``devnet_state_dir`` is passed: nothing of the devnet is found through its state directory, so the runbooks take
the Kubernetes path (no devnet object, no local processes asked). The API server's proxy route of runbook 05 is
covered by the unit tests; the lifecycle on a kwok cluster by tests/integration/platform.

Run: ``GX_TEST_PORT_OFFSET=30000 .venv/bin/pytest -q tests/integration/runbook/test_runbooks_03_05_remote.py``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gxlib.backend.local import LocalBackend
from gxlib.chaincode.deploy import ChaincodeOperator
from gxlib.config import ChaincodeSettings, Environment, environment_profile
from gxlib.devnet.binaries import FabricInstall
from gxlib.monitoring.stack import LocalMonitoringStack
from gxlib.progress import Progress
from gxlib.runbook import RunbookFailed, run
from gxlib.runbook.steps_backend import BOOTSTRAP_POOLS, pool_units
from tests.conftest import BASE_TEST_OFFSET, make_devnet
from tests.integration.runbook.test_runbooks_03_05 import (
    Cqrs,
    checks,
    deploy_retrying_races,
    run_runbook,
    settings,
    show,
    start_backend,
    start_stack,
    steps,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

OFFSET = BASE_TEST_OFFSET + 500
NAMESPACE = environment_profile(Environment.DEVNET).backend_namespace


@dataclass
class Remote:
    """The stand-in env: its Fabric network file, backend and monitoring stack."""

    cqrs: Cqrs
    network_file: Path

    @property
    def channel(self) -> str:
        return self.cqrs.devnet.settings.channel

    def parameters(self, **extra: object) -> dict[str, object]:
        """Runbooks 03/04 on env=devnet: the API, its token, the Fabric network's document and its channel."""
        return {"env": "devnet", "api_url": self.cqrs.api_url,
                "api_token": next(iter(self.cqrs.backend.api_tokens())),
                "fabric_network_file": str(self.network_file), "channel": self.channel, **extra}

    @property
    def prometheus_url(self) -> str:
        assert self.cqrs.stack is not None
        return self.cqrs.stack.prometheus_url


@pytest.fixture(scope="module")
def remote(fabric_install: FabricInstall, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Remote]:
    root = tmp_path_factory.mktemp("remote-env")
    devnet = make_devnet(root / "devnet", OFFSET)
    operator = ChaincodeOperator(devnet, ChaincodeSettings(), Progress(quiet=True))
    backend: LocalBackend | None = None
    stack: LocalMonitoringStack | None = None
    try:
        devnet.up()
        assert devnet.settings.channel != environment_profile(Environment.DEVNET).channel
        deploy_retrying_races(operator)
        backend = start_backend(devnet)
        stack = start_stack(devnet, backend, root / "monitoring", namespace=NAMESPACE)
        network_file = root / "fabric-network.json"
        network_file.write_text(json.dumps(devnet.environment(), indent=2))
        yield Remote(Cqrs(devnet, backend, stack), network_file)
    finally:
        if stack is not None:
            stack.down()
        if backend is not None:
            backend.down()
        operator.stop_servers()
        devnet.down(purge=True)


# --- 03 ---------------------------------------------------------------------------------------------------------
def test_03_without_the_channel_parameter_stops_naming_the_channel_mismatch(remote: Remote, tmp_path: Path,
                                                                            gx_kernel: str) -> None:
    before = remote.cqrs.state()
    parameters = {k: v for k, v in remote.parameters().items() if k != "channel"}
    with pytest.raises(RunbookFailed) as caught:
        run("03-bootstrap-system", parameters, settings=settings(tmp_path, gx_kernel), progress=Progress(quiet=True),
            environ={})
    summary = caught.value.summary
    show(summary)
    assert summary is not None
    assert summary["failed_checks"] == ["backend API and Fabric network reachable"]
    assert "channel 'gxchannel-devnet' is not the channel of the Fabric network" in summary["checks"][0]["detail"]
    assert remote.cqrs.state() == before


def test_03_dry_run_on_env_devnet_changes_nothing(remote: Remote, tmp_path: Path, gx_kernel: str) -> None:
    before = remote.cqrs.state()
    record = run_runbook("03-bootstrap-system", remote.parameters(), tmp_path, gx_kernel, dry_run=True)
    assert record.passed
    assert steps(record) == {"submit BOOTSTRAP_SYSTEM": "would change (dry run)"}
    assert remote.cqrs.state() == before


def test_03_on_env_devnet_bootstraps_through_the_given_endpoints_reading_the_breaker_from_prometheus(
        remote: Remote, tmp_path: Path, gx_kernel: str) -> None:
    record = run_runbook("03-bootstrap-system", remote.parameters(prometheus_url=remote.prometheus_url,
                                                                  commit_timeout_s=90), tmp_path, gx_kernel)
    assert record.passed
    assert steps(record) == {"submit BOOTSTRAP_SYSTEM": "changed"}
    found = checks(record)
    assert found["backend API and Fabric network reachable"]["measured"] == remote.cqrs.api_url
    assert found["chaincode committed and answering"]["measured"].startswith("gxtv3 1.0 seq")
    assert found["submitter healthy"]["status"] == "pass"
    breaker = found["circuit breaker closed"]
    assert breaker["measured"] == f"circuit_breaker_state 0 (closed) in {NAMESPACE} (Prometheus)"
    assert found["BOOTSTRAP_SYSTEM committed"]["detail"].startswith("block ")
    for pool in BOOTSTRAP_POOLS:
        assert found[f"ledger {pool}"]["measured"] == f"{pool_units(pool)} units"
        assert found[f"read model mint {pool}"]["status"] == "pass"


def test_03_again_on_env_devnet_reports_already_done_and_changes_nothing(remote: Remote, tmp_path: Path,
                                                                         gx_kernel: str) -> None:
    before = remote.cqrs.state()
    record = run_runbook("03-bootstrap-system", remote.parameters(), tmp_path, gx_kernel)
    assert record.passed
    assert steps(record) == {"submit BOOTSTRAP_SYSTEM": "already done"}
    found = checks(record)
    assert found["BOOTSTRAP_SYSTEM committed"]["status"] == "skipped"
    # Neither submitter_metrics_url nor prometheus_url: the submitter's checks say why they were not made.
    assert found["circuit breaker closed"]["status"] == "skipped"
    assert "neither submitter_metrics_url nor prometheus_url" in found["circuit breaker closed"]["detail"]
    assert remote.cqrs.state() == before


# --- 04 ---------------------------------------------------------------------------------------------------------
def test_04_on_env_devnet_commits_and_projects_each_command_then_is_already_done(remote: Remote, tmp_path: Path,
                                                                                 gx_kernel: str) -> None:
    parameters = remote.parameters(submitter_metrics_url=remote.cqrs.submitter_metrics_url)
    record = run_runbook("04-validate-cqrs", parameters, tmp_path, gx_kernel)
    assert record.passed
    assert steps(record) == {"initialise countries": "already done", "create the test user": "changed",
                             "distribute genesis": "changed", "mint to the test user": "changed"}
    found = checks(record)
    assert found["circuit breaker closed"]["status"] == "pass"
    for kind in ("CREATE_USER", "DISTRIBUTE_GENESIS", "MINT"):
        assert found[f"{kind} accepted → committed"]["status"] == "pass"
        assert found[f"{kind} committed → projected"]["status"] == "pass"
    assert found["UserProfile row exists"]["status"] == "pass"
    assert found["balance gx-runbook-test-user: read model == ledger"]["status"] == "pass"

    before = remote.cqrs.state()
    again = run_runbook("04-validate-cqrs", parameters, tmp_path, gx_kernel)
    assert again.passed
    assert set(steps(again).values()) == {"already done"}
    assert remote.cqrs.state() == before


# --- 05 ---------------------------------------------------------------------------------------------------------
def test_05_on_env_devnet_reads_the_given_prometheus_and_alertmanager_without_the_drill(
        remote: Remote, tmp_path: Path, gx_kernel: str) -> None:
    stack = remote.cqrs.stack
    assert stack is not None
    report = tmp_path / "slo-devnet.html"
    before = remote.cqrs.state()
    # breaker_drill is not given: off local it defaults to false.
    record = run_runbook("05-validate-monitoring", {
        "env": "devnet", "prometheus_url": stack.prometheus_url, "alertmanager_url": stack.alertmanager_url,
        "lag_window_minutes": 5, "report_path": str(report)}, tmp_path, gx_kernel)
    assert record.passed
    assert steps(record) == {"write the SLO report": "changed"}
    found = checks(record)
    assert found["Prometheus reachable"]["measured"] == f"Prometheus at {stack.prometheus_url}"
    assert found["Alertmanager reachable"]["status"] == "pass"
    assert found["circuit-breaker drill"]["status"] == "skipped"
    # devnet may run the drill now (its Kubernetes form stops the host devnet's Gateway peer), but only when asked.
    assert "off by default on devnet" in found["circuit-breaker drill"]["detail"]
    assert found["alert rules loaded"]["measured"] == "18"
    # Availability needs kube-state-metrics, which the stand-in has not: no data, skipped — not failed.
    assert found["SLO System Availability"]["status"] == "skipped"
    assert f"nothing measured in {NAMESPACE}" in found["SLO System Availability"]["detail"]
    assert not [name for name, check in found.items() if check["status"] == "FAIL"]
    assert report.is_file() and "<script src=\"http" not in report.read_text()
    assert remote.cqrs.state() == before
