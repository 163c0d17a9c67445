"""Runbook 02 through papermill (`gxlib.runbook.run`) against the session devnet: the devnet's state directory is a
parameter; the upgrade is checked on the peers themselves (committed definition, ledger height, server pids)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from gxlib.chaincode import servers
from gxlib.chaincode.deploy import ChaincodeOperator
from gxlib.config import ChaincodeSettings
from gxlib.devnet import processes
from gxlib.devnet.network import Devnet
from gxlib.progress import Progress
from gxlib.runbook import InvalidParameter, RunbookFailed, run
from gxlib.runbook.settings import RunbookSettings
from gxlib.runbook.upgrade_chaincode import ledger_height

pytestmark = pytest.mark.integration
RUNBOOK = "02-upgrade-chaincode"
STEPS = ("install on org1's peer", "install on org2's peer", "approve for Org1MSP", "approve for Org2MSP",
         "restart the chaincode servers")


@pytest.fixture(scope="module")
def operator(devnet: Devnet) -> Iterator[ChaincodeOperator]:
    """The chaincode committed on the session devnet (whatever version an earlier test left). Its servers keep
    running for later modules; the session's devnet teardown stops them."""
    op = ChaincodeOperator(devnet, ChaincodeSettings(), Progress(quiet=True))
    if op.committed() is None:
        op.deploy("1.0")
    yield op


@pytest.fixture
def settings(tmp_path: Path, gx_kernel: str) -> RunbookSettings:
    return RunbookSettings(runs_dir=tmp_path / "runs", kernel_name=gx_kernel)


def _run(settings: RunbookSettings, devnet: Devnet, **parameters: object) -> dict:
    try:
        record = run(RUNBOOK, {"devnet_state_dir": str(devnet.layout.root), **parameters}, settings=settings,
                     progress=Progress(quiet=True))
    except RunbookFailed as failure:
        assert failure.summary is not None, failure
        return failure.summary
    assert record.summary is not None
    outputs = "\n".join(json.dumps(c.get("outputs", [])) for c in nbformat.read(record.notebook, 4).cells)
    return {**record.summary, "outputs": outputs}


def _steps(summary: dict) -> dict[str, str]:
    return {step["name"]: step["outcome"] for step in summary["steps"]}


def _committed(operator: ChaincodeOperator) -> tuple[str, int]:
    committed = operator.committed()
    assert committed is not None
    return committed.version, committed.sequence


def test_dry_run_shows_the_plan_and_changes_nothing(operator: ChaincodeOperator, devnet: Devnet,
                                                    settings: RunbookSettings) -> None:
    version, sequence = _committed(operator)
    height, pids = ledger_height(devnet), [processes.running_pid(s) for s in operator.servers]
    plan = operator.plan("9.9-dry")
    summary = _run(settings, devnet, chaincode_version="9.9-dry", dry_run=True)
    assert summary["passed"] and summary["dry_run"]
    assert set(_steps(summary).values()) == {"would change (dry run)"}
    assert _steps(summary)["commit gxtv3 9.9-dry"] == "would change (dry run)"
    # The plan: next sequence and each org's package ID.
    assert f"version 9.9-dry, sequence {sequence + 1}" in summary["outputs"]
    assert all(pkg in summary["outputs"] for pkg in plan.package_ids.values())
    checks = {c["name"]: c for c in summary["checks"]}
    assert checks["dry run changed nothing: ledger height"]["status"] == "pass"
    assert (ledger_height(devnet), _committed(operator)) == (height, (version, sequence))
    assert [processes.running_pid(s) for s in operator.servers] == pids
    assert not any(plan.package_ids["org1"] in ids for ids in operator.status().installed.values())


def test_default_parameters_upgrade_to_1_1(operator: ChaincodeOperator, devnet: Devnet,
                                           settings: RunbookSettings) -> None:
    version, sequence = _committed(operator)
    summary = _run(settings, devnet)
    assert summary["passed"], [c for c in summary["checks"] if c["status"] == "FAIL"]
    expected = sequence if version == "1.1" else sequence + 1
    assert _committed(operator) == ("1.1", expected)


