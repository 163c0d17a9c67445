"""What every runbook's sections share: the run, its validated parameters, and the stop.

A runbook module is a ``RunbookSection`` subclass with one method per section of its notebook. Helpers that find
what a run needs (the devnet, the backend, the platform) raise :class:`gxlib.errors.Unavailable`; ``unless_unavailable``
turns that into the run's stop check once, and every later section then says it was not run, and why::

    class DeployMonitoring(RunbookSection[DeployMonitoringParameters]):
        parameters = DeployMonitoringParameters

        def render(self) -> None:
            if self.skip_section("render"):
                return
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

from gxlib.errors import Unavailable
from gxlib.runbook.parameters import RunbookParameters
from gxlib.runbook.session import Runbook

P = TypeVar("P", bound=RunbookParameters)


class RunbookSection(Generic[P]):
    """The sections of one runbook; ``stopped`` says why the run stopped (``None``: it goes on)."""

    parameters: type[P]

    def __init__(self, rb: Runbook) -> None:
        if not isinstance(rb.params, self.parameters):
            raise TypeError(f"{rb.name} does not take {self.parameters.__name__}")
        self.rb = rb
        self.params: P = rb.params
        self.stopped: str | None = None

    def ready(self) -> bool:
        """Whether what the sections act on has been found (a runbook overrides this: its target, its plan)."""
        return True

    def skip_section(self, what: str) -> bool:
        """True (after saying so) when the run has stopped, or has nothing to act on: the section then does nothing."""
        if self.stopped is None and self.ready():
            return False
        self.rb.progress.info(f"  {what}: not run — {self.stopped or 'nothing to act on yet'}")
        return True

    def stop(self, check: str, reason: str, *, fails_dry_run: bool = False) -> None:
        """Stop the run on a failed check (in a dry run, unless ``fails_dry_run``, a skipped one)."""
        self.stopped = reason
        self.rb.record_stop(check, reason, fails_dry_run=fails_dry_run)

    @contextmanager
    def unless_unavailable(self, check: str, *, fails_dry_run: bool = False) -> Iterator[None]:
        """Run the block; an :class:`Unavailable` raised in it stops the run on ``check`` with its reason."""
        try:
            yield
        except Unavailable as exc:
            self.stop(check, exc.reason, fails_dry_run=fails_dry_run)
