"""Path parameters are made absolute and checked before any step (issue 13), and a field shared by several
runbooks is validated and described the same way in each (issue 11)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gxlib.runbook import InvalidParameter, prepare, runbooks
from gxlib.runbook.settings import RunbookSettings

ALL = [spec.name for spec in runbooks()]


def _taking(parameter: str) -> list[str]:
    return [spec.name for spec in runbooks() if parameter in spec.parameters.model_fields]


def _refused(name: str, raw: dict[str, object], parameter: str) -> str:
    with pytest.raises(InvalidParameter) as caught:
        prepare(name, raw, environ={})
    assert caught.value.parameter == parameter, caught.value.message
    assert f"invalid parameter {parameter!r}" in caught.value.message
    return caught.value.reason


def _devnet(path: Path) -> Path:
    """A directory shaped like a devnet's state directory (what `gx devnet up` leaves)."""
    path.mkdir(parents=True)
    (path / "devnet.json").write_text("{}")
    return path


def _monitoring_stack(path: Path) -> Path:
    """A directory shaped like a local monitoring stack's state directory (what `gx monitoring up` leaves)."""
    (path / "config").mkdir(parents=True)
    (path / "config" / "prometheus.yml").write_text("global: {}\n")
    return path


def _kubeconfig(path: Path, *contexts: str) -> Path:
    path.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Config", "current-context": contexts[0],
                                    "contexts": [{"name": c, "context": {"cluster": "c", "user": "u"}}
                                                 for c in contexts]}))
    return path


