"""`gx runbook`: the list an operator reads, and parameter errors that stop a run before a kernel starts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from gxlib.runbook import runbooks


def gx(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gxlib.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, check=False, timeout=120)


def test_gx_help_lists_the_runbook_group() -> None:
    assert "runbook" in gx("--help").stdout


def test_list_shows_each_runbook_with_what_it_does_and_its_parameters_with_defaults() -> None:
    result = gx("runbook", "list")
    assert result.returncode == 0, result.stderr
    for spec in runbooks():
        assert f"{spec.name} — {spec.title}" in result.stdout
        for name, default, description in spec.describe_parameters():
            line = next(line for line in result.stdout.splitlines()
                        if line.split()[:1] == [name] and description in line)
            assert json.dumps(default) in line
    assert "must be true to act on mainnet" in result.stdout


def test_list_as_json_matches_the_registry() -> None:
    listing = json.loads(gx("runbook", "list", "--json").stdout)
    assert [entry["name"] for entry in listing] == [spec.name for spec in runbooks()]
    params = {p["name"]: p["default"] for p in listing[3]["parameters"]}
    assert params["countries"] == ["US", "CA", "GB"] and params["env"] == "local"


def test_run_with_an_invalid_parameter_exits_2_naming_it_and_runs_nothing(tmp_path: Path) -> None:
    result = gx("runbook", "run", "04-validate-cqrs", "-p", "mint_amount", "-5", "--runs-dir", str(tmp_path / "runs"))
    assert result.returncode == 2
    assert "invalid parameter 'mint_amount'" in result.stderr and "greater than 0" in result.stderr
    assert not (tmp_path / "runs").exists()


def test_run_on_mainnet_without_confirmation_exits_2_and_says_how(tmp_path: Path) -> None:
    result = gx("runbook", "run", "03-bootstrap-system", "-p", "env", "mainnet", "--dry-run",
                "--runs-dir", str(tmp_path / "runs"))
    assert result.returncode == 2
    assert "confirm_mainnet" in result.stderr and "-p confirm_mainnet true" in result.stderr
    assert not (tmp_path / "runs").exists()


def test_run_of_an_unknown_runbook_names_the_known_ones() -> None:
    result = gx("runbook", "run", "06-nothing")
    assert result.returncode == 1
    assert "no runbook named '06-nothing'" in result.stderr and "01-deploy-monitoring" in result.stderr


def test_open_with_a_misspelt_parameter_exits_2_suggesting_the_name_and_opens_nothing(tmp_path: Path) -> None:
    result = gx("runbook", "open", "04-validate-cqrs", "-p", "mint_ammount", "5", "--no-lab",
                env={"GX_RUNBOOK_RUNS_DIR": str(tmp_path / "runs")})
    assert result.returncode == 2
    assert "did you mean 'mint_amount'?" in result.stderr
    assert not (tmp_path / "runs").exists()


def test_open_without_a_running_lab_says_where_the_copy_is_and_how_to_open_it(tmp_path: Path) -> None:
    runtime = tmp_path / "no-servers"  # a Jupyter runtime directory that lists no running lab
    result = gx("runbook", "open", "04-validate-cqrs", "--dry-run", "--no-lab",
                env={"GX_RUNBOOK_RUNS_DIR": str(tmp_path / "runs"), "JUPYTER_RUNTIME_DIR": str(runtime)})
    assert result.returncode == 0, result.stderr
    copies = list((tmp_path / "runs").glob("*-04-validate-cqrs/04-validate-cqrs.ipynb"))
    assert len(copies) == 1 and str(copies[0]) in result.stdout
    assert "make lab" in result.stdout


def test_a_token_given_with_p_is_warned_of_as_visible_in_the_process_list(tmp_path: Path) -> None:
    result = gx("runbook", "run", "04-validate-cqrs", "-p", "api_token", "s3cr3t-t0ken", "-p", "mint_amount", "-5",
                "--runs-dir", str(tmp_path / "runs"))
    assert result.returncode == 2  # the bad amount: nothing ran, and the warning came first
    assert "-p api_token puts the secret in this machine's process list; export GX_API_TOKEN" in result.stderr
    assert "s3cr3t-t0ken" not in result.stderr
    quiet = gx("runbook", "run", "04-validate-cqrs", "-p", "mint_amount", "-5", "--runs-dir", str(tmp_path / "runs"))
    assert "process list" not in quiet.stderr


def test_open_warns_of_a_token_given_with_p_like_run_does(tmp_path: Path) -> None:
    result = gx("runbook", "open", "04-validate-cqrs", "-p", "api_token", "s3cr3t-t0ken", "-p", "mint_amount", "-5",
                "--no-lab", env={"GX_RUNBOOK_RUNS_DIR": str(tmp_path / "runs")})
    assert result.returncode == 2
    assert "-p api_token puts the secret in this machine's process list; export GX_API_TOKEN" in result.stderr
    assert "s3cr3t-t0ken" not in result.stderr and not (tmp_path / "runs").exists()
