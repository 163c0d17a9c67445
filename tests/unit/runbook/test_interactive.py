"""Runbooks run by hand in JupyterLab: the copy `gx runbook open` makes, the record its end writes, and the lab that
keeps the templates unchanged."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path

import nbformat
import pytest
from tornado import web

from gxlib.runbook import InvalidParameter
from gxlib.runbook.interactive import INTERACTIVE_TAG, begin, open_copy, write_record
from gxlib.runbook.lab import Lab, RecordCheckpoints, RunbookContentsManager, lab_root, new_lab, running_lab_for
from gxlib.runbook.session import SUMMARY_FILE
from gxlib.runbook.settings import RECORD_DIR_VARIABLE, RunbookSettings

CHECKOUT_NOTEBOOKS = Path(__file__).resolve().parents[3] / "notebooks"
RUNBOOK = "04-validate-cqrs"


@pytest.fixture
def settings(tmp_path: Path) -> RunbookSettings:
    notebooks = tmp_path / "checkout" / "notebooks"
    shutil.copytree(CHECKOUT_NOTEBOOKS, notebooks)
    return RunbookSettings(runs_dir=tmp_path / "checkout" / "runs", notebooks_dir=notebooks)


def test_open_makes_a_copy_under_runs_with_the_parameters_injected(settings: RunbookSettings) -> None:
    template = settings.notebooks_dir / f"{RUNBOOK}.ipynb"
    before = template.read_bytes()
    copy = open_copy(RUNBOOK, {"mint_amount": "500"}, dry_run=True, settings=settings)
    assert copy.record_dir.parent == settings.runs_dir.resolve() and copy.record_dir.name.endswith(f"-{RUNBOOK}")
    cells = nbformat.read(copy.notebook, as_version=4).cells
    tags = [cell.metadata.get("tags", []) for cell in cells]
    injected = next(i for i, t in enumerate(tags) if "injected-parameters" in t)
    assert "mint_amount = 500" in cells[injected].source and "dry_run = True" in cells[injected].source
    assert INTERACTIVE_TAG in tags[injected + 1] and str(copy.record_dir) in cells[injected + 1].source
    assert template.read_bytes() == before


def test_a_misspelt_parameter_opens_nothing(settings: RunbookSettings) -> None:
    with pytest.raises(InvalidParameter) as caught:
        open_copy(RUNBOOK, {"mint_ammount": "500"}, settings=settings)
    assert "did you mean 'mint_amount'?" in caught.value.message
    assert not settings.runs_dir.exists()


def test_the_end_of_an_interactive_run_leaves_what_gx_runbook_run_leaves(settings: RunbookSettings,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GX_API_TOKEN", "tok-interactive-secret")
    copy = open_copy(RUNBOOK, {}, dry_run=True, settings=settings)
    # What the kernel and the lab leave: the summary (rb.finish()), then the saved notebook, which printed the token.
    notebook = nbformat.read(copy.notebook, as_version=4)
    notebook.cells[-1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="tok-interactive-secret\n")]
    nbformat.write(notebook, copy.notebook)
    summary = {"runbook": RUNBOOK, "finished": "2026-12-06T12:00:00+00:00", "passed": False,
               "failed_checks": ["balance"], "dry_run": True, "steps": [], "checks": []}
    (copy.record_dir / SUMMARY_FILE).write_text(json.dumps(summary))
    html = write_record(copy.notebook)
    assert html == copy.notebook.with_suffix(".html") and html.is_file()
    assert "tok-interactive-secret" not in html.read_text() and "***" in html.read_text()
    outcome = json.loads((copy.record_dir / "run.json").read_text())
    assert outcome["runbook"] == RUNBOOK and outcome["interactive"] is True and outcome["passed"] is False
    assert outcome["parameters"]["dry_run"] is True and "balance" in outcome["error"]["message"]


def test_a_notebook_that_is_no_interactive_copy_gets_no_record(tmp_path: Path) -> None:
    notebook = tmp_path / "scratch.ipynb"
    nbformat.write(nbformat.v4.new_notebook(), notebook)
    assert write_record(notebook) is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scratch.ipynb"]


def test_begin_points_the_runs_record_at_the_copy(settings: RunbookSettings,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(RECORD_DIR_VARIABLE, raising=False)
    copy = open_copy(RUNBOOK, {}, settings=settings)
    begin(copy.record_dir)
    assert os.environ[RECORD_DIR_VARIABLE] == str(copy.record_dir)
    with pytest.raises(Exception, match="gx runbook open"):
        begin(settings.notebooks_dir)


# --- the lab ----------------------------------------------------------------------------------------------------
def _contents(settings: RunbookSettings, tmp_path: Path) -> RunbookContentsManager:
    root = lab_root(settings)
    manager = RunbookContentsManager(root_dir=str(root), templates_dir=str(settings.notebooks_dir))
    manager.checkpoints_class = RecordCheckpoints
    manager.checkpoints_kwargs = {"store": str(tmp_path / "checkpoints")}
    return manager


def test_the_lab_opens_templates_read_only_and_refuses_to_save_them(settings: RunbookSettings,
                                                                   tmp_path: Path) -> None:
    manager = _contents(settings, tmp_path)
    before = {p.name: p.read_bytes() for p in settings.notebooks_dir.iterdir()}

    async def scenario() -> None:
        model = await manager.get(f"notebooks/{RUNBOOK}.ipynb")
        assert model["writable"] is False
        with pytest.raises(web.HTTPError) as refused:
            await manager.save(model, f"notebooks/{RUNBOOK}.ipynb")
        assert refused.value.status_code == 403 and "gx runbook open" in str(refused.value.log_message)
        await manager.create_checkpoint(f"notebooks/{RUNBOOK}.ipynb")

    asyncio.run(scenario())
    assert {p.name: p.read_bytes() for p in settings.notebooks_dir.iterdir()} == before  # nothing added or changed


def test_saving_a_copy_in_the_lab_writes_its_html_record_and_no_checkpoint_next_to_it(
        settings: RunbookSettings, tmp_path: Path) -> None:
    manager = _contents(settings, tmp_path)
    copy = open_copy(RUNBOOK, {}, dry_run=True, settings=settings)
    path = str(copy.notebook.relative_to(lab_root(settings)))

    async def scenario() -> None:
        model = await manager.get(path)
        await manager.save(model, path)
        await manager.create_checkpoint(path)

    asyncio.run(scenario())
    assert copy.notebook.with_suffix(".html").is_file()
    assert not (copy.record_dir / ".ipynb_checkpoints").exists()
    assert list((tmp_path / "checkpoints").rglob("*.ipynb"))


def test_open_finds_the_running_lab_that_serves_the_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    servers = [{"url": "http://127.0.0.1:9999/", "token": "other", "root_dir": str(tmp_path / "elsewhere")},
               {"url": "http://127.0.0.1:8888/", "token": "t0k", "root_dir": str(tmp_path)}]
    monkeypatch.setattr("gxlib.runbook.lab.running_labs", lambda: iter(servers))
    copy = tmp_path / "runs" / "20261206T120000Z-04-validate-cqrs" / "04-validate-cqrs.ipynb"
    assert running_lab_for(copy) == (
        "http://127.0.0.1:8888/lab/tree/runs/20261206T120000Z-04-validate-cqrs/04-validate-cqrs.ipynb?token=t0k")
    assert running_lab_for(Path("/nowhere/x.ipynb")) is None


def test_the_lab_listens_on_loopback_starts_as_root_and_keeps_its_token_off_the_command_line(
        settings: RunbookSettings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 0)
    lab = Lab(lab_root(settings), 8888, "s3cr3t-token")
    command = lab.command(settings)
    assert "--ServerApp.ip=127.0.0.1" in command and "--allow-root" in command
    assert not any("s3cr3t-token" in arg for arg in command)
    assert lab.environment()["JUPYTER_TOKEN"] == "s3cr3t-token"
    assert lab.url == "http://127.0.0.1:8888/lab?token=s3cr3t-token"


def test_a_template_run_in_place_puts_its_report_into_a_record_not_among_the_templates(
        settings: RunbookSettings, monkeypatch: pytest.MonkeyPatch) -> None:
    from gxlib.runbook import start
    from gxlib.runbook.steps_backend import record_path

    monkeypatch.setenv("GX_RUNBOOK_NOTEBOOKS_DIR", str(settings.notebooks_dir))
    monkeypatch.delenv("GX_RUNBOOK_RUNS_DIR", raising=False)
    monkeypatch.chdir(settings.notebooks_dir)  # JupyterLab starts a notebook's kernel in the notebook's directory
    rb = start("05-validate-monitoring", {"env": "local"}, environ={})
    report = record_path(rb, "slo-report.html")
    assert report.parent.parent == settings.notebooks_dir.parent / "runs"
    assert report.parent.name.endswith("-05-validate-monitoring") and rb.record_dir == report.parent


def test_the_lab_is_started_with_the_news_question_turned_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("JUPYTER_CONFIG_PATH", "/etc/site-jupyter")
    environment = new_lab(RunbookSettings(runs_dir=tmp_path / "runs"), port=8999).environment()
    first, *rest = environment["JUPYTER_CONFIG_PATH"].split(os.pathsep)
    assert rest == ["/etc/site-jupyter"]  # the operator's own config path is kept, after ours
    page_config = json.loads((Path(first) / "labconfig" / "page_config.json").read_text())
    assert page_config["disabledExtensions"] == {"@jupyterlab/apputils-extension:announcements": True}
