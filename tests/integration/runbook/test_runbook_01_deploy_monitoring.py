"""Runbook 01 through papermill (`gxlib.runbook.run`) against the session devnet and a live local monitoring stack.

The stack runs on free ports with 1 s scrape and evaluation intervals; the same ``GX_MONITORING_*`` settings reach
the notebook's kernel through its environment (as they reach `gx monitoring up` and `gx runbook run` in one shell),
and the stack's state directory and the devnet's are passed as parameters.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import nbformat
import pytest
import yaml
from prometheus_client import CollectorRegistry, start_http_server

from gxlib.devnet.network import Devnet
from gxlib.monitoring.catalog import build_metrics
from gxlib.monitoring.dashboard import DASHBOARD_FILE_NAME
from gxlib.monitoring.settings import MonitoringConfig, MonitoringSettings
from gxlib.monitoring.stack import LocalMonitoringStack
from gxlib.progress import Progress
from gxlib.runbook import InvalidParameter, RunbookFailed, RunRecord, run
from gxlib.runbook.deploy_monitoring import dashboard_queries
from gxlib.runbook.settings import RunbookSettings
from tests.integration.monitoring.test_local_stack import free_ports

pytestmark = pytest.mark.integration
RUNBOOK = "01-deploy-monitoring"
BACKEND_TARGET_CHECKS = {"targets up: gx-outbox-submitter", "targets up: gx-projector",
                         "targets up: gx-backend-services"}


@pytest.fixture(scope="module")
def stack(devnet: Devnet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMonitoringStack]:
    prometheus, alertmanager, webhook, api, submitter, projector = free_ports(6)
    environment = {
        "GX_MONITORING_LOCAL_STACK__PROMETHEUS_PORT": prometheus,
        "GX_MONITORING_LOCAL_STACK__ALERTMANAGER_PORT": alertmanager,
        "GX_MONITORING_LOCAL_STACK__WEBHOOK_PORT": webhook,
        "GX_MONITORING_LOCAL_STACK__SCRAPE_INTERVAL_S": 1,
        "GX_MONITORING_LOCAL_STACK__EVALUATION_INTERVAL_S": 1,
        # Free ports for the backend's /metrics: nothing listens there unless a test serves them.
        "GX_MONITORING_LOCAL_TARGETS__API_METRICS_PORT": api,
        "GX_MONITORING_LOCAL_TARGETS__SUBMITTER_METRICS_PORT": submitter,
        "GX_MONITORING_LOCAL_TARGETS__PROJECTOR_METRICS_PORT": projector,
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in environment.items():
            patch.setenv(name, str(value))
        patch.delenv("GX_MONITORING_STACK_STATE_DIR", raising=False)
        config = MonitoringSettings(stack_state_dir=tmp_path_factory.mktemp("monitoring-01"))
        local_stack = LocalMonitoringStack(config, devnet.settings)
        try:
            local_stack.up()
            yield local_stack
        finally:
            local_stack.down()


@pytest.fixture
def settings(tmp_path: Path, gx_kernel: str) -> RunbookSettings:
    return RunbookSettings(runs_dir=tmp_path / "runs", kernel_name=gx_kernel)


def _parameters(stack: LocalMonitoringStack, devnet: Devnet, **extra: object) -> dict[str, object]:
    return {"monitoring_state_dir": str(stack.layout.root), "devnet_state_dir": str(devnet.layout.root),
            "targets_timeout_s": 60, **extra}


def _run(settings: RunbookSettings, parameters: dict[str, object], **kwargs: object) -> tuple[dict, Path]:
    """Run the runbook; returns its summary and the executed notebook, whether it passed or failed."""
    try:
        record: RunRecord = run(RUNBOOK, parameters, settings=settings, progress=Progress(quiet=True),
                                **kwargs)  # type: ignore[arg-type]
        assert record.summary is not None
        return record.summary, record.notebook
    except RunbookFailed as failure:
        assert failure.summary is not None, failure
        return failure.summary, failure.record_dir / f"{RUNBOOK}.ipynb"


def _outputs(notebook: Path) -> str:
    nb = nbformat.read(notebook, as_version=4)
    return "\n".join(json.dumps(cell.get("outputs", [])) for cell in nb.cells)


def _deployed(stack: LocalMonitoringStack) -> dict[str, tuple[bytes, int]]:
    files = [p for p in stack.layout.config_dir.rglob("*") if p.is_file()]
    return {str(p): (p.read_bytes(), p.stat().st_mtime_ns) for p in files}


def _loaded_rules(stack: LocalMonitoringStack) -> list[str]:
    groups = httpx.get(f"{stack.prometheus_url}/api/v1/rules", timeout=5).json()["data"]["groups"]
    return sorted(rule["name"] for group in groups for rule in group["rules"])


def _steps(summary: dict) -> dict[str, str]:
    return {step["name"]: step["outcome"] for step in summary["steps"]}


def _checks(summary: dict, status: str) -> set[str]:
    return {check["name"] for check in summary["checks"] if check["status"] == status}


@pytest.fixture(scope="module")
def drifted(stack: LocalMonitoringStack) -> str:
    """The deployed rules file lacks the last rule and Prometheus runs with it (17 rules): a deployment that
    drifted from the code. Returns the missing rule's name."""
    rules_file = stack.layout.rules_file
    document = yaml.safe_load(rules_file.read_text())
    removed = document["groups"][0]["rules"].pop()
    rules_file.write_text(yaml.safe_dump(document, sort_keys=False))
    assert httpx.post(f"{stack.prometheus_url}/-/reload", timeout=10).status_code == 200
    assert len(_loaded_rules(stack)) == 17
    return str(removed["alert"])


