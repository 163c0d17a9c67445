"""Running a runbook by hand in JupyterLab, the way `gx runbook run` runs it (`gx runbook open NAME -p K V`).

The templates in notebooks/ are never opened for running: ``open_copy()`` validates the parameters exactly as
``run()`` does, creates ``runs/<UTC timestamp>-<runbook>/`` and writes there a copy of the notebook with

* the parameters injected (papermill's ``injected-parameters`` cell; secrets stay out, the kernel reads them from
  its environment — export them before starting the lab), and
* one more cell, tagged ``gx-interactive``, that calls ``begin()``: it points the run's record at that directory
  (``GX_RUNBOOK_RECORD_DIR``, so ``rb.finish()`` writes ``summary.json`` there and runbook 05 its SLO report)
  and watches for the summary.

When ``summary.json`` appears (``rb.finish()`` ran, passed or not) the kernel writes ``run.json`` and asks JupyterLab
to save the notebook; the lab started by `gx runbook lab` (``gxlib.runbook.lab``) renders the saved notebook to the
run's HTML, redacted, on every save. The record then holds what `gx runbook run` leaves: the executed notebook, its
HTML, ``run.json`` and ``summary.json``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gxlib.platform.connect import local_api_token
from gxlib.runbook.errors import RunbookError
from gxlib.runbook.execute import prepare, template_notebook
from gxlib.runbook.records import LIVE_ONLY, Redactor, new_record_dir, write_atomically, write_html
from gxlib.runbook.registry import RunbookSpec, runbook
from gxlib.runbook.session import SUMMARY_FILE
from gxlib.runbook.settings import RECORD_DIR_VARIABLE, RunbookSettings

# Written by open_copy() into the record directory: which runbook, when, with which (public) parameters.
INTERACTIVE_FILE = "interactive.json"
RUN_FILE = "run.json"
INTERACTIVE_TAG = "gx-interactive"

# Runs in the output area of the cell that finished the run: saves the notebook panel that holds it, so the lab
# writes the HTML record. Needs the app exposed (`gx runbook lab` does: LabApp.expose_app_in_browser).
SAVE_SCRIPT = """
(function () {
  const say = (text) => { const p = document.createElement("pre"); p.textContent = text; element.appendChild(p); };
  const app = window.jupyterapp;
  if (!app) { say("gx: save the notebook (Ctrl+S) to complete this run's record"); return; }
  // The output is rendered before it is attached to the page: look for its notebook once it is.
  setTimeout(() => {
    let panel = null;
    for (const widget of app.shell.widgets("main")) {
      if (widget.node.contains(element) && widget.context) { panel = widget; }
    }
    if (!panel) { say("gx: save the notebook (Ctrl+S) to complete this run's record"); return; }
    panel.context.save().then(
      () => say("gx: record written to %(record_dir)s"),
      (error) => say("gx: could not save the notebook: " + error));
  }, 500);
})();
"""


@dataclass(frozen=True)
class InteractiveCopy:
    """A runbook copy prepared for JupyterLab."""

    runbook: str
    record_dir: Path
    notebook: Path


def setup_source(record_dir: Path) -> str:
    return ("# Interactive run (gx runbook open): the record of this run goes to its directory.\n"
            "from gxlib.runbook.interactive import begin\n\n"
            f"begin({str(record_dir)!r})")


def open_copy(name: str | RunbookSpec, parameters: Mapping[str, object] | None = None, *,
              dry_run: bool | None = None, settings: RunbookSettings | None = None,
              environ: Mapping[str, str] | None = None, now: datetime | None = None) -> InteractiveCopy:
    """Validate ``parameters`` (InvalidParameter: nothing is written) and write the copy; see the module docstring."""
    import nbformat
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    settings = settings or RunbookSettings()
    spec = runbook(name)
    _, params = prepare(spec, parameters, dry_run=dry_run, settings=settings, environ=environ)
    source = template_notebook(spec, settings)
    notebook = parameterize_notebook(load_notebook_node(str(source)), params.notebook_values())
    started = now or datetime.now(UTC)
    record_dir = new_record_dir(settings.runs_dir.resolve(), spec.name, started)
    injected = next(index for index, cell in enumerate(notebook.cells)
                    if "injected-parameters" in cell.metadata.get("tags", []))
    setup = nbformat.v4.new_code_cell(setup_source(record_dir), metadata={"tags": [INTERACTIVE_TAG]})
    notebook.cells.insert(injected + 1, setup)
    target = record_dir / spec.notebook
    write_atomically(target, nbformat.writes(notebook) + "\n")
    write_atomically(record_dir / INTERACTIVE_FILE, json.dumps({
        "runbook": spec.name, "opened": started.isoformat(timespec="seconds"), "notebook": spec.notebook,
        "parameters": params.public_values(), "kernel": settings.kernel_name,
    }, indent=2, default=str) + "\n")
    return InteractiveCopy(spec.name, record_dir, target)


def is_interactive_record(directory: Path) -> bool:
    return (directory / INTERACTIVE_FILE).is_file()


def secret_values(runbook_name: str, environ: Mapping[str, str] | None = None) -> list[str]:
    """The values of the runbook's secret parameters as the environment holds them (what a record must mask)."""
    environ = os.environ if environ is None else environ
    try:
        model = runbook(runbook_name).parameters
    except RunbookError:
        return []
    found = [environ[variable] for variable in model.secret_fields().values() if environ.get(variable)]
    # The admin token a local run reads from the devnet's token file when none is given.
    token = local_api_token() if model.secret_fields() else None
    return [*found, token] if token else found


