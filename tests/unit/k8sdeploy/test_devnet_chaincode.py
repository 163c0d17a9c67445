"""The deploy's chaincode step keeps the committed version: a deploy after runbook 02's upgrade to 1.1 must not
commit 1.0 again (that would take the channel back to 1.0 at the next sequence)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from gxlib.chaincode.lifecycle import DeployPlan
from gxlib.config import Environment
from gxlib.k8sdeploy import fabric
from gxlib.progress import Progress


class FakeOperator:
    def __init__(self, committed: str | None) -> None:
        self.committed_version = committed
        self.servers = [SimpleNamespace(org_key="org1"), SimpleNamespace(org_key="org2")]
        self.calls: list[str] = []

    def committed(self) -> Any:
        return SimpleNamespace(version=self.committed_version) if self.committed_version else None

    def plan(self, version: str) -> DeployPlan:
        return DeployPlan(name="gxtv3", channel="gxchannel-devnet", version=version, label=f"gxtv3_{version}",
                          committed_version=self.committed_version, committed_sequence=2 if self.committed_version
                          else None, packages={}, package_ids={"org1": f"gxtv3_{version}:1"})

    def install(self, plan: DeployPlan, org: str) -> None:
        self.calls.append(f"install {plan.version} {org}")

    def approve(self, plan: DeployPlan, org: str) -> None:
        self.calls.append(f"approve {plan.version} {org}")

    def commit(self, plan: DeployPlan) -> None:
        self.calls.append(f"commit {plan.version}")

    def restart_servers(self, plan: DeployPlan) -> bool:
        self.calls.append(f"roll {plan.version}")
        return False

    def wait_answering(self) -> None:
        pass


def _deploy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, operator: FakeOperator) -> fabric.FabricReport:
    monkeypatch.setattr(fabric, "kubernetes_operator", lambda *args, **kwargs: operator)
    node = fabric.DevnetOnNode(tmp_path, "10.244.0.1", Environment.DEVNET, port_offset=0, progress=Progress(quiet=True),
                               chaincode_version="1.0", roll_timeout_s=60)
    return node.deploy_chaincode(tmp_path / "kubeconfig.yaml")


def test_a_deploy_after_runbook_02s_upgrade_keeps_the_upgraded_version(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    operator = FakeOperator(committed="1.1")
    report = _deploy(tmp_path, monkeypatch, operator)
    assert (report.version, report.already_committed) == ("1.1", True)
    assert operator.calls == ["roll 1.1"]  # no install, approve or commit of 1.0


def test_the_first_deploy_commits_the_configured_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    operator = FakeOperator(committed=None)
    report = _deploy(tmp_path, monkeypatch, operator)
    assert (report.version, report.already_committed) == ("1.0", False)
    assert operator.calls == ["install 1.0 org1", "install 1.0 org2", "approve 1.0 org1", "approve 1.0 org2",
                              "commit 1.0", "roll 1.0"]
