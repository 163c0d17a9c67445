"""Steps that change something, declared with what they would change, so a dry run can report and not act.

A step is three things: a sentence saying what it changes, an optional read-only probe that says whether the
change is already in place (what makes a second run safe), and the action. The runner decides:

    already in place        → "already done", nothing called
    dry run                 → "would change", nothing called
    otherwise               → the action runs → "changed" (or StepFailed, naming the step);
                              an action that finds its change made already returns ``AlreadyDone`` → "already done"
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum


class StepOutcome(StrEnum):
    CHANGED = "changed"
    ALREADY_DONE = "already done"
    WOULD_CHANGE = "would change (dry run)"
    FAILED = "FAILED"


@dataclass(frozen=True)
class Step:
    """One change a runbook makes. ``is_done`` must not change anything: it also runs in a dry run."""

    name: str
    changes: str
    apply: Callable[[], object]
    is_done: Callable[[], bool] | None = None


@dataclass(frozen=True)
class AlreadyDone:
    """What an action returns when it finds its change already made (e.g. the API answered that this command was
    submitted before): the step is then "already done", with ``detail`` saying how that was found."""

    detail: str


@dataclass(frozen=True)
class StepResult:
    name: str
    outcome: StepOutcome
    changes: str
    detail: str = ""
    result: object = None

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "outcome": str(self.outcome), "changes": self.changes, "detail": self.detail}


STEP_COLUMNS = ("name", "outcome", "changes", "detail")


def execute_step(step: Step, *, dry_run: bool) -> StepResult:
    """Run ``step`` under the rules above. Exceptions from the action propagate (the caller names the step)."""
    if step.is_done is not None and step.is_done():
        return StepResult(step.name, StepOutcome.ALREADY_DONE, step.changes, "nothing to change")
    if dry_run:
        return StepResult(step.name, StepOutcome.WOULD_CHANGE, step.changes, "dry run: nothing changed")
    result = step.apply()
    if isinstance(result, AlreadyDone):
        return StepResult(step.name, StepOutcome.ALREADY_DONE, step.changes, result.detail, result=result)
    return StepResult(step.name, StepOutcome.CHANGED, step.changes, result=result)
