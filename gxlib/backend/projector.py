"""The projector (SPEC §3.3): chaincode events → read models, exactly once, in ledger order.

:meth:`Projector.apply` validates an event against the chaincode's versioned JSON Schema, applies it and advances
the checkpoint in ONE database transaction, so a restart anywhere leaves the read models equal to a replay from
block 0. :meth:`Projector.run` feeds it from an :class:`EventSource`; a failing event is retried with backoff
and counted in ``projector_events_failed_total`` — never skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import Any, TypeVar, cast

import jsonschema_rs
import orjson
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError as SchemaValidationError
from sqlalchemy import Engine, Table, bindparam, insert, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from gxchaincode.events import EVENT_TYPES, load_schema
from gxlib.backend.backoff import backoff_delay
from gxlib.backend.errors import MalformedEventError, ProjectionError
from gxlib.backend.eventsource import ChaincodeEvent, Checkpoint, EventSource
from gxlib.backend.metrics import ProjectorMetrics
from gxlib.backend.models import ProjectorCheckpoint
from gxlib.backend.readmodel import HANDLERS, ReadModelInconsistency, rows_read_by
from gxlib.backend.rowstore import RowStore
from gxlib.backend.settings import ProjectorSettings
from gxlib.backend.sqltypes import utcnow

log = logging.getLogger("gxlib.backend.projector")
_CHECKPOINTS = cast(Table, ProjectorCheckpoint.__table__)
# Built once (a statement built per call cost more CPU than running it, measured on a one-event batch).
# FOR UPDATE: a second projector (by mistake) waits here instead of applying the same events twice.
_CHECKPOINT_FOR_UPDATE = (select(_CHECKPOINTS.c.block_number, _CHECKPOINTS.c.tx_index)
                          .where(_CHECKPOINTS.c.stream == bindparam("b_stream")).with_for_update())
_CHECKPOINT_INSERT = insert(_CHECKPOINTS)
_CHECKPOINT_UPDATE = update(_CHECKPOINTS).where(_CHECKPOINTS.c.stream == bindparam("b_stream"))
DEFAULT_STREAM = "gxtv3"
UNKNOWN_EVENT_LABEL = "unknown"
T = TypeVar("T")


class ApplyResult(StrEnum):
    APPLIED = "applied"
    UNKNOWN_TYPE = "unknown_type"  # counted and passed over (the checkpoint still advances)
    ALREADY_APPLIED = "already_applied"  # at or before the checkpoint: a redelivery


@cache
def validator(event_type: str) -> Draft202012Validator:
    """The validator of the chaincode's own schema file for ``event_type`` (gxchaincode.events.load_schema)."""
    return Draft202012Validator(load_schema(event_type))


@cache
def fast_validator(event_type: str) -> Callable[[Any], bool]:
    """Whether a payload is valid for ``event_type``'s schema, checked by the schema compiled with jsonschema-rs
    (Rust; the schema's own draft, 2020-12; about 100x faster than the reference validator and 5x faster than
    fastjsonschema). ``format`` is not asserted, as the reference validator does not. Only ever used to accept:
    whatever it refuses is judged by the reference validator."""
    return jsonschema_rs.Draft202012Validator(load_schema(event_type), validate_formats=False).is_valid


def _fast_accepts(event_type: str, payload: Any) -> bool:
    try:
        return fast_validator(event_type)(payload)
    except Exception:  # a value the compiled check cannot take: the reference validator decides and explains
        return False


def _has_float(value: Any) -> bool:
    """Whether a parsed JSON value holds a float anywhere (the types of an object's or array's items are taken in C;
    only nested objects and arrays are looked into)."""
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else None
    if items is None:
        return isinstance(value, float)
    types = set(map(type, items))
    if float in types:
        return True
    return (dict in types or list in types) and any(_has_float(item) for item in items
                                                    if isinstance(item, dict | list))


