"""``gx runbook``: list the runbooks and run one (papermill underneath), leaving a record under runs/."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click
from rich.console import Console
from rich.markup import escape

from gxlib.runbook.registry import runbooks

if TYPE_CHECKING:
    from gxlib.runbook.errors import InvalidParameter
    from gxlib.runbook.lab import Lab
    from gxlib.runbook.settings import RunbookSettings

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

EXIT_INVALID_PARAMETER = 2


@click.group("runbook")
def runbook() -> None:
    """Executable runbooks: parameterised notebooks in notebooks/ (SPEC §8).

    \b
    Each run validates its parameters first, can be a dry run, and leaves
    runs/<UTC timestamp>-<runbook>/ with the executed notebook and its HTML.
    Settings (environment):
      GX_RUNBOOK_RUNS_DIR         where records go (default ./runs)
      GX_RUNBOOK_NOTEBOOKS_DIR    where the notebooks are (default the checkout's notebooks/)
      GX_RUNBOOK_KERNEL_NAME      the Jupyter kernel (default gxlib; `gx runbook kernel` installs it)
      GX_RUNBOOK_FORCE_DRY_RUN    1: every run is a dry run
    """


@runbook.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def runbook_list(as_json: bool) -> None:
    """Each runbook: name, what it does, and its parameters with defaults and descriptions."""
    listing: list[dict[str, Any]] = [{"name": spec.name, "title": spec.title, "description": spec.description,
                "parameters": [{"name": n, "default": d, "description": t} for n, d, t in spec.describe_parameters()]}
               for spec in runbooks()]
    if as_json:
        out.print_json(json.dumps(listing))
        return
    for entry in listing:
        out.print(f"[bold]{entry['name']}[/] — {entry['title']}")
        out.print(f"  {entry['description']}", markup=False)
        width = max(len(p["name"]) for p in entry["parameters"])
        shown = [(p["name"], json.dumps(p["default"]), p["description"]) for p in entry["parameters"]]
        value_width = max(len(v) for _, v, _ in shown)
        for name, value, description in shown:
            out.print(f"    {name.ljust(width)}  {value.ljust(value_width)}  {description}", markup=False)
        out.print()


def _print_summary(summary: dict[str, Any] | None) -> None:
    from gxlib.runbook.checks import summary_text
    from gxlib.runbook.steps import STEP_COLUMNS

    if not summary:
        return
    out.print(f"steps{' (dry run: nothing was changed)' if summary.get('dry_run') else ''}:", markup=False)
    out.print(summary_text(summary.get("steps", []), STEP_COLUMNS), markup=False)
    out.print("checks:")
    out.print(summary_text(summary.get("checks", [])), markup=False)


def _exit_invalid_parameter(exc: InvalidParameter) -> NoReturn:
    """Print the parameter's error and hint; exit 2 (nothing ran)."""
    err.print(f"[red]error:[/] {escape(exc.message)}")
    if exc.hint:
        err.print(f"[yellow]hint:[/] {escape(exc.hint)}")
    sys.exit(EXIT_INVALID_PARAMETER)


def _warn_of_secrets_on_the_command_line(name: str, parameters: tuple[tuple[str, str], ...]) -> None:
    """A secret given with -p is in the process list (``ps``) of everyone on the machine: say how to avoid it."""
    from gxlib.runbook.errors import RunbookError
    from gxlib.runbook.registry import runbook as find_runbook

    try:
        secrets = find_runbook(name).parameters.secret_fields()
    except RunbookError:
        return  # an unknown runbook is reported by the run itself
    for key, _ in parameters:
        if key in secrets:
            err.print(f"[yellow]warning:[/] -p {key} puts the secret in this machine's process list; export "
                      f"{secrets[key]} instead (the record masks it either way)")


@runbook.command("run")
@click.argument("name")
@click.option("-p", "--parameter", "parameters", nargs=2, multiple=True, metavar="KEY VALUE",
              help="A parameter (repeatable), parsed by the runbook's parameter model: -p channel gxchannel-x.")
@click.option("--dry-run", is_flag=True, help="Report what would change and change nothing.")
@click.option("--runs-dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Where the record goes [env GX_RUNBOOK_RUNS_DIR; default ./runs].")
@click.option("--progress-bar/--no-progress-bar", default=False, help="papermill's per-cell progress bar.")
def runbook_run(name: str, parameters: tuple[tuple[str, str], ...], dry_run: bool, runs_dir: Path | None,
                progress_bar: bool) -> None:
    """Run runbook NAME (see `gx runbook list`): validate, execute with papermill, print where the record is.

    Exit 0 when every check passed; 2 when a parameter is invalid (nothing ran); 1 when the run failed.
    """
    from gxlib.progress import Progress
    from gxlib.runbook.errors import InvalidParameter, RunbookFailed
    from gxlib.runbook.execute import run
    from gxlib.runbook.settings import RunbookSettings

    settings = RunbookSettings(runs_dir=runs_dir) if runs_dir else RunbookSettings()
    _warn_of_secrets_on_the_command_line(name, parameters)
    try:
        record = run(name, dict(parameters), dry_run=True if dry_run else None, settings=settings,
                     progress=Progress(err), progress_bar=progress_bar)
    except InvalidParameter as exc:
        _exit_invalid_parameter(exc)
    except RunbookFailed as exc:
        _print_summary(exc.summary)
        raise
    _print_summary(record.summary)
    out.print(str(record.record_dir), markup=False)


def _start_lab(lab: Lab, settings: RunbookSettings) -> None:
    import subprocess

    out.print(f"JupyterLab (loopback only, stop it with Ctrl-C) — open:\n  {lab.url}", markup=False)
    process = subprocess.Popen(lab.command(settings), env=lab.environment())
    try:
        status = process.wait()
    except KeyboardInterrupt:  # the lab got the Ctrl-C too; make sure it stops with this command
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        return
    if status not in (0, -2, 130):
        err.print(f"[red]error:[/] JupyterLab exited with status {status} (port {lab.port} taken? try --port)")
        sys.exit(1)


@runbook.command("lab")
@click.option("--port", type=int, default=8888, show_default=True, help="The lab's port on 127.0.0.1.")
def runbook_lab(port: int) -> None:
    """JupyterLab on the runbooks (loopback only, with a token; also as root), printing where to open it.

    The templates in notebooks/ open read-only: run one with `gx runbook open NAME -p KEY VALUE`, which makes a
    copy under runs/ whose record is written like `gx runbook run`'s.
    """
    from gxlib.runbook.lab import new_lab
    from gxlib.runbook.settings import RunbookSettings

    settings = RunbookSettings()
    settings.runs_dir.mkdir(parents=True, exist_ok=True)
    _start_lab(new_lab(settings, port=port), settings)


@runbook.command("open")
@click.argument("name")
@click.option("-p", "--parameter", "parameters", nargs=2, multiple=True, metavar="KEY VALUE",
              help="A parameter (repeatable), as for `gx runbook run`.")
@click.option("--dry-run", is_flag=True, help="The copy runs as a dry run.")
@click.option("--runs-dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Where the record goes [env GX_RUNBOOK_RUNS_DIR; default ./runs].")
@click.option("--lab/--no-lab", "start_lab", default=True,
              help="Start JupyterLab on the copy when none is running [default: start].")
@click.option("--port", type=int, default=8888, show_default=True, help="Port of a lab started here.")
def runbook_open(name: str, parameters: tuple[tuple[str, str], ...], dry_run: bool, runs_dir: Path | None,
                 start_lab: bool, port: int) -> None:
    """Run runbook NAME by hand in JupyterLab: a fresh copy with the parameters injected, under
    runs/<UTC timestamp>-<runbook>/, opened in the running lab (or a new one); prints the URL.

    Run All in the lab; when the runbook's last cell has run, the record is complete: the notebook, its HTML,
    run.json and summary.json, as `gx runbook run` leaves them. Exit 2 when a parameter is invalid.
    """
    from gxlib.runbook.errors import InvalidParameter
    from gxlib.runbook.interactive import open_copy
    from gxlib.runbook.lab import new_lab, running_lab_for
    from gxlib.runbook.settings import RunbookSettings

    settings = RunbookSettings(runs_dir=runs_dir) if runs_dir else RunbookSettings()
    _warn_of_secrets_on_the_command_line(name, parameters)
    try:
        copy = open_copy(name, dict(parameters), dry_run=True if dry_run else None, settings=settings)
    except InvalidParameter as exc:
        _exit_invalid_parameter(exc)
    out.print(f"copy of {copy.runbook}: {copy.notebook}", markup=False)
    url = running_lab_for(copy.notebook)
    if url is not None:
        out.print(f"open it in the running JupyterLab:\n  {url}", markup=False)
    elif start_lab:
        _start_lab(new_lab(settings, port=port, open_path=copy.notebook), settings)
    else:
        out.print("no JupyterLab serves it: start one with `make lab` (or `gx runbook lab`) and open it there",
                  markup=False)


@runbook.command("kernel")
def runbook_kernel() -> None:
    """Install (or refresh) the Jupyter kernel spec `gxlib` for this virtualenv's python; prints where."""
    from gxlib.runbook.kernel import install_kernel
    from gxlib.runbook.settings import RunbookSettings

    out.print(str(install_kernel(RunbookSettings().kernel_name)), markup=False)
