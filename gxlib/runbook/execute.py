"""`run()`: validate a runbook's parameters, execute its notebook with papermill, leave the record.

    run("04-validate-cqrs", {"mint_amount": "500"}, dry_run=True)

1. the parameters are validated by the runbook's model (InvalidParameter / MainnetNotConfirmed: nothing ran);
2. ``runs/<UTC timestamp>-<runbook>/`` is created; papermill injects the parameters (secrets excluded — the
   kernel gets them through its environment) and executes the notebook on the project's kernel, saving it,
   redacted, into the record after every cell;
3. the HTML rendering and ``run.json`` are written, the record's path is printed;
4. a failure in the notebook — ``ChecksFailed`` from the summary cell, or any exception — raises
   ``RunbookFailed`` naming the cell and the exception (so `gx runbook run` exits non-zero).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gxlib.progress import Progress
from gxlib.runbook.errors import KernelNotInstalled, RunbookError, RunbookFailed
from gxlib.runbook.kernel import kernel_manager_with_environment, kernel_python
from gxlib.runbook.parameters import RunbookParameters, validate_parameters
from gxlib.runbook.records import Redactor, new_record_dir, record_io, run_secrets, write_atomically, write_html
from gxlib.runbook.registry import RunbookSpec, runbook
from gxlib.runbook.session import SUMMARY_FILE
from gxlib.runbook.settings import RECORD_DIR_VARIABLE, RunbookSettings


@dataclass(frozen=True)
class RunRecord:
    """What a run left behind and how it ended."""

    runbook: str
    record_dir: Path
    notebook: Path
    html: Path
    parameters: dict[str, Any]
    summary: dict[str, Any] | None

    @property
    def passed(self) -> bool:
        return bool(self.summary and self.summary.get("passed"))


def prepare(name: str | RunbookSpec, parameters: Mapping[str, object] | None = None, *, dry_run: bool | None = None,
            settings: RunbookSettings | None = None,
            environ: Mapping[str, str] | None = None) -> tuple[str, RunbookParameters]:
    """Validate ``parameters`` for runbook ``name`` (``dry_run``, when given, overrides the parameter)."""
    spec = runbook(name)
    settings = settings or RunbookSettings()
    raw = dict(parameters or {})
    if dry_run is not None:
        raw["dry_run"] = dry_run
    if settings.force_dry_run:
        raw["dry_run"] = True
    return spec.name, validate_parameters(spec.name, spec.parameters, raw, environ=environ)


def template_notebook(spec: RunbookSpec, settings: RunbookSettings) -> Path:
    """The runbook's notebook in the checkout's notebooks/ (RunbookError when it is missing)."""
    source = settings.notebooks_dir / spec.notebook
    if not source.is_file():
        raise RunbookError(spec.name, f"the notebook of {spec.name} is missing: {source}",
                           hint="set GX_RUNBOOK_NOTEBOOKS_DIR to the checkout's notebooks/ directory")
    return source


def run(name: str | RunbookSpec, parameters: Mapping[str, object] | None = None, *, dry_run: bool | None = None,
        settings: RunbookSettings | None = None, progress: Progress | None = None,
        environ: Mapping[str, str] | None = None, progress_bar: bool = False,
        kernel_environ: Mapping[str, str] | None = None) -> RunRecord:
    """Run the runbook ``name`` with ``parameters`` and return its record; see the module docstring."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    settings = settings or RunbookSettings()
    progress = progress or Progress()
    spec = runbook(name)
    _, params = prepare(spec, parameters, dry_run=dry_run, settings=settings, environ=environ)

    source = template_notebook(spec, settings)
    if kernel_python(settings.kernel_name) is None:
        raise KernelNotInstalled(spec.name, settings.kernel_name)

    started = datetime.now(UTC)
    record_dir = new_record_dir(settings.runs_dir.resolve(), spec.name, started)
    notebook = record_dir / spec.notebook
    html = notebook.with_suffix(".html")
    redactor = Redactor(run_secrets(params))
    # ``kernel_environ``: settings of the kernel's process beyond this one's (e.g. GX_K8S_PLATFORM_* of a cluster).
    kernel_env = {**(kernel_environ or {}), RECORD_DIR_VARIABLE: str(record_dir)}
    for field, variable in params.secret_fields().items():
        value = getattr(params, field)
        if value is not None:
            kernel_env[variable] = value.get_secret_value()

    io = record_io()
    failure: RunbookFailed | None = None
    progress.info(f"recording the run in {record_dir}")
    try:
        with progress.task(f"running {spec.name}{' (dry run)' if params.dry_run else ''}"):
            papermill.execute_notebook(
                str(source), io.open(notebook, redactor), parameters=params.notebook_values(),
                kernel_name=settings.kernel_name, cwd=str(record_dir), progress_bar=progress_bar,
                start_timeout=int(settings.start_timeout_s), execution_timeout=settings.cell_timeout_s,
                kernel_manager_class=kernel_manager_with_environment(kernel_env),
            )
    except PapermillExecutionError as exc:
        # A GxError's text ends with its hint; the failure brings its own (where the record is).
        reason = str(exc.evalue).split("\n  hint: ")[0]
        failure = RunbookFailed(spec.name, cell_index=exc.cell_index, exception=exc.ename,
                                reason=redactor.text(reason), record_dir=record_dir)
    except Exception as exc:  # the kernel died, timed out, could not start: still leave what we have
        failure = RunbookFailed(spec.name, cell_index=None, exception=type(exc).__name__,
                                reason=redactor.text(str(exc)), record_dir=record_dir)
    finally:
        io.close(notebook)

    if notebook.is_file():
        write_html(notebook, html, redactor)
    summary_file = record_dir / SUMMARY_FILE
    summary = json.loads(summary_file.read_text()) if summary_file.is_file() else None
    outcome = {
        "runbook": spec.name, "started": started.isoformat(timespec="seconds"),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"), "parameters": params.public_values(),
        "kernel": settings.kernel_name, "notebook": notebook.name, "html": html.name,
        "passed": failure is None,
        "error": None if failure is None else {"cell": failure.cell_index, "exception": failure.exception,
                                               "message": failure.reason},
    }
    write_atomically(record_dir / "run.json", redactor.text(json.dumps(outcome, indent=2)) + "\n")
    progress.info(f"record of the run: {record_dir}")
    if failure is not None:
        failure.summary = summary
        raise failure
    return RunRecord(spec.name, record_dir, notebook, html, params.public_values(), summary)