def test_dry_run_shows_the_diff_and_changes_nothing(stack: LocalMonitoringStack, devnet: Devnet, drifted: str,
                                                     settings: RunbookSettings) -> None:
    before = _deployed(stack)
    summary, notebook = _run(settings, _parameters(stack, devnet), dry_run=True)
    assert summary["passed"] and summary["dry_run"]
    assert _steps(summary) == {"write scrape config and alert rules": "would change (dry run)",
                               "reload Prometheus": "would change (dry run)",
                               "load the dashboard": "would change (dry run)"}
    outputs = _outputs(notebook)
    assert f"+  - alert: {drifted}" in outputs  # the unified diff shows the rule the deployment lacks
    assert "scrape config" in outputs and "unchanged, nothing to deploy" in outputs
    assert _deployed(stack) == before and len(_loaded_rules(stack)) == 17


def test_run_deploys_reloads_and_verifies_with_the_backend_targets_honestly_down(
        stack: LocalMonitoringStack, devnet: Devnet, drifted: str, settings: RunbookSettings) -> None:
    summary, _ = _run(settings, _parameters(stack, devnet))
    assert _steps(summary) == {"write scrape config and alert rules": "changed", "reload Prometheus": "changed",
                               "load the dashboard": "changed"}
    assert drifted in _loaded_rules(stack) and len(_loaded_rules(stack)) == 18
    assert (stack.layout.config_dir / "dashboards" / DASHBOARD_FILE_NAME).is_file()
    # Nothing serves the backend's /metrics: exactly the three gx-* target checks fail, with what was measured.
    assert not summary["passed"] and _checks(summary, "FAIL") == BACKEND_TARGET_CHECKS
    by_name = {check["name"]: check for check in summary["checks"]}
    assert by_name["targets up: gx-projector"]["measured"] == "0/1 up"
    assert "connection refused" in by_name["targets up: gx-projector"]["detail"]
    for job in ("fabric-orderer", "fabric-peer"):
        assert by_name[f"targets up: {job}"]["status"] == "pass"
    assert by_name["alert rules loaded (gx_backend_cqrs_alerts)"]["measured"] == "18 rules"
    queries = [c for c in summary["checks"] if c["name"].startswith("dashboard query: ")]
    assert len(queries) == len(dashboard_queries(MonitoringConfig())) and all(c["status"] == "pass" for c in queries)
    assert by_name["dashboard variable $namespace offers the backend namespace"]["measured"] == "backend-local"


