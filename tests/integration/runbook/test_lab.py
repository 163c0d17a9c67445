"""A runbook run by hand in JupyterLab, driven in headless Chromium as an operator would: open the template (it stays
unchanged), open a copy made by `gx runbook open`, Run All, and find the same record `gx runbook run` leaves.

Chromium is Debian's (/usr/bin/chromium, installed by `make` from scripts/system-packages.txt), driven by the
`playwright` package from PyPI (a dev dependency) — no browser download. Screenshots are kept in pytest's tmp dir
(printed at the end of each test) for a person to look at.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from gxlib.runbook.interactive import open_copy
from gxlib.runbook.lab import Lab, lab_url, new_lab
from gxlib.runbook.settings import RunbookSettings
from tests.conftest import BASE_TEST_OFFSET

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[3]
NOTEBOOKS = REPO_ROOT / "notebooks"
RUNBOOK = "05-validate-monitoring"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
LAB_PORT = BASE_TEST_OFFSET + 8888


def _snapshot(directory: Path) -> dict[str, bytes]:
    """Every file under ``directory`` (hidden ones too) and its bytes."""
    return {str(path.relative_to(directory)): path.read_bytes() for path in sorted(directory.rglob("*"))
            if path.is_file()}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningLab:
    lab: Lab
    settings: RunbookSettings
    log: Path

    def url_for(self, path: Path) -> str:
        return lab_url(self.lab.base_url, self.lab.token, str(path.resolve().relative_to(self.lab.root)))


@pytest.fixture
def running_lab(tmp_path: Path, gx_kernel: str) -> Iterator[RunningLab]:
    # The lab serves the checkout (notebooks/ and runs/), as `make lab` does; this test's records go to a
    # directory of its own under runs/ (gitignored), removed afterwards.
    runs_dir = REPO_ROOT / "runs" / f"lab-test-{uuid.uuid4().hex[:8]}"
    settings = RunbookSettings(runs_dir=runs_dir, notebooks_dir=NOTEBOOKS, kernel_name=gx_kernel)
    runs_dir.mkdir(parents=True)
    lab = new_lab(settings, port=LAB_PORT)
    log = tmp_path / "jupyterlab.log"
    home = tmp_path / "home"
    env = {**lab.environment(), "XDG_STATE_HOME": str(home / "state"), "JUPYTER_CONFIG_DIR": str(home / "config"),
           "JUPYTER_RUNTIME_DIR": str(home / "runtime"), "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces")}
    with log.open("w") as output:
        process = subprocess.Popen(lab.command(settings), env=env, cwd=tmp_path, stdout=output,
                                   stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, f"JupyterLab exited:\n{log.read_text()}"
            try:
                if httpx.get(f"{lab.base_url}api/status", params={"token": lab.token}, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"JupyterLab did not answer:\n{log.read_text()}"
            time.sleep(0.5)
        yield RunningLab(lab, settings, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        shutil.rmtree(runs_dir, ignore_errors=True)


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.exists(), "chromium is missing: `make` installs it (scripts/system-packages.txt)"
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True,
            viewport={"width": 1400, "height": 1000})
        try:
            yield context.new_page()
        finally:
            context.close()


def _open_notebook(page: Any, running_lab: RunningLab, notebook: Path) -> None:
    page.goto(running_lab.url_for(notebook))
    # The lab restores the last workspace first (an earlier notebook's tab) and then opens this one: wait until it
    # is the current tab and its kernel is idle.
    path = str(notebook.resolve().relative_to(running_lab.lab.root))
    page.wait_for_function(
        """(path) => { const widget = window.jupyterapp && window.jupyterapp.shell.currentWidget;
                       return !!widget && !!widget.context && widget.context.path === path
                              && !!widget.sessionContext && widget.sessionContext.kernelDisplayStatus === "idle"; }""",
        arg=path, timeout=90_000)


def _run_all(page: Any, shots: Path) -> None:
    page.get_by_role("menuitem", name="Run", exact=True).click()
    item = page.get_by_role("menuitem", name="Run All Cells", exact=True)
    item.wait_for()
    page.screenshot(path=str(shots / "2-run-menu.png"))
    item.click()


def test_a_runbook_run_in_jupyterlab_leaves_the_record_and_the_template_unchanged(
        running_lab: RunningLab, page: Any, tmp_path: Path) -> None:
    shots = tmp_path / "screenshots"
    shots.mkdir()
    templates_before = _snapshot(NOTEBOOKS)

    # 1. The operator opens the template itself and tries to save it: JupyterLab keeps it read-only.
    _open_notebook(page, running_lab, NOTEBOOKS / f"{RUNBOOK}.ipynb")
    page.keyboard.press("Control+s")
    page.wait_for_timeout(2000)
    page.screenshot(path=str(shots / "1-template.png"))
    # No toast asking whether to fetch Jupyter news from the internet (the announcements plugin is off).
    assert page.get_by_text("official Jupyter news").count() == 0

    # 2. A copy as `gx runbook open 05-validate-monitoring -p dry_run true` makes it, then Run All.
    unreachable = f"http://127.0.0.1:{_free_port()}"
    copy = open_copy(RUNBOOK, {"dry_run": "true", "prometheus_url": unreachable, "alertmanager_url": unreachable},
                     settings=running_lab.settings)
    _open_notebook(page, running_lab, copy.notebook)
    _run_all(page, shots)
    try:
        page.get_by_text("gx: record written to").first.wait_for(timeout=240_000)
    finally:
        page.screenshot(path=str(shots / "2-copy-after-run-all.png"), full_page=False)
        print(f"screenshots: {shots}")

    # The record: as `gx runbook run` leaves it.
    record = copy.record_dir
    names = {path.name for path in record.iterdir()}
    assert {f"{RUNBOOK}.ipynb", f"{RUNBOOK}.html", "run.json", "summary.json"} <= names, names
    outcome = json.loads((record / "run.json").read_text())
    # A dry run checks that the endpoints it would use answer (issue 13): this copy names a Prometheus and an
    # Alertmanager that do not, so the run fails on those checks — and still leaves the whole record.
    assert outcome["runbook"] == RUNBOOK and outcome["passed"] is False and outcome["parameters"]["dry_run"] is True
    assert outcome["error"]["exception"] == "ChecksFailed"
    summary = json.loads((record / "summary.json").read_text())
    assert summary["dry_run"] is True and summary["checks"]
    assert {f"endpoint answers: {what} at {unreachable}" for what in ("Prometheus", "Alertmanager")} \
        == set(summary["failed_checks"])
    html = (record / f"{RUNBOOK}.html").read_text()
    assert f"{RUNBOOK} — checks" in html and summary["checks"][0]["name"] in html
    assert "window.jupyterapp" not in html  # the live notebook's save script stays out of the record
    executed = json.loads((record / f"{RUNBOOK}.ipynb").read_text())
    assert any(cell.get("outputs") for cell in executed["cells"] if cell["cell_type"] == "code")

    # The templates: byte for byte as before, no checkpoints, nothing added.
    assert _snapshot(NOTEBOOKS) == templates_before
    assert not list(REPO_ROOT.joinpath("notebooks").glob(".ipynb_checkpoints"))
    assert not (record / ".ipynb_checkpoints").exists()
    lab_output = running_lab.log.read_text()
    assert "Running as root is not recommended" not in lab_output and "without encryption" not in lab_output


def test_the_lab_listens_on_loopback_with_a_token(running_lab: RunningLab) -> None:
    base = running_lab.lab.base_url
    assert base.startswith("http://127.0.0.1:")
    assert httpx.get(f"{base}api/contents", timeout=5).status_code == 403
    assert httpx.get(f"{base}api/contents", params={"token": running_lab.lab.token}, timeout=5).status_code == 200
    if os.geteuid() == 0:  # `make lab` as root: it started (the fixture waited for it)
        assert "--allow-root" in running_lab.lab.command(running_lab.settings)
