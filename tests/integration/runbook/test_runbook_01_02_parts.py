"""The pieces of runbooks 01 and 02 that need no network: the plan's sequence, the artifact diff, and the sections
doing nothing once a runbook has stopped."""

from __future__ import annotations

from pathlib import Path

import pytest

from gxlib.chaincode.deploy import DeployPlan
from gxlib.monitoring.artifacts import MonitoringArtifact
from gxlib.monitoring.render import unified_diff
from gxlib.runbook import runbook
from gxlib.runbook.checks import CheckStatus
from gxlib.runbook.deploy_monitoring import DeployMonitoring, dashboard_queries
from gxlib.runbook.parameters import validate_parameters
from gxlib.runbook.session import Runbook
from gxlib.runbook.upgrade_chaincode import UpgradeChaincode, lists_function


def _plan(committed_version: str | None, committed_sequence: int | None, version: str = "1.1") -> DeployPlan:
    return DeployPlan("gxtv3", "gxchannel-local", version, f"gxtv3_{version}", committed_version, committed_sequence,
                      packages={}, package_ids={})


def test_the_plan_takes_the_next_sequence_unless_the_version_is_committed() -> None:
    assert _plan(None, None).sequence == 1
    assert _plan("1.0", 1).sequence == 2
    assert not _plan("1.0", 1).already_committed
    committed = _plan("1.1", 2)
    assert committed.already_committed and committed.sequence == 2
    assert committed.definition().sequence == 2


def test_the_diff_is_unified_names_the_location_and_is_shortened_when_long() -> None:
    diff = unified_diff("a: 1\nb: 2\n", "a: 1\nb: 3\n", "config/prometheus.yml")
    assert diff.splitlines()[:2] == ["--- deployed: config/prometheus.yml", "+++ rendered: config/prometheus.yml"]
    assert "-b: 2" in diff and "+b: 3" in diff
    assert unified_diff("same\n", "same\n", "x") == ""
    new = unified_diff(None, "".join(f"line {i}\n" for i in range(50)), "x", max_lines=10)
    assert new.startswith("--- /dev/null") and new.endswith("more lines of the diff not shown)")


def test_an_artifact_reports_new_changed_unchanged_and_its_changed_lines() -> None:
    assert MonitoringArtifact("rules", "r.yml", "a\n", None).state == "new"
    changed = MonitoringArtifact("rules", "r.yml", "a\nb\n", "a\nc\n")
    assert changed.state == "changed" and changed.changed_lines() == 2
    assert MonitoringArtifact("rules", "r.yml", "a\n", "a\n").state == "unchanged"


def test_every_dashboard_query_is_listed_with_its_panel() -> None:
    from gxlib.monitoring.settings import MonitoringConfig

    queries = dashboard_queries(MonitoringConfig())
    assert ("Circuit Breaker State / state", 'max(circuit_breaker_state{namespace=~"$namespace"})') in queries
    assert len({label for label, _ in queries}) == len(queries)


def _session(name: str, **parameters: object) -> Runbook:
    spec = runbook(name)
    return Runbook(spec, validate_parameters(spec.name, spec.parameters, parameters), dry_run=False)


def test_on_kubernetes_without_a_cluster_runbook_01_records_why_and_every_section_does_nothing(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GX_K8S_PLATFORM_KUBECONFIG", str(tmp_path / "no-kubeconfig"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    rb = _session("01-deploy-monitoring", env="devnet")
    deploy = DeployMonitoring(rb)
    deploy.check_target()
    assert deploy.render() == []
    for section in (deploy.show_diff, deploy.apply, deploy.load_dashboard, deploy.verify_targets,
                    deploy.verify_rules, deploy.verify_dashboard_queries):
        section()
    (check,) = list(rb.checks)
    assert check.status is CheckStatus.FAILED and "no Kubernetes cluster to act on" in check.detail
    assert rb.steps == []


def test_on_kubernetes_runbook_02_without_its_network_records_why_and_every_section_does_nothing(
        tmp_path: Path) -> None:
    # Validation refuses a missing network file up front; this one goes away between validation and the run.
    network_file = tmp_path / "gx-mainnet-network.json"
    network_file.write_text("{}")
    rb = _session("02-upgrade-chaincode", env="mainnet", confirm_mainnet=True, fabric_network_file=str(network_file))
    network_file.unlink()
    upgrade = UpgradeChaincode(rb)
    assert upgrade.query_committed() is None
    for section in (upgrade.build_packages, upgrade.install, upgrade.approve, upgrade.check_commit_readiness,
                    upgrade.commit, upgrade.restart_servers, upgrade.verify):
        section()
    (check,) = list(rb.checks)
    assert check.name == "platform available" and check.status is CheckStatus.FAILED
    assert f"cannot read the Fabric network file {network_file}" in check.detail
    assert rb.steps == []


def test_get_metadata_is_read_for_a_contract_function() -> None:
    metadata = {"contracts": {"TokenomicsContract": {"transactions": [{"name": "Mint"}, {"name": "Transfer"}]}}}
    assert lists_function(metadata, "TokenomicsContract", "Mint")
    assert not lists_function(metadata, "TokenomicsContract", "Burn")
    assert not lists_function({}, "TokenomicsContract", "Mint")
