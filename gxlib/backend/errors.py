"""Typed errors of the backend; each carries the command ID, tx ID, event position or parameter it is about."""

from __future__ import annotations

from gxlib.errors import GxError


class BackendError(GxError):
    """Root of the backend's errors."""


class DatabaseMigrationError(BackendError):
    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"migrating the backend database {url} failed: {reason}",
                         hint="check GX_BACKEND_DATABASE_URL and that the database is reachable")
        self.url = url


class DatabaseUrlError(BackendError):
    """GX_BACKEND_DATABASE_URL (or --database-url) is not a URL SQLAlchemy can use; ``url`` is redacted."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"the backend database URL {url} is not valid: {reason}",
                         hint="check GX_BACKEND_DATABASE_URL (dialect+driver://user:password@host:port/database)")
        self.url = url


class CommandNotFoundError(BackendError):
    def __init__(self, command_id: str) -> None:
        super().__init__(f"command {command_id!r} does not exist")
        self.command_id = command_id


class IdempotencyConflictError(BackendError):
    """The idempotency key is already used by a command with another type or payload."""

    def __init__(self, idempotency_key: str, command_id: str) -> None:
        super().__init__(f"idempotency key {idempotency_key!r} already belongs to command {command_id} "
                         "with a different type or payload",
                         hint="use a new idempotency key for a different command")
        self.idempotency_key = idempotency_key
        self.command_id = command_id


class LeaseLostError(BackendError):
    """The command's lease expired and another worker claimed it; this worker must stop touching it."""

    def __init__(self, command_id: str, owner: str) -> None:
        super().__init__(f"worker {owner} no longer holds the lease of command {command_id}",
                         hint="raise GX_BACKEND_SUBMITTER__LEASE_S if commands take longer than the lease")
        self.command_id = command_id
        self.owner = owner


class InvalidPayloadError(BackendError):
    """A command payload does not validate (the API rejects these before they reach the outbox)."""

    def __init__(self, command_type: str, parameter: str, reason: str) -> None:
        super().__init__(f"{command_type}: parameter {parameter!r}: {reason}")
        self.command_type = command_type
        self.parameter = parameter
        self.reason = reason


class ProjectionError(BackendError):
    """An event could not be applied to the read models; the projector retries it and never skips it."""

    def __init__(self, message: str, *, event_type: str, block_number: int, tx_index: int, tx_id: str) -> None:
        super().__init__(f"{event_type} at block {block_number} tx {tx_index} ({tx_id}): {message}",
                         hint="the projector stops here and retries; fix the cause, it resumes from the checkpoint")
        self.event_type = event_type
        self.block_number = block_number
        self.tx_index = tx_index
        self.tx_id = tx_id


class MalformedEventError(ProjectionError):
    """A known event type whose payload does not match its versioned JSON Schema."""