def json_payload(payload: bytes) -> Any:
    """``payload`` parsed exactly as :func:`json.loads` parses it, mostly by orjson (a mint's payload: 0.6 µs in orjson
    and about 1.8 µs with the check below, against 3.6 µs in ``json.loads``).

    orjson reads an integer beyond 64 bits as a float (losing digits an amount must keep) and refuses what
    ``json.loads`` accepts (NaN, a byte-order mark, lone surrogates, UTF-16): whatever it refuses, and whatever it
    read a float in, is parsed again by ``json.loads``, which decides (and explains an error). GX events hold no
    floats, so that second parse is for odd input only. Raises what ``json.loads`` raises."""
    try:
        parsed = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return json.loads(payload)
    return json.loads(payload) if _has_float(parsed) else parsed


def _malformed(event: ChaincodeEvent, reason: str) -> MalformedEventError:
    return MalformedEventError(reason, event_type=event.event_name, block_number=event.block_number,
                               tx_index=event.tx_index, tx_id=event.tx_id)


def parse_event(event: ChaincodeEvent) -> dict[str, Any]:
    """The payload of a known event type, validated; :class:`MalformedEventError` otherwise."""
    try:
        payload = json_payload(event.payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _malformed(event, f"payload is not JSON: {exc}") from None
    try:
        # The fast check only accepts; whatever it refuses is judged (and explained) by the reference validator.
        if not _fast_accepts(event.event_name, payload):
            validator(event.event_name).validate(payload)
    except SchemaValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "payload"
        raise _malformed(event, f"{where}: {exc.message}") from None
    if not isinstance(payload, dict):  # every event schema is an object; a schema without "type" still gets one
        raise _malformed(event, f"payload is a JSON {type(payload).__name__}, not an object")
    return payload


class Projector:
    def __init__(self, engine: Engine, *, stream: str = DEFAULT_STREAM, metrics: ProjectorMetrics | None = None,
                 settings: ProjectorSettings | None = None, clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.engine = engine
        self.stream = stream
        self.metrics = metrics
        self.settings = settings or ProjectorSettings()
        self.clock = clock
        self._oldest_unprojected: dt.datetime | None = None

    # --- checkpoint -------------------------------------------------------------------------------------------
    def checkpoint(self) -> Checkpoint | None:
        with Session(self.engine) as session:
            row = session.get(ProjectorCheckpoint, self.stream)
            return None if row is None else Checkpoint(row.block_number, row.tx_index, row.tx_id)

    # --- apply ------------------------------------------------------------------------------------------------
    def apply(self, event: ChaincodeEvent) -> ApplyResult:
        """Apply one event and advance the checkpoint, both or neither. Raises :class:`MalformedEventError`
        for a known type whose payload does not match its schema, :class:`ProjectionError` when the event
        does not fit the read model; nothing is written then."""
        return self._apply_events([event])[0]

    def apply_batch(self, events: Sequence[ChaincodeEvent]) -> list[ApplyResult]:
        """Apply ``events`` (in ledger order) and advance the checkpoint past the last of them, all in ONE database
        transaction: every event or none. What a replay uses — a commit per event is most of an event's cost.
        Raises like :meth:`apply` for the first event that does not apply; then nothing of the batch is written
        (apply the events one at a time to retry and count the failing one).

        The handlers work on a :class:`~gxlib.backend.rowstore.RowStore` over the transaction's connection: the rows
        the batch reads are loaded with one query per table, and what it made or changed is written at the end with
        one INSERT or UPDATE per table (not the ORM's unit of work, which was a third of the projector's CPU)."""
        return self._apply_events(events)

    def _apply_events(self, events: Sequence[ChaincodeEvent]) -> list[ApplyResult]:
        if not events:
            return []
        parsed = [(e, parse_event(e) if e.event_name in EVENT_TYPES else None) for e in events]
        results: list[ApplyResult] = []
        started = time.perf_counter()
        current = events[0]
        try:
            with self.engine.begin() as connection:
                row = connection.execute(_CHECKPOINT_FOR_UPDATE, {"b_stream": self.stream}).first()
                position = None if row is None else (row.block_number, row.tx_index)
                last = None
                store = RowStore(connection)
                wanted: dict[type[Any], set[Any]] = {}
                for current, payload in parsed:
                    if payload is not None and (position is None or current.position > position):
                        for model, keys in rows_read_by(current.event_name, payload).items():
                            wanted.setdefault(model, set()).update(keys)
                store.prefetch(wanted)  # one query per table instead of one per row looked up
                rows = cast(Session, store)  # the handlers are typed with the Session they were written for
                for current, payload in parsed:
                    if position is not None and current.position <= position:
                        results.append(ApplyResult.ALREADY_APPLIED)
                        continue
                    if payload is not None:
                        HANDLERS[current.event_name](rows, current, payload)
                    results.append(ApplyResult.APPLIED if payload is not None else ApplyResult.UNKNOWN_TYPE)
                    position, last = current.position, current
                store.write_pending(connection)
                if last is not None:
                    values = {"block_number": last.block_number, "tx_index": last.tx_index, "tx_id": last.tx_id,
                              "updated_at": self.clock()}
                    if row is None:
                        connection.execute(_CHECKPOINT_INSERT, {"stream": self.stream, **values})
                    else:
                        connection.execute(_CHECKPOINT_UPDATE, {"b_stream": self.stream, **values})
        except ReadModelInconsistency as exc:
            raise ProjectionError(str(exc), event_type=current.event_name, block_number=current.block_number,
                                  tx_index=current.tx_index, tx_id=current.tx_id) from exc
        applied = [(e, r) for (e, _), r in zip(parsed, results, strict=True) if r is not ApplyResult.ALREADY_APPLIED]
        if self.metrics and applied:
            per_event_ms = (time.perf_counter() - started) * 1000 / len(applied)
            for event, result in applied:
                self.metrics.duration_ms.observe(per_event_ms)
                self.metrics.processed.labels(eventType=event.event_name if result is ApplyResult.APPLIED
                                              else UNKNOWN_EVENT_LABEL).inc()
            self.metrics.checkpoint_block.set(applied[-1][0].block_number)
        for event, result in applied:
            if result is ApplyResult.UNKNOWN_TYPE:
                log.warning("unknown event type passed over", extra={"event_type": event.event_name,
                                                                       "tx_id": event.tx_id,
                                                                       "block_number": event.block_number})
        return results

    # --- lag --------------------------------------------------------------------------------------------------
    @staticmethod
    def event_time(event: ChaincodeEvent) -> dt.datetime | None:
        if event.tx_timestamp is not None:
            return event.tx_timestamp
        try:
            return dt.datetime.fromtimestamp(int(json.loads(event.payload)["timestamp"]), tz=dt.UTC)
        except (ValueError, KeyError, TypeError, OverflowError, OSError):
            return None

    def lag_ms(self) -> float:
        """now − tx timestamp of the oldest received-but-unprojected event; 0 when caught up (SPEC §3.3)."""
        if self._oldest_unprojected is None:
            return 0.0
        return max(0.0, (self.clock() - self._oldest_unprojected).total_seconds() * 1000)

    def _update_lag(self) -> None:
        if self.metrics:
            self.metrics.lag_ms.set(self.lag_ms())

    # --- loop -------------------------------------------------------------------------------------------------
    async def apply_with_retry(self, event: ChaincodeEvent, stop: asyncio.Event | None = None,
                               max_attempts: int | None = None) -> ApplyResult | None:
        """Apply ``event``, retrying with backoff until it succeeds (or ``stop`` is set / ``max_attempts`` is
        reached, then None: the event is NOT applied and the caller must not go past it)."""
        received = self.event_time(event) or self.clock()
        if self._oldest_unprojected is None:
            self._oldest_unprojected = received
        attempt = 0
        while True:
            attempt += 1
            self._update_lag()
            try:
                result = await asyncio.to_thread(self.apply, event)
            except (ProjectionError, SQLAlchemyError) as exc:
                if self.metrics:
                    self.metrics.failed.labels(eventType=event.event_name).inc()
                log.error("projecting event failed; retrying", extra={
                    "event_type": event.event_name, "tx_id": event.tx_id, "block_number": event.block_number,
                    "tx_index": event.tx_index, "attempt": attempt, "error": str(exc)})
                if (max_attempts is not None and attempt >= max_attempts) or (stop is not None and stop.is_set()):
                    self._update_lag()
                    return None
                delay = backoff_delay(attempt, self.settings.retry_base_s, self.settings.retry_max_s)
                if stop is None:
                    await asyncio.sleep(delay)
                else:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), delay)
                continue
            self._oldest_unprojected = None
            self._update_lag()
            return result

    async def apply_batch_with_retry(self, events: Sequence[ChaincodeEvent], stop: asyncio.Event | None = None,
                                     max_attempts: int | None = None) -> bool:
        """Apply ``events`` (in ledger order) in one transaction with one checkpoint; when that fails, apply them one
        at a time with :meth:`apply_with_retry`, so the failing event is retried and counted on its own and the
        ones before it are kept. False: an event was not applied (stopped / attempts exhausted); the caller must
        not go past it."""
        if len(events) == 1:
            return await self.apply_with_retry(events[0], stop, max_attempts) is not None
        received = self.event_time(events[0]) or self.clock()
        if self._oldest_unprojected is None:
            self._oldest_unprojected = received
        self._update_lag()
        try:
            await asyncio.to_thread(self.apply_batch, events)
        except (ProjectionError, SQLAlchemyError) as exc:
            log.warning("projecting a batch failed; applying its events one at a time",
                        extra={"events": len(events), "first_block": events[0].block_number, "error": str(exc)})
            for event in events:
                if await self.apply_with_retry(event, stop, max_attempts) is None:
                    return False
            return True
        self._oldest_unprojected = None
        self._update_lag()
        return True

    async def run(self, source: EventSource, stop: asyncio.Event) -> None:
        """Project events from the checkpoint on until ``stop`` is set; reconnects the source from the
        checkpoint when its stream fails. The events that have arrived while a batch was being written are
        applied together (up to ``settings.batch_size``, one transaction and one checkpoint)."""
        log.info("projector started", extra={"stream": self.stream})
        while not stop.is_set():
            try:
                # Inside the try: the database may be down right now (the reconnect below waits for it).
                after = await asyncio.to_thread(self.checkpoint)
                if self.metrics and after is not None:
                    self.metrics.checkpoint_block.set(after.block_number)
                # aclosing: leaving the loop stops the reader (and the stream) at once, before reconnecting.
                async with contextlib.aclosing(_arrived(_until_stopped(source.events(after), stop),
                                                        self.settings.batch_size)) as batches:
                    async for batch in batches:
                        if not await self.apply_batch_with_retry(batch, stop) or stop.is_set():
                            break
            except Exception:
                log.exception("event stream or checkpoint read failed; reconnecting from the checkpoint")
            if not stop.is_set():  # the stream ended or failed: reconnect after a pause
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.settings.retry_base_s)
        log.info("projector stopped", extra={"stream": self.stream})


