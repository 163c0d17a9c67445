"""Set-based replay: the read models of an event history built in memory and written to a fresh database in bulk
(one INSERT run over many rows, or COPY; an UPDATE for rows changed after they were written) with one checkpoint,
all in one transaction.

Each event goes through the live projector's own validation (:func:`~gxlib.backend.projector.parse_event`) and
handlers (:data:`~gxlib.backend.readmodel.HANDLERS`), so the result is the live projection's by construction;
only the storage differs: the handlers' ``get``/``add`` land in a :class:`~gxlib.backend.rowstore.RowStore` with no
database to read (a fresh target has no rows). Memory holds the read models' rows — what the database would hold —
and which of them were made or looked up since the last write, so a replay can write while it still reads
(:meth:`SetProjection.write_pending`: new rows inserted, rows written before and changed since updated).

Usage::

    projection = SetProjection()
    projection.add(events)            # as often as events arrive, in ledger order
    checkpoint = projection.write(target_engine)
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import cast

from sqlalchemy import Connection, Engine, Table, insert
from sqlalchemy.orm import Session

from gxchaincode.events import EVENT_TYPES
from gxlib.backend.errors import ProjectionError
from gxlib.backend.eventsource import ChaincodeEvent, Checkpoint
from gxlib.backend.models import ProjectorCheckpoint
from gxlib.backend.projector import DEFAULT_STREAM, ApplyResult, parse_event
from gxlib.backend.readmodel import HANDLERS, ReadModelInconsistency
from gxlib.backend.rowstore import RowStore
from gxlib.backend.sqltypes import utcnow


class _GcPause:
    """Pauses Python's cyclic garbage collector while any holder is inside (re-entrant, thread-safe); restores it
    as it was when the last one leaves. A replay allocates a few objects per event that form no cycles and all
    live until the write; the collector would traverse that growing projection again and again (~40% of the
    in-memory apply, measured). Cycles made meanwhile are collected once it runs again."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holders = 0
        self._was_enabled = False

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        with self._lock:
            if self._holders == 0:
                self._was_enabled = gc.isenabled()
                gc.disable()
            self._holders += 1
        try:
            yield
        finally:
            with self._lock:
                self._holders -= 1
                if self._holders == 0 and self._was_enabled:
                    gc.enable()


gc_paused = _GcPause()

class SetProjection:
    """The read models of the events given to :meth:`add`, kept in memory until :meth:`write`."""

    def __init__(self, *, stream: str = DEFAULT_STREAM) -> None:
        self.stream = stream
        self.last: ChaincodeEvent | None = None
        self._rows = RowStore()
        # The handlers are typed with the Session they get in the live projector; they use only get/add/flush.
        self._session = cast(Session, self._rows)

    def add(self, events: Iterable[ChaincodeEvent]) -> list[ApplyResult]:
        """Apply ``events`` (in ledger order) in memory. Raises :class:`~gxlib.backend.errors.MalformedEventError`
        or :class:`ProjectionError` like the live projector (a replay never skips); the projection is not usable
        afterwards."""
        results: list[ApplyResult] = []
        result = results.append
        session = self._session
        last = self.last
        last_position = None if last is None else last.position
        try:
            for event in events:
                position = (event.block_number, event.tx_index)
                if last_position is not None and position <= last_position:
                    result(ApplyResult.ALREADY_APPLIED)
                    continue
                name = event.event_name
                if name not in EVENT_TYPES:
                    result(ApplyResult.UNKNOWN_TYPE)
                else:
                    payload = parse_event(event)
                    try:
                        HANDLERS[name](session, event, payload)
                    except ReadModelInconsistency as exc:
                        raise ProjectionError(str(exc), event_type=name, block_number=event.block_number,
                                              tx_index=event.tx_index, tx_id=event.tx_id) from exc
                    result(ApplyResult.APPLIED)
                last, last_position = event, position
        finally:
            self.last = last
        return results

    def write(self, target: Engine, *, clock: Callable[[], dt.datetime] = utcnow) -> Checkpoint | None:
        """Write every read-model row and the checkpoint (the last event added) to ``target`` in one transaction:
        one bulk insert per table (COPY on PostgreSQL, one prepared INSERT run over every row elsewhere).
        ``target`` must be migrated and empty."""
        with target.begin() as connection:
            return self.write_rest(connection, clock=clock)

    def pending_rows(self) -> int:
        """Rows made or changed and not written yet."""
        return self._rows.pending()

    def write_pending(self, connection: Connection) -> int:
        """Write in ``connection``'s transaction the rows made or changed since the last write: new rows inserted,
        rows written before and changed since updated; how many. Lets a replay write while it still reads (the
        caller commits, after :meth:`write_rest`)."""
        return self._rows.write_pending(connection)

    def write_rest(self, connection: Connection, *, clock: Callable[[], dt.datetime] = utcnow) -> Checkpoint | None:
        """Write every row not written yet and the checkpoint in ``connection``'s transaction (the caller
        commits)."""
        self._rows.write_pending(connection)
        if self.last is None:
            return None
        last = self.last
        connection.execute(insert(cast(Table, ProjectorCheckpoint.__table__)),
                           [{"stream": self.stream, "block_number": last.block_number, "tx_index": last.tx_index,
                             "tx_id": last.tx_id, "updated_at": clock()}])
        return Checkpoint(last.block_number, last.tx_index, last.tx_id)