def write_run_file(record_dir: Path, redactor: Redactor | None = None) -> dict[str, Any]:
    """``run.json`` of an interactive run, from ``interactive.json`` and the summary (`gx runbook run`'s shape)."""
    opened = json.loads((record_dir / INTERACTIVE_FILE).read_text(encoding="utf-8"))
    summary_file = record_dir / SUMMARY_FILE
    summary = json.loads(summary_file.read_text(encoding="utf-8")) if summary_file.is_file() else None
    notebook = Path(opened["notebook"])
    failed = summary.get("failed_checks", []) if summary else []
    outcome = {
        "runbook": opened["runbook"], "started": opened["opened"],
        "finished": summary.get("finished") if summary else None, "parameters": opened["parameters"],
        "kernel": opened.get("kernel"), "notebook": notebook.name, "html": notebook.with_suffix(".html").name,
        "interactive": True, "passed": bool(summary and summary.get("passed")),
        "error": None if not failed else {"cell": None, "exception": "ChecksFailed",
                                          "message": f"{len(failed)} check(s) failed: {', '.join(failed)}"},
    }
    if summary is None:
        outcome["error"] = {"cell": None, "exception": None, "message": "not finished: rb.finish() has not run"}
    text = json.dumps(outcome, indent=2)
    write_atomically(record_dir / RUN_FILE, (redactor.text(text) if redactor else text) + "\n")
    return outcome


def write_record(notebook: Path) -> Path | None:
    """The HTML (and ``run.json``) of the interactive run whose saved notebook is ``notebook``; ``None`` when it is
    not the notebook of an interactive run. Called by the lab on every save."""
    record_dir = notebook.parent
    if not is_interactive_record(record_dir):
        return None
    opened = json.loads((record_dir / INTERACTIVE_FILE).read_text(encoding="utf-8"))
    if notebook.name != opened.get("notebook"):
        return None
    redactor = Redactor(secret_values(str(opened.get("runbook", ""))))
    html = notebook.with_suffix(".html")
    write_html(notebook, html, redactor)
    if (record_dir / SUMMARY_FILE).is_file():
        write_run_file(record_dir, redactor)
    return html


class _FinishWatcher:
    """After each cell: once ``summary.json`` is (re)written, write ``run.json`` and have JupyterLab save."""

    def __init__(self, record_dir: Path) -> None:
        self.record_dir = record_dir
        self.seen: float | None = self._stamp()

    def _stamp(self) -> float | None:
        summary = self.record_dir / SUMMARY_FILE
        return summary.stat().st_mtime if summary.is_file() else None

    def __call__(self, *_: Any) -> None:
        stamp = self._stamp()
        if stamp is None or stamp == self.seen:
            return
        self.seen = stamp
        from IPython.display import Javascript, display

        runbook_name = json.loads((self.record_dir / INTERACTIVE_FILE).read_text(encoding="utf-8"))["runbook"]
        write_run_file(self.record_dir, Redactor(secret_values(runbook_name)))
        display(Javascript(SAVE_SCRIPT % {"record_dir": json.dumps(str(self.record_dir))[1:-1]}),
                metadata={LIVE_ONLY: True})


_watchers: dict[str, _FinishWatcher] = {}


def begin(record_dir: str | Path) -> None:
    """In the kernel of an interactive copy: send the run's record to ``record_dir`` and complete it at the end."""
    directory = Path(record_dir)
    if not is_interactive_record(directory):
        raise RunbookError("interactive", f"{directory} is not the record of a `gx runbook open` copy",
                           hint="open runbooks with `gx runbook open NAME -p KEY VALUE`")
    os.environ[RECORD_DIR_VARIABLE] = str(directory)
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None or str(directory) in _watchers:
        return
    watcher = _watchers[str(directory)] = _FinishWatcher(directory)
    shell.events.register("post_run_cell", watcher)
