"""What a runbook notebook calls: validated parameters, steps with dry-run, checks, progress, and the summary.

The notebook's first code cell after ``parameters``::

    from gxlib.runbook import start
    rb = start("04-validate-cqrs", globals())   # validates; stops here with InvalidParameter if one is wrong

later cells::

    rb.step("initialise countries", changes="INITIALIZE_COUNTRY_DATA for US, CA, GB",
            apply=lambda: ..., is_done=lambda: ...)
    rb.checks.below("projection lag", lag_ms, rb.params.projection_slo_ms, unit="ms")
    rb.progress.wait_until("the command's block", probe, timeout_s=rb.params.commit_timeout_s)

and the last cell ``rb.finish()``: shows the tables, writes ``summary.json`` into the run's record, and raises
``ChecksFailed`` when a check failed (so papermill and `gx runbook run` exit non-zero).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gxlib.progress import Progress
from gxlib.runbook.checks import Checks
from gxlib.runbook.display import operator_console, show_table
from gxlib.runbook.errors import ChecksFailed, InvalidParameter, StepFailed
from gxlib.runbook.parameters import RunbookParameters, validate_parameters
from gxlib.runbook.records import Redactor, run_secrets
from gxlib.runbook.registry import RunbookSpec, runbook
from gxlib.runbook.settings import RECORD_DIR_VARIABLE, RunbookSettings
from gxlib.runbook.steps import STEP_COLUMNS, Step, StepOutcome, StepResult, execute_step

SUMMARY_FILE = "summary.json"


def _in_ipython() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    return get_ipython() is not None


def _show_operator_errors_briefly() -> None:
    """In a notebook, show a parameter error or failed checks as the message and hint, without a traceback.

    The cell still fails (papermill and nbval see an error output); other exceptions keep their tracebacks.
    """
    if not _in_ipython():
        return
    from IPython import get_ipython

    shell = get_ipython()

    def brief(shell: Any, etype: type[BaseException], value: BaseException, tb: Any,
              tb_offset: int | None = None) -> list[str]:
        stb = [f"\x1b[0;31m{etype.__name__}\x1b[0m: {value}"]
        # IPython discards a handler's return value: publishing the error output is the handler's job.
        shell._showtraceback(etype, value, stb)
        return stb

    shell.set_custom_exc((InvalidParameter, ChecksFailed), brief)


def _display(title: str, rows: list[dict[str, str]], columns: tuple[str, ...]) -> None:
    show_table(title, rows, columns)


class Runbook:
    """One run of a runbook: its parameters, the steps taken, the checks made."""

    def __init__(self, spec: RunbookSpec, params: RunbookParameters, *, dry_run: bool,
                 record_dir: Path | None = None, progress: Progress | None = None) -> None:
        self.spec = spec
        self.params = params
        self.dry_run = dry_run
        self.record_dir = record_dir
        self.progress = progress or Progress(operator_console())
        self.checks = Checks()
        self.steps: list[StepResult] = []
        self.started = datetime.now(UTC)
        self.found_secrets: list[str] = []  # secrets the run came upon (a token read from a file): masked too

    @property
    def name(self) -> str:
        return self.spec.name

    def step(self, name: str, *, changes: str, apply: Callable[[], object],
             is_done: Callable[[], bool] | None = None) -> StepResult:
        """Make one change, or report it (dry run), or report it already done. See ``gxlib.runbook.steps``."""
        return self.run_step(Step(name, changes, apply, is_done))

    def run_step(self, step: Step) -> StepResult:
        try:
            with self.progress.task(step.name):
                result = execute_step(step, dry_run=self.dry_run)
        except Exception as exc:
            self.steps.append(StepResult(step.name, StepOutcome.FAILED, step.changes, f"{type(exc).__name__}: {exc}"))
            raise StepFailed(self.name, step.name, exc) from exc
        self.steps.append(result)
        self.progress.info(f"  {step.name}: {result.outcome} — {step.changes}")
        return result

    def record_stop(self, name: str, reason: str, *, fails_dry_run: bool = False) -> None:
        """The check a runbook stops on: failed — or, in a dry run (unless ``fails_dry_run``), skipped with a note
        that a real run would stop here."""
        if self.dry_run and not fails_dry_run:
            self.checks.skip(name, f"dry run: {reason}; a real run stops here")
        else:
            self.checks.record(name, False, detail=reason)

    def add_secret(self, value: str) -> None:
        """A secret the run came upon (not a parameter): the summary it writes masks it as ``***``."""
        if value and value not in self.found_secrets:
            self.found_secrets.append(value)

    def summary(self) -> dict[str, Any]:
        """The run in JSON-able form (secrets as ``***``): what ``summary.json`` holds."""
        failed = [c.name for c in self.checks.failed()]
        return {
            "runbook": self.name,
            "started": self.started.isoformat(timespec="seconds"),
            "finished": datetime.now(UTC).isoformat(timespec="seconds"),
            "dry_run": self.dry_run,
            "parameters": self.params.public_values(),
            "steps": [s.as_dict() for s in self.steps],
            "checks": self.checks.as_records(),
            "passed": not failed,
            "failed_checks": failed,
        }

    def finish(self) -> None:
        """Show the steps and checks, write the summary into the record, raise ``ChecksFailed`` if one failed.

        Returns nothing, so that the notebook's last cell shows the tables and not a dict; see ``summary()``.
        """
        summary = self.summary()
        mode = " (dry run: nothing was changed)" if self.dry_run else ""
        _display(f"{self.name} — steps{mode}", summary["steps"], STEP_COLUMNS)
        _display(f"{self.name} — checks", summary["checks"], ("name", "status", "measured", "expected", "detail"))
        if self.record_dir is not None:
            # A step's error text may quote a secret (an echoed header): mask it like the notebook itself.
            text = Redactor([*run_secrets(self.params), *self.found_secrets]).text(json.dumps(summary, indent=2))
            (self.record_dir / SUMMARY_FILE).write_text(text + "\n")
        if summary["failed_checks"]:
            raise ChecksFailed(self.name, summary["failed_checks"], len(self.checks))


def start(name: str | RunbookSpec, namespace: Mapping[str, Any], *, settings: RunbookSettings | None = None,
          environ: Mapping[str, str] | None = None) -> Runbook:
    """Validate the notebook's parameters (taken from ``namespace``, i.e. ``globals()``) and begin the run.

    Raises ``InvalidParameter`` / ``MainnetNotConfirmed`` before anything is touched.
    """
    spec = runbook(name)
    _show_operator_errors_briefly()
    environ = os.environ if environ is None else environ
    settings = settings or RunbookSettings()
    raw = {field: namespace[field] for field in spec.parameters.model_fields if field in namespace}
    params = validate_parameters(spec.name, spec.parameters, raw, environ=environ)
    dry_run = params.dry_run or settings.force_dry_run
    record = environ.get(RECORD_DIR_VARIABLE)
    rb = Runbook(spec, params, dry_run=dry_run, record_dir=Path(record) if record else None)
    shown = ", ".join(f"{k}={v!r}" for k, v in params.public_values().items())
    rb.progress.info(f"[bold]{spec.title}[/] ({spec.name}) on env={params.env.value}"
                     f"{' — DRY RUN: nothing will be changed' if dry_run else ''}\n  parameters: {shown}")
    return rb
