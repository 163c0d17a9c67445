"""Executable runbooks (SPEC §8): parameterised notebooks that validate, dry-run, check, and leave a record.

For notebooks: ``start(name, globals())`` → a ``Runbook`` with ``.params``, ``.step(...)``, ``.checks``,
``.progress`` and ``.finish()``. For callers (``gx runbook run``, CI): ``run(name, parameters, dry_run=...)``.
"""

from __future__ import annotations

from gxlib.runbook.checks import Check, Checks, CheckStatus
from gxlib.runbook.errors import (
    ChecksFailed,
    InvalidParameter,
    KernelNotInstalled,
    MainnetNotConfirmed,
    RunbookError,
    RunbookFailed,
    StepFailed,
    UnknownRunbook,
)
from gxlib.runbook.execute import RunRecord, prepare, run
from gxlib.runbook.registry import RUNBOOKS, RunbookSpec, runbook, runbooks
from gxlib.runbook.session import Runbook, start
from gxlib.runbook.steps import Step, StepOutcome, StepResult

__all__ = [
    "RUNBOOKS",
    "Check",
    "CheckStatus",
    "Checks",
    "ChecksFailed",
    "InvalidParameter",
    "KernelNotInstalled",
    "MainnetNotConfirmed",
    "RunRecord",
    "Runbook",
    "RunbookError",
    "RunbookFailed",
    "RunbookSpec",
    "Step",
    "StepFailed",
    "StepOutcome",
    "StepResult",
    "UnknownRunbook",
    "prepare",
    "run",
    "runbook",
    "runbooks",
    "start",
]
