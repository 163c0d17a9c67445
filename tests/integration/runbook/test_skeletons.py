"""The five runbook notebooks execute cleanly as dry runs, through papermill and `gx runbook run`, and under nbval."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from gxlib.progress import Progress
from gxlib.runbook import run, runbooks
from gxlib.runbook.settings import RunbookSettings

REPO_ROOT = Path(__file__).resolve().parents[3]
NOTEBOOKS = REPO_ROOT / "notebooks"
NAMES = [spec.name for spec in runbooks()]


def gx(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gxlib.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **env}, check=False, timeout=300)


@pytest.mark.parametrize("name", NAMES)
def test_runbook_runs_as_a_dry_run_on_local_defaults(name: str, gx_kernel: str, tmp_path: Path) -> None:
    record = run(name, {}, dry_run=True, settings=RunbookSettings(runs_dir=tmp_path, kernel_name=gx_kernel),
                 progress=Progress(quiet=True))
    assert record.passed and record.summary is not None and record.summary["dry_run"] is True
    assert record.notebook.is_file() and record.html.is_file()


def test_non_default_parameters_reach_the_notebook(gx_kernel: str, tmp_path: Path) -> None:
    record = run("04-validate-cqrs", {"channel": "otherchannel", "mint_amount": "250", "countries": "CA,GB",
                                      "test_user_country": "GB"}, dry_run=True,
                 settings=RunbookSettings(runs_dir=tmp_path, kernel_name=gx_kernel), progress=Progress(quiet=True))
    assert record.summary is not None
    params = record.summary["parameters"]
    assert (params["channel"], params["mint_amount"], params["countries"]) == ("otherchannel", 250, ["CA", "GB"])


def test_gx_runbook_run_prints_the_record_and_exits_0(gx_kernel: str, tmp_path: Path) -> None:
    result = gx("runbook", "run", "03-bootstrap-system", "--dry-run", "-p", "channel", "gxchannel-x",
                env={"GX_RUNBOOK_RUNS_DIR": str(tmp_path), "GX_RUNBOOK_KERNEL_NAME": gx_kernel})
    assert result.returncode == 0, result.stderr
    record = Path(result.stdout.strip().splitlines()[-1])
    assert record.parent == tmp_path and record.name.endswith("-03-bootstrap-system")
    assert f"record of the run: {record}" in result.stderr
    assert json.loads((record / "summary.json").read_text())["parameters"]["channel"] == "gxchannel-x"


def test_gx_runbook_run_exits_1_when_a_check_fails(gx_kernel: str, tmp_path: Path) -> None:
    # A copy of 03 with one failing check before the summary cell.
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    nb = nbformat.read(NOTEBOOKS / "03-bootstrap-system.ipynb", as_version=4)
    nb.cells.insert(len(nb.cells) - 1, nbformat.v4.new_code_cell(
        'rb.checks.equal("pool SYSTEM_LOAN_POOL", 0, 100_000_000, unit="coins")'))
    nbformat.write(nb, notebooks / "03-bootstrap-system.ipynb")
    result = gx("runbook", "run", "03-bootstrap-system", "--dry-run",
                env={"GX_RUNBOOK_RUNS_DIR": str(tmp_path / "runs"), "GX_RUNBOOK_NOTEBOOKS_DIR": str(notebooks),
                     "GX_RUNBOOK_KERNEL_NAME": gx_kernel})
    assert result.returncode == 1
    assert "ChecksFailed" in result.stderr and "pool SYSTEM_LOAN_POOL" in result.stderr
    assert "the record of this run is in" in result.stderr
    assert "FAIL" in result.stdout  # the summary table is printed before the error


def test_a_dry_run_whose_prometheus_does_not_answer_exits_1_naming_it(gx_kernel: str, tmp_path: Path) -> None:
    with socket.socket() as sock:  # a loopback port nothing listens on
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    result = gx("runbook", "run", "05-validate-monitoring", "--dry-run", "-p", "prometheus_url", dead,
                "-p", "breaker_drill", "false",
                env={"GX_RUNBOOK_RUNS_DIR": str(tmp_path), "GX_RUNBOOK_KERNEL_NAME": gx_kernel})
    assert result.returncode == 1
    assert "ChecksFailed" in result.stderr and f"endpoint answers: Prometheus at {dead}" in result.stderr
    assert "Connection refused" in result.stdout  # the summary table says what was wrong


def test_nbval_executes_the_five_notebooks_cleanly(gx_kernel: str, tmp_path: Path) -> None:
    # --nbval-lax: the notebooks are committed without outputs, so only errors fail a cell.
    # GX_RUNBOOK_FORCE_DRY_RUN: nbval runs the cells as written; the safety net makes every run a dry run.
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-kernel-name", gx_kernel, "-p", "no:cacheprovider",
         "-q", "-o", "addopts=", *(str(NOTEBOOKS / f"{name}.ipynb") for name in NAMES)],
        capture_output=True, text=True, cwd=tmp_path, check=False, timeout=600,
        env={**os.environ, "GX_RUNBOOK_FORCE_DRY_RUN": "1"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout and "failed" not in result.stdout
