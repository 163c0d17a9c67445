"""Replay from the ledger itself: read the channel's blocks from block 0 up to the live projector's checkpoint,
apply the GX chaincode's events to a fresh database, and compare its read models with the live ones.

Blocks come from the peer's block delivery (the same blocks the live projector's stream reads), so the replay
sees exactly the VALID transactions' events in ledger order. Delivery and application overlap, each on its own
core: a child process reads and parses the blocks (:mod:`gxlib.fabric.event_process`) while this one applies the
events in memory (set-based, :mod:`gxlib.backend.setreplay`). Rows are written while delivery goes on — new ones
inserted, ones written before and changed since updated — so that little is left after the last block; all in one
transaction with one checkpoint. A SQLite target is loaded with a rollback journal, not the WAL (see
:func:`~gxlib.backend.db.use_rollback_journal`).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, make_url
from sqlalchemy.pool import NullPool

from gxlib.backend.db import migrate, use_rollback_journal, use_wal_journal
from gxlib.backend.eventsource import ChaincodeEvent, Checkpoint
from gxlib.backend.projector import DEFAULT_STREAM, ApplyResult, Projector
from gxlib.backend.replay import (
    REPLAY_BATCH,
    ReplayReport,
    ReplayTargetNotEmptyError,
    compare_read_models,
    own_cpu_seconds,
)
from gxlib.backend.setreplay import SetProjection, gc_paused
from gxlib.fabric.event_process import EventReaderProcess
from gxlib.fabric.events import EventTuple, event_tuples_in_block, events_in_block
from gxlib.fabric.gateway import Gateway

_QUEUE_BLOCKS = 256
# Rows made or changed written while delivery goes on, once this many are pending.
_STREAM_ROWS = 2000
T = TypeVar("T")


@dataclass(frozen=True)
class DeliveryFigures:
    """How fast the peer delivers the event history alone (no database): the ceiling of a replay."""

    blocks: int
    events: int
    elapsed_s: float

    @property
    def events_per_s(self) -> float:
        return self.events / self.elapsed_s if self.elapsed_s > 0 else 0.0


async def ledger_event_batches(environment: Mapping[str, Any], channel: str, chaincode: str, last_block: int, *,
                               identity: str = "service") -> AsyncIterator[list[ChaincodeEvent]]:
    """The events of ``chaincode`` block by block, blocks 0..``last_block`` (one list per block, maybe empty)."""
    async with Gateway.from_environment(dict(environment), identity) as gateway:
        async for block in gateway.network(channel).blocks(0, last_block):
            yield [ChaincodeEvent(e.block_number, e.tx_index, e.tx_id, e.event_name, e.payload, e.timestamp)
                   for e in events_in_block(block, chaincode)]


async def measure_delivery(environment: Mapping[str, Any], channel: str, chaincode: str, last_block: int, *,
                           identity: str = "service") -> DeliveryFigures:
    """Read blocks 0..``last_block`` and extract the events, doing nothing with them: the same connection, block
    delivery and extraction (:func:`~gxlib.fabric.events.event_tuples_in_block`) as the replay's reader process,
    in this process."""
    blocks = events = 0
    started = time.perf_counter()
    async with Gateway.from_environment(dict(environment), identity) as gateway:
        async for block in gateway.network(channel).blocks(0, last_block):
            blocks += 1
            events += len(event_tuples_in_block(block, chaincode))
    return DeliveryFigures(blocks, events, time.perf_counter() - started)


async def replay_ledger(environment: Mapping[str, Any], channel: str, chaincode: str, live: Engine, target: Engine,
                        *, identity: str = "service", stream: str = DEFAULT_STREAM,
                        reader_process: bool = True, nodes_cpu: Callable[[], float] | None = None) -> ReplayReport:
    """Replay the ledger up to ``live``'s projector checkpoint into the fresh database ``target`` and compare the
    read models (``report.differences``; empty when equal). Raises :class:`ReplayTargetNotEmptyError` when
    ``target`` already holds a projection.

    With ``reader_process`` (the default) the blocks are read and parsed by a child process
    (:mod:`gxlib.fabric.event_process`), started while ``target`` is migrated, so delivery and apply each have a
    core; ``report.elapsed_s`` runs from the request for the first block to the commit, and ``report.cpu_s`` is
    this process's and the reader process's CPU over that time. The timing starts once the reader is ready (its
    imports done, like the migration, left out), as :func:`measure_delivery`'s starts in a process that has
    imported what it needs.

    ``nodes_cpu``, if given, reads the CPU-seconds so far of the Fabric nodes (the peer serving the blocks); it is
    read when the timing starts and when it ends, and ``report.nodes_cpu_s`` is the difference."""
    until = await asyncio.to_thread(Projector(live, stream=stream).checkpoint)
    async with contextlib.AsyncExitStack() as stack:
        reader = (await EventReaderProcess.start()) if reader_process and until is not None else None
        if reader is not None:
            stack.push_async_callback(reader.close)
        await asyncio.to_thread(migrate, target)
        projector = Projector(target, stream=stream)
        if await asyncio.to_thread(projector.checkpoint) is not None:
            raise ReplayTargetNotEmptyError(target.url.render_as_string(hide_password=True))
        # The migration's and the check's pooled connections closed: the replay's own is then the only one open
        # on a SQLite target, so it can load it with a rollback journal (db.use_rollback_journal).
        await asyncio.to_thread(target.dispose)
        if reader is not None:
            await reader.ready()  # its imports, like the migration, are not part of the replay's rate
        counts = {"events": 0, "applied": 0, "unknown": 0}
        nodes_started = nodes_cpu() if nodes_cpu is not None else None
        started, cpu_started = time.perf_counter(), own_cpu_seconds()
        if until is not None:
            batches = (ledger_event_batches(environment, channel, chaincode, until.block_number, identity=identity)
                       if reader is None else
                       _events_from(reader.events(environment, channel, chaincode, 0, until.block_number,
                                                  identity=identity)))
            with gc_paused():
                counts = await replay_batches(batches, until, target, stream=stream)
        elapsed, cpu = time.perf_counter() - started, own_cpu_seconds() - cpu_started
        nodes_spent = nodes_cpu() - nodes_started if nodes_cpu is not None and nodes_started is not None else None
        if reader is not None:
            cpu += reader.cpu_s or 0.0  # the reader process's share
    differences = await asyncio.to_thread(compare_read_models, live, target)
    checkpoint = await asyncio.to_thread(projector.checkpoint)
    return ReplayReport(counts["events"], counts["applied"], counts["unknown"], checkpoint, elapsed, differences,
                        cpu, nodes_spent)


async def _events_from(frames: AsyncIterator[list[EventTuple]]) -> AsyncIterator[list[ChaincodeEvent]]:
    """The reader process's event tuples as the projector's events."""
    async for frame in frames:
        yield [ChaincodeEvent(block, index, tx_id, name, payload, datetime.fromtimestamp(seconds, UTC))
               for block, index, tx_id, name, payload, seconds in frame]


async def replay_batches(batches: AsyncIterator[list[ChaincodeEvent]], until: Checkpoint, target: Engine, *,
                         stream: str = DEFAULT_STREAM, stream_rows: int = _STREAM_ROWS) -> dict[str, int]:
    """Apply the events of ``batches`` (delivered in ledger order) up to ``until`` to a set-based projection as they
    arrive, and write it to the migrated, empty ``target`` in ONE transaction: opened first, fed the rows made or
    changed whenever ``stream_rows`` are pending while delivery goes on, so the database works beside the delivery
    and the end has only the last rows and the checkpoint to write (a history of 20k mints: 6–10 ms, against
    80–150 ms when the accounts waited for the end). A delivery failure or an event that
    does not apply raises, and nothing is committed. One worker thread owns the connection and the projection.
    Returns the counts of events, applied and unknown-type events."""
    projection = SetProjection(stream=stream)
    counts = {"events": 0, "applied": 0, "unknown": 0}
    queue: asyncio.Queue[list[ChaincodeEvent] | None] = asyncio.Queue(_QUEUE_BLOCKS)
    loop = asyncio.get_running_loop()
    worker = ThreadPoolExecutor(1, thread_name_prefix="gx-replay-apply")

    def in_worker(function: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        return loop.run_in_executor(worker, function, *args)

    async def produce() -> None:
        try:
            async for batch in batches:
                if batch:
                    await queue.put(batch)
        finally:
            await queue.put(None)

    def apply_all(batch: list[ChaincodeEvent], connection: Connection) -> None:
        batch = [event for event in batch if event.position <= until.position]
        counts["events"] += len(batch)
        results = projection.add(batch)  # a malformed event raises: a replay never skips
        counts["applied"] += sum(r is ApplyResult.APPLIED for r in results)
        counts["unknown"] += sum(r is ApplyResult.UNKNOWN_TYPE for r in results)
        if projection.pending_rows() >= stream_rows:
            projection.write_pending(connection)

    producer = asyncio.create_task(produce())
    connection: Connection | None = None
    try:
        connection = await in_worker(target.connect)
        rollback_journal = await in_worker(use_rollback_journal, connection)
        transaction = await in_worker(connection.begin)
        ended = False
        while not ended:
            # Whatever blocks have arrived meanwhile are applied in one hand-off to the worker thread.
            batch = await queue.get()
            if batch is None:
                break
            while len(batch) < REPLAY_BATCH and not queue.empty():
                more = queue.get_nowait()
                if more is None:
                    ended = True
                    break
                batch = batch + more
            await in_worker(apply_all, batch, connection)
        await producer  # re-raises a delivery failure
        await in_worker(projection.write_rest, connection)
        await in_worker(transaction.commit)
        if rollback_journal:
            await in_worker(use_wal_journal, connection)
    finally:
        producer.cancel()
        if connection is not None:
            await in_worker(connection.close)  # rolls back what was not committed
        worker.shutdown(wait=False)
    return counts


@contextlib.contextmanager
def fresh_database(live_url: str, *, keep: bool = False) -> Iterator[str]:
    """A new, empty database beside the live one: a SQLite file in a temporary directory, or a new database on
    the same PostgreSQL server (dropped afterwards unless ``keep``). Yields its URL."""
    url = make_url(live_url)
    if url.get_backend_name() == "sqlite":
        directory = tempfile.mkdtemp(prefix="gx-replay-")
        try:
            yield f"sqlite:///{Path(directory) / 'replay.sqlite3'}"
        finally:
            if not keep:
                shutil.rmtree(directory, ignore_errors=True)
        return
    name = f"gx_replay_{secrets.token_hex(6)}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            yield url.set(database=name).render_as_string(hide_password=False)
        finally:
            if not keep:
                with admin.connect() as connection:
                    connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()
