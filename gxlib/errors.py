"""The root of gxlib's typed errors. Each error says what failed and what the operator can do."""

from __future__ import annotations


class GxError(Exception):
    """An operational failure with a message written for the operator.

    ``hint`` says what to do next; it is printed under the message by the CLI.
    """

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class Unavailable(GxError):
    """Something a run needs cannot be used now (not running, not reachable, not configured): the run stops before
    it changes anything. ``parameter`` names the setting or parameter that would point elsewhere, when one does."""

    def __init__(self, reason: str, *, parameter: str | None = None, hint: str | None = None) -> None:
        super().__init__(reason, hint=hint)
        self.reason = reason
        self.parameter = parameter
