"""Group-commit: many small writes from concurrent tasks in ONE database transaction, one thread hand-off.

A service that writes one short row change per request or per transaction (the API's enqueue, the submitter's
``record_tx`` / ``mark_committed``) spends most of each write on what surrounds it: handing the blocking call to
a thread, opening a transaction, committing. :class:`WriteBatcher` queues the writes that arrive while a batch is
being written and writes them together: each caller still awaits its own write and gets its own result or error,
and its write is committed (durable) before its ``await`` returns — so "store the tx ID, then send" keeps its
order.

An operation is a function of a :class:`~sqlalchemy.Connection` inside the batch's transaction. It may raise a
non-database error (e.g. :class:`~gxlib.backend.errors.LeaseLostError`) only when it has written nothing: that
caller gets the error, the others' writes go on. A database error fails the whole transaction; the batch is then
written again one operation per transaction, so only the operation that fails gets the error (and a dead
database gives each caller the driver's error, as an unbatched write would).

Usage::

    batcher = WriteBatcher(engine)
    row = await batcher.run(lambda connection: outbox.record_tx(..., connection=connection))
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

T = TypeVar("T")
Operation = Callable[[Connection], Any]
DEFAULT_MAX_BATCH = 128


@dataclass
class _Pending:
    operation: Operation
    future: asyncio.Future[Any]


@dataclass
class _Outcome:
    value: Any = None
    error: BaseException | None = None


class WriteBatcher:
    """Writes the operations awaited concurrently in one transaction per batch (at most ``max_batch`` each)."""

    def __init__(self, engine: Engine, *, max_batch: int = DEFAULT_MAX_BATCH) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.engine = engine
        self.max_batch = max_batch
        self._queue: list[_Pending] = []
        self._writer: asyncio.Task[None] | None = None
        self.batches = 0  # transactions written, for tests and diagnostics
        self.operations = 0

    async def run(self, operation: Callable[[Connection], T]) -> T:
        """Write ``operation`` (in a batch with whatever else is waiting) and return its result once committed."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(operation, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_all())
        return cast(T, await future)

    async def _write_all(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[:self.max_batch], self._queue[self.max_batch:]
            try:
                outcomes = await asyncio.to_thread(self._write, [p.operation for p in batch])
            except BaseException as exc:  # e.g. cancelled at shutdown: nobody waits forever
                for pending in batch:
                    if not pending.future.done():
                        pending.future.set_exception(exc if isinstance(exc, Exception) else
                                                     RuntimeError("the write batch was cancelled"))
                if not isinstance(exc, Exception):
                    raise
                continue
            for pending, outcome in zip(batch, outcomes, strict=True):
                if pending.future.done():  # the caller was cancelled; its write stands or fell with the batch
                    continue
                if outcome.error is not None:
                    pending.future.set_exception(outcome.error)
                else:
                    pending.future.set_result(outcome.value)

    def _write(self, operations: list[Operation]) -> list[_Outcome]:
        """In a worker thread: all operations in one transaction; after a database error, one per transaction."""
        self.batches += 1
        self.operations += len(operations)
        try:
            return self._transaction(operations)
        except SQLAlchemyError as exc:
            if len(operations) == 1:
                return [_Outcome(error=exc)]
        outcomes: list[_Outcome] = []
        for operation in operations:
            try:
                outcomes.extend(self._transaction([operation]))
            except SQLAlchemyError as exc:
                outcomes.append(_Outcome(error=exc))
        return outcomes

    def _transaction(self, operations: list[Operation]) -> list[_Outcome]:
        outcomes: list[_Outcome] = []
        with self.engine.begin() as connection:
            for operation in operations:
                try:
                    outcomes.append(_Outcome(value=operation(connection)))
                except SQLAlchemyError:
                    raise
                except Exception as exc:  # the operation wrote nothing (see the module's contract)
                    outcomes.append(_Outcome(error=exc))
        return outcomes