def test_second_run_reports_already_done_and_changes_nothing(stack: LocalMonitoringStack, devnet: Devnet,
                                                             drifted: str, settings: RunbookSettings) -> None:
    _run(settings, _parameters(stack, devnet))
    before = _deployed(stack)
    summary, _ = _run(settings, _parameters(stack, devnet))
    assert set(_steps(summary).values()) == {"already done"}
    assert _deployed(stack) == before


@pytest.fixture
def backend_metrics(stack: LocalMonitoringStack) -> Iterator[None]:
    """The backend's three /metrics endpoints, served with the catalog's metrics (the services stand-in)."""
    registry = CollectorRegistry()
    build_metrics(registry)
    targets = stack.config.local_targets
    servers = [start_http_server(port, addr=targets.host, registry=registry)
               for port in (targets.api_metrics_port, targets.submitter_metrics_port, targets.projector_metrics_port)]
    try:
        yield
    finally:
        for server, thread in servers:
            server.shutdown()
            thread.join(timeout=5)


def test_with_the_backend_serving_metrics_every_check_passes(stack: LocalMonitoringStack, devnet: Devnet,
                                                             backend_metrics: None,
                                                             settings: RunbookSettings) -> None:
    summary, _ = _run(settings, _parameters(stack, devnet))
    assert summary["passed"], [c for c in summary["checks"] if c["status"] == "FAIL"]
    by_name = {check["name"]: check for check in summary["checks"]}
    assert all(by_name[name]["measured"] == "1/1 up" for name in BACKEND_TARGET_CHECKS)
    # A gauge the stand-in exports answers with data; a labelled counter nobody incremented has no series yet.
    assert by_name["dashboard query: Outbox Command Queue Status / pending"]["measured"] == "1 series"
    assert by_name["dashboard query: Event Processing Rate by Type / {{eventType}}"]["detail"].startswith("no data")


def test_an_invalid_parameter_stops_the_run_before_anything(stack: LocalMonitoringStack, devnet: Devnet,
                                                            settings: RunbookSettings) -> None:
    before = _deployed(stack)
    with pytest.raises(InvalidParameter, match=r"prometheus_url.*not an http"):
        run(RUNBOOK, _parameters(stack, devnet, prometheus_url="ftp://127.0.0.1:1"), settings=settings,
            progress=Progress(quiet=True))
    with pytest.raises(InvalidParameter, match="targets_timeout_s"):
        run(RUNBOOK, _parameters(stack, devnet, targets_timeout_s="-5"), settings=settings,
            progress=Progress(quiet=True))
    assert not settings.runs_dir.exists()  # no record: the notebook never started
    assert _deployed(stack) == before


def test_a_kubernetes_environment_whose_api_server_does_not_answer_stops_the_run(
        stack: LocalMonitoringStack, devnet: Devnet, settings: RunbookSettings, tmp_path: Path) -> None:
    # A kubeconfig of a cluster nobody serves: the run must say so, and touch neither it nor the local stack.
    server = f"https://127.0.0.1:{free_ports(1)[0]}"
    kubeconfig = tmp_path / "kubeconfig.yaml"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "ops",
        "clusters": [{"name": "c", "cluster": {"server": server, "insecure-skip-tls-verify": True}}],
        "users": [{"name": "u", "user": {"token": "unused"}}],
        "contexts": [{"name": "ops", "context": {"cluster": "c", "user": "u"}}]}))
    before = _deployed(stack)
    summary, _ = _run(settings, {"env": "testnet", "kubeconfig": str(kubeconfig)})
    assert not summary["passed"] and summary["steps"] == []
    (check,) = summary["checks"]
    assert check["name"] == "platform available" and check["status"] == "FAIL"
    assert f"the Kubernetes API server {server} (context ops, kubeconfig {kubeconfig}) does not answer" \
        in check["detail"]
    assert _deployed(stack) == before