def test_another_version_is_committed_with_the_next_sequence_and_answers(operator: ChaincodeOperator, devnet: Devnet,
                                                                         settings: RunbookSettings) -> None:
    _, sequence = _committed(operator)
    height = ledger_height(devnet)
    summary = _run(settings, devnet, chaincode_version="2.0-rb", commit_timeout_s=60)
    assert summary["passed"], [c for c in summary["checks"] if c["status"] == "FAIL"]
    steps = _steps(summary)
    assert all(steps[name] == "changed" for name in STEPS) and steps["commit gxtv3 2.0-rb"] == "changed"
    assert _committed(operator) == ("2.0-rb", sequence + 1)
    for server in operator.servers:
        assert (servers.running_package_id(server) or "").startswith("gxtv3_2.0-rb:")
    checks = {c["name"]: c["status"] for c in summary["checks"]}
    assert checks["org1's peer: GetMetadata lists TokenomicsContract:Mint"] == "pass"
    assert checks["org2's peer: GetMetadata lists TokenomicsContract:Mint"] == "pass"
    assert (ledger_height(devnet) or 0) >= (height or 0) + 3  # two approvals and the commit


def test_second_run_with_the_same_version_reports_already_committed(operator: ChaincodeOperator, devnet: Devnet,
                                                                    settings: RunbookSettings) -> None:
    _run(settings, devnet, chaincode_version="2.0-rb")
    committed, height = _committed(operator), ledger_height(devnet)
    pids = [processes.running_pid(s) for s in operator.servers]
    summary = _run(settings, devnet, chaincode_version="2.0-rb")
    assert summary["passed"]
    assert set(_steps(summary).values()) == {"already done"}
    assert "already committed" in summary["outputs"]
    assert (_committed(operator), ledger_height(devnet)) == (committed, height)
    assert [processes.running_pid(s) for s in operator.servers] == pids


def test_an_invalid_parameter_stops_the_run_before_anything(operator: ChaincodeOperator, devnet: Devnet,
                                                            settings: RunbookSettings) -> None:
    committed, height = _committed(operator), ledger_height(devnet)
    with pytest.raises(InvalidParameter, match="chaincode_version"):
        run(RUNBOOK, {"chaincode_version": "bad version"}, settings=settings, progress=Progress(quiet=True))
    with pytest.raises(InvalidParameter, match="channel"):
        run(RUNBOOK, {"channel": "Not_A_Channel"}, settings=settings, progress=Progress(quiet=True))
    assert not settings.runs_dir.exists()
    assert (_committed(operator), ledger_height(devnet)) == (committed, height)


def test_a_channel_the_devnet_does_not_have_stops_the_run(operator: ChaincodeOperator, devnet: Devnet,
                                                          settings: RunbookSettings) -> None:
    committed = _committed(operator)
    summary = _run(settings, devnet, channel="otherchannel", chaincode_version="3.0")
    assert not summary["passed"] and summary["steps"] == []
    assert "channel 'otherchannel' is not on the devnet" in summary["checks"][0]["detail"]
    assert _committed(operator) == committed


def test_a_kubernetes_environment_needs_its_fabric_network_file(operator: ChaincodeOperator, devnet: Devnet,
                                                                  settings: RunbookSettings) -> None:
    with pytest.raises(InvalidParameter, match="fabric_network_file"):
        run(RUNBOOK, {"env": "devnet", "chaincode_version": "3.0"}, settings=settings, progress=Progress(quiet=True))
    assert not settings.runs_dir.exists()


def test_a_kubernetes_environment_whose_cluster_is_not_configured_stops_the_run(
        operator: ChaincodeOperator, devnet: Devnet, settings: RunbookSettings, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    committed = _committed(operator)
    network_file = tmp_path / "network.json"
    network_file.write_text(json.dumps(devnet.environment()))
    # A missing kubeconfig parameter is refused up front; one named by the platform's setting is found in the run.
    monkeypatch.setenv("GX_K8S_PLATFORM_KUBECONFIG", str(tmp_path / "no-kubeconfig.yaml"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    summary = _run(settings, devnet, env="devnet", chaincode_version="3.0", channel=devnet.settings.channel,
                   fabric_network_file=str(network_file))
    assert not summary["passed"] and summary["steps"] == []
    (check,) = summary["checks"]
    assert check["name"] == "platform available" and "kubeconfig" in check["detail"]
    assert _committed(operator) == committed
