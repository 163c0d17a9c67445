"""Why a runbook stopped, as types: each names the runbook and what the operator can do next."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gxlib.errors import GxError


class RunbookError(GxError):
    """Any failure of a runbook run; ``runbook`` is the registry name (e.g. ``04-validate-cqrs``)."""

    def __init__(self, runbook: str, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.runbook = runbook


class UnknownRunbook(RunbookError):
    def __init__(self, runbook: str, known: list[str]) -> None:
        super().__init__(runbook, f"no runbook named {runbook!r}", hint=f"known runbooks: {', '.join(known)}")
        self.known = known


class InvalidParameter(RunbookError):
    """A parameter failed validation; nothing has been touched yet."""

    def __init__(self, runbook: str, parameter: str, reason: str, *, hint: str | None = None) -> None:
        super().__init__(runbook, f"{runbook}: invalid parameter {parameter!r}: {reason}",
                         hint=hint or "fix the parameter and run again; nothing was changed")
        self.parameter = parameter
        self.reason = reason


class MainnetNotConfirmed(InvalidParameter):
    """``env=mainnet`` without ``confirm_mainnet``: refused before anything is touched."""

    def __init__(self, runbook: str) -> None:
        super().__init__(
            runbook, "confirm_mainnet",
            "env is 'mainnet' and confirm_mainnet is not set; a runbook never touches mainnet without it",
            hint="add `-p confirm_mainnet true` (gx runbook run / papermill) or set `confirm_mainnet = True` "
                 "in the parameters cell, after reading what the runbook will change (try --dry-run first)",
        )


class StepFailed(RunbookError):
    """A step's change raised; ``step`` names it and the cause is chained."""

    def __init__(self, runbook: str, step: str, cause: BaseException) -> None:
        super().__init__(runbook, f"{runbook}: step {step!r} failed: {type(cause).__name__}: {cause}")
        self.step = step


class ChecksFailed(RunbookError):
    """At least one check failed; raised by the summary after it has been shown."""

    def __init__(self, runbook: str, failed: list[str], total: int) -> None:
        names = ", ".join(failed)
        super().__init__(runbook, f"{runbook}: {len(failed)} of {total} checks failed: {names}",
                         hint="the summary table shows each failed check's measured value and what was expected")
        self.failed = failed
        self.total = total


class RunbookFailed(RunbookError):
    """The executed notebook raised: names the cell and the exception, and where the record is."""

    def __init__(self, runbook: str, *, cell_index: int | None, exception: str, reason: str,
                 record_dir: Path) -> None:
        where = f" in cell {cell_index}" if cell_index is not None else ""
        super().__init__(runbook, f"{runbook} failed{where}: {exception}: {reason}",
                         hint=f"the record of this run is in {record_dir}")
        self.cell_index = cell_index
        self.exception = exception
        self.reason = reason
        self.record_dir = record_dir
        self.summary: dict[str, Any] | None = None  # the run's summary.json, when the summary cell wrote it


class KernelNotInstalled(RunbookError):
    def __init__(self, runbook: str, kernel_name: str) -> None:
        super().__init__(runbook, f"the Jupyter kernel {kernel_name!r} that runbooks run on is not installed",
                         hint="run `gx runbook kernel` (or `make venv`) to install it into this virtualenv")
        self.kernel_name = kernel_name