# --- state directories ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", _taking("devnet_state_dir"))
def test_a_devnet_state_dir_climbing_to_etc_is_refused_as_a_system_directory(
        name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    deep = tmp_path / "a" / "b" / "c" / "d" / "e"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    climbing = "../" * len(deep.parts) + "etc"  # more than enough `..` to reach / from anywhere
    reason = _refused(name, {"devnet_state_dir": climbing, "dry_run": "true"}, "devnet_state_dir")
    assert reason.startswith("/etc is a system directory")


@pytest.mark.parametrize("parameter", ["devnet_state_dir", "monitoring_state_dir"])
@pytest.mark.parametrize("system", ["/", "/etc", "/proc", "/sys", "/dev", "/usr", "/bin", "/boot", "/usr/lib",
                                   "/etc/gx"])
def test_a_system_directory_is_refused_as_a_state_dir_naming_the_parameter(parameter: str, system: str) -> None:
    for name in _taking(parameter):
        reason = _refused(name, {parameter: system}, parameter)
        assert "system directory" in reason and "not a " in reason


@pytest.mark.parametrize("name", _taking("devnet_state_dir"))
def test_a_devnet_state_dir_must_be_an_existing_devnet(name: str, tmp_path: Path) -> None:
    assert "does not exist" in _refused(name, {"devnet_state_dir": str(tmp_path / "nowhere")}, "devnet_state_dir")
    (tmp_path / "file").write_text("")
    assert "is not a directory" in _refused(name, {"devnet_state_dir": str(tmp_path / "file")}, "devnet_state_dir")
    reason = _refused(name, {"devnet_state_dir": str(tmp_path)}, "devnet_state_dir")
    assert f"{tmp_path} is not a devnet's state directory: it has no devnet.json" in reason


@pytest.mark.parametrize("name", _taking("devnet_state_dir"))
def test_a_relative_devnet_state_dir_is_made_absolute_before_the_notebook_runs_elsewhere(
        name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    devnet = _devnet(tmp_path / "devnet")
    monkeypatch.chdir(tmp_path)
    _, params = prepare(name, {"devnet_state_dir": "devnet"}, environ={})
    assert params.notebook_values()["devnet_state_dir"] == str(devnet)


def test_a_devnet_state_dir_given_with_a_tilde_is_expanded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    devnet = _devnet(tmp_path / "devnet")
    monkeypatch.setenv("HOME", str(tmp_path))
    _, params = prepare("03-bootstrap-system", {"devnet_state_dir": "~/devnet"}, environ={})
    assert params.notebook_values()["devnet_state_dir"] == str(devnet)


@pytest.mark.parametrize("name", _taking("monitoring_state_dir"))
def test_a_monitoring_state_dir_must_be_a_monitoring_stacks(name: str, monkeypatch: pytest.MonkeyPatch,
                                                            tmp_path: Path) -> None:
    parameter = "monitoring_state_dir"
    assert "does not exist" in _refused(name, {parameter: str(tmp_path / "nowhere")}, parameter)
    (tmp_path / "file").write_text("")
    assert "is not a directory" in _refused(name, {parameter: str(tmp_path / "file")}, parameter)
    reason = _refused(name, {parameter: str(tmp_path)}, parameter)
    assert f"{tmp_path} is not a monitoring stack's state directory: it has no config/prometheus.yml" in reason
    stack = _monitoring_stack(tmp_path / "stack")
    monkeypatch.chdir(tmp_path)
    _, params = prepare(name, {parameter: "stack"}, environ={})
    assert params.notebook_values()[parameter] == str(stack)


# --- the Fabric network file ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", _taking("fabric_network_file"))
def test_a_fabric_network_file_must_be_an_existing_json_document(name: str, tmp_path: Path) -> None:
    raw: dict[str, object] = {"env": "devnet", "api_url": "https://api.devnet.example", "api_token": "t"}
    if name == "02-upgrade-chaincode":
        raw = {"env": "devnet"}
    cases = {"nowhere.json": (None, "does not exist"),
             "dir.json": ("dir", "is not a regular file"),
             "text.json": ("peers: none", "is not JSON"),
             "list.json": ("[]", "holds JSON, but not an object")}
    for file_name, (content, why) in cases.items():
        path = tmp_path / file_name
        if content == "dir":
            path.mkdir()
        elif content is not None:
            path.write_text(content)
        reason = _refused(name, {**raw, "fabric_network_file": str(path)}, "fabric_network_file")
        assert reason.startswith(str(path)) and why in reason
    (tmp_path / "net.json").write_text(json.dumps({"peers": []}))
    _, params = prepare(name, {**raw, "fabric_network_file": str(tmp_path / "net.json")}, environ={})
    assert params.notebook_values()["fabric_network_file"] == str(tmp_path / "net.json")


# --- report_path -----------------------------------------------------------------------------------------------------
REPORT = "05-validate-monitoring"


def test_a_report_path_must_name_an_html_file(tmp_path: Path) -> None:
    assert "does not end in .html" in _refused(REPORT, {"report_path": str(tmp_path / "slo.pdf")}, "report_path")
    (tmp_path / "dir.html").mkdir()
    assert "is not a regular file" in _refused(REPORT, {"report_path": str(tmp_path / "dir.html")}, "report_path")
    (tmp_path / "file").write_text("")
    reason = _refused(REPORT, {"report_path": str(tmp_path / "file" / "slo.html")}, "report_path")
    assert f"{tmp_path / 'file'} is not a directory" in reason


@pytest.mark.parametrize("path", ["/etc/slo.html", "/usr/share/slo.html", "/proc/slo.html", "/slo.html"])
def test_a_report_path_in_a_system_directory_is_refused(path: str) -> None:
    assert "system directory" in _refused(REPORT, {"report_path": path}, "report_path")


def test_a_report_path_inside_the_notebooks_directory_is_refused() -> None:
    notebooks = RunbookSettings().notebooks_dir.resolve()
    for inside in (notebooks / "slo.html", notebooks / "reports" / "slo.html"):
        reason = _refused(REPORT, {"report_path": str(inside)}, "report_path")
        assert f"inside the runbook notebooks directory {notebooks}" in reason


def test_a_relative_report_path_is_made_absolute_and_its_missing_directories_are_allowed(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    _, params = prepare(REPORT, {"report_path": "slo.html"}, environ={})
    assert params.notebook_values()["report_path"] == str(tmp_path / "slo.html")
    # The report writer creates the directories (an integration test writes to reports/slo.html).
    _, params = prepare(REPORT, {"report_path": "reports/slo.html"}, environ={})
    assert params.notebook_values()["report_path"] == str(tmp_path / "reports" / "slo.html")


# --- kubeconfig / kube_context: one validation in every runbook that takes them ------------------------------------
def _off_local(name: str, tmp_path: Path) -> dict[str, object]:
    network_file = tmp_path / "net.json"
    network_file.write_text("{}")
    return {"env": "devnet", "fabric_network_file": str(network_file)} if name == "02-upgrade-chaincode" else \
        {"env": "devnet"}


@pytest.mark.parametrize("name", _taking("kubeconfig"))
def test_every_runbook_taking_a_kubeconfig_checks_it_and_its_context_the_same_way(name: str, tmp_path: Path) -> None:
    kubeconfig = _kubeconfig(tmp_path / "config", "ops", "staging")
    off_local = _off_local(name, tmp_path)
    assert "is not a file" in _refused(name, {**off_local, "kubeconfig": str(tmp_path / "nope")}, "kubeconfig")
    reason = _refused(name, {**off_local, "kubeconfig": str(kubeconfig), "kube_context": "prod"}, "kube_context")
    assert "'prod' is not a context of" in reason and "ops, staging" in reason
    assert "env=local acts on this machine" in _refused(name, {"kubeconfig": str(kubeconfig)}, "kubeconfig")
    assert "env=local acts on this machine" in _refused(name, {"kube_context": "ops"}, "kube_context")
    _, params = prepare(name, {**off_local, "kubeconfig": str(kubeconfig), "kube_context": "staging"}, environ={})
    assert params.notebook_values()["kubeconfig"] == str(kubeconfig)


def test_a_relative_kubeconfig_is_made_absolute(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _kubeconfig(tmp_path / "config", "ops")
    monkeypatch.chdir(tmp_path)
    for name in _taking("kubeconfig"):
        _, params = prepare(name, {**_off_local(name, tmp_path), "kubeconfig": "config"}, environ={})
        assert params.notebook_values()["kubeconfig"] == str(tmp_path / "config")


SHARED = ["env", "dry_run", "confirm_mainnet", "channel", "kubeconfig", "kube_context", "prometheus_url",
          "alertmanager_url", "api_url", "api_token", "submitter_metrics_url", "devnet_state_dir",
          "monitoring_state_dir", "fabric_network_file"]


@pytest.mark.parametrize("name", ALL)
def test_every_model_starts_with_env_so_that_later_validators_can_read_it(name: str) -> None:
    spec = next(spec for spec in runbooks() if spec.name == name)
    assert list(spec.parameters.model_fields)[:3] == ["env", "dry_run", "confirm_mainnet"]


@pytest.mark.parametrize("parameter", SHARED)
def test_a_parameter_shared_by_runbooks_has_one_description(parameter: str) -> None:
    described = {spec.name: spec.parameters.model_fields[parameter].description for spec in runbooks()
                 if parameter in spec.parameters.model_fields}
    assert len(set(described.values())) == 1, described


# --- nothing runs --------------------------------------------------------------------------------------------------
def test_gx_runbook_run_refuses_a_state_dir_climbing_to_etc_before_anything_runs(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gxlib.cli", "runbook", "run", "01-deploy-monitoring", "-p", "devnet_state_dir",
         "../../../../../../../../../../etc", "--dry-run", "--runs-dir", str(tmp_path / "runs")],
        capture_output=True, text=True, cwd=tmp_path, env=dict(os.environ), check=False, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "invalid parameter 'devnet_state_dir'" in result.stderr and "/etc is a system directory" in result.stderr
    assert not (tmp_path / "runs").exists()