@dataclass(frozen=True)
class _End:
    error: Exception | None = None


async def _arrived(stream: AsyncIterator[T], max_size: int) -> AsyncGenerator[list[T]]:
    """The items of ``stream`` in lists: each list holds what had arrived when the previous one was taken (at
    least one item, at most ``max_size``). A reader task keeps taking items meanwhile; an error of ``stream`` is
    raised after the items before it."""
    queue: asyncio.Queue[T | _End] = asyncio.Queue(max_size)

    async def read() -> None:
        try:
            async for item in stream:
                await queue.put(item)
        except Exception as exc:
            await queue.put(_End(exc))
        else:
            await queue.put(_End())

    reader = asyncio.create_task(read())
    try:
        while True:
            items: list[T] = []
            end: _End | None = None
            item = await queue.get()
            while True:
                if isinstance(item, _End):
                    end = item
                    break
                items.append(item)
                if len(items) >= max_size or queue.empty():
                    break
                item = queue.get_nowait()
            if items:
                yield items
            if end is not None:
                if end.error is not None:
                    raise end.error
                return
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reader


async def _until_stopped(stream: AsyncIterator[T], stop: asyncio.Event) -> AsyncIterator[T]:
    """The items of ``stream`` until it ends or ``stop`` is set — also while it is waiting for the next item (a
    quiet chain), so SIGTERM stops an idle projector at once instead of at the next block."""
    iterator = aiter(stream)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        while True:
            upcoming = asyncio.ensure_future(anext(iterator))
            await asyncio.wait({upcoming, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if not upcoming.done():
                upcoming.cancel()
                with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                    await upcoming
                return
            try:
                item = upcoming.result()
            except StopAsyncIteration:
                return
            yield item
    finally:
        stopped.cancel()
        closer = getattr(iterator, "aclose", None)
        if closer is not None:
            with contextlib.suppress(Exception):
                await closer()
