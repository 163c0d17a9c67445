"""Where runbooks are read from, where their records go, and which kernel runs them (``GX_RUNBOOK_*``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# The Jupyter kernel spec the notebooks name in their metadata; `gx runbook kernel` installs it into the
# virtualenv (``<sys.prefix>/share/jupyter/kernels/gxlib``) so that it runs this virtualenv's python.
KERNEL_NAME = "gxlib"

# Set by `run()` in the kernel's environment: the record directory of the run, where the summary is written.
RECORD_DIR_VARIABLE = "GX_RUNBOOK_RECORD_DIR"


def _checkout_notebooks() -> Path:
    # The notebooks are not package data: they live in the checkout gxlib is installed from (editable install).
    return Path(__file__).resolve().parents[2] / "notebooks"


class RunbookSettings(BaseSettings):
    """Settings of runbook execution, read from ``GX_RUNBOOK_*``."""

    model_config = SettingsConfigDict(env_prefix="GX_RUNBOOK_", extra="ignore")

    runs_dir: Path = Field(default=Path("runs"),
                           description="where each run leaves runs/<UTC timestamp>-<runbook>/ (relative: to the cwd)")
    notebooks_dir: Path = Field(default_factory=_checkout_notebooks, description="where the runbook notebooks are")
    kernel_name: str = Field(default=KERNEL_NAME, description="Jupyter kernel spec that executes the notebooks")
    start_timeout_s: float = Field(default=60.0, gt=0, description="how long to wait for the kernel to start")
    cell_timeout_s: float | None = Field(default=None, gt=0,
                                         description="longest a single cell may run (none: the runbook's own waits)")
    # A safety net for CI and for nbval: every runbook in this process runs as a dry run, whatever its parameters.
    force_dry_run: bool = Field(default=False, description="treat every run as dry_run=true (GX_RUNBOOK_FORCE_DRY_RUN)")

    def runs_path(self) -> Path:
        """``runs_dir`` made absolute: against the working directory — except in the templates' own directory (a
        template run by hand in JupyterLab), where it is the checkout's runs/, so nothing lands among the templates."""
        if self.runs_dir.is_absolute():
            return self.runs_dir
        cwd = Path.cwd().resolve()
        base = self.notebooks_dir.resolve().parent if cwd == self.notebooks_dir.resolve() else cwd
        return base / self.runs_dir
