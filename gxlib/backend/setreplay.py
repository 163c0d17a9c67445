"""Set-based replay: the read models of an event history built in memory, then written to a fresh database with
one bulk INSERT per table and one checkpoint, all in one transaction.

Each event goes through the live projector's own validation (:func:`~gxlib.backend.projector.parse_event`) and
handlers (:data:`~gxlib.backend.readmodel.HANDLERS`), so the result is the live projection's by construction;
only the storage differs: the handlers' ``get``/``add`` land in dictionaries instead of a database session (a
fresh target has no rows to read), and nothing is written until the whole history has been applied. Memory
holds the read models' rows — what the database would hold.

Usage::

    projection = SetProjection()
    projection.add(events)            # as often as events arrive, in ledger order
    checkpoint = projection.write(target_engine)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any, cast

from sqlalchemy import Engine, Table, insert, inspect
from sqlalchemy.orm import Session

from gxchaincode.events import EVENT_TYPES
from gxlib.backend.errors import ProjectionError
from gxlib.backend.eventsource import ChaincodeEvent, Checkpoint
from gxlib.backend.models import READ_MODEL_TABLES, Base, ProjectorCheckpoint
from gxlib.backend.projector import DEFAULT_STREAM, ApplyResult, parse_event
from gxlib.backend.readmodel import HANDLERS, ReadModelInconsistency
from gxlib.backend.sqltypes import utcnow


class _MemoryRows:
    """What the read-model handlers use of a Session (``get``, ``add``, ``flush``), over dictionaries. Rows with a
    natural key are found by ``get``; rows keyed by an autoincrement ID (mints, transfers) are kept in order."""

    def __init__(self) -> None:
        self.keyed: dict[type[Base], dict[tuple[Any, ...], Base]] = {}
        self.appended: dict[type[Base], list[Base]] = {}
        self._keys: dict[type[Base], list[str]] = {}

    def _key_names(self, model: type[Base]) -> list[str]:
        if model not in self._keys:
            self._keys[model] = [str(column.key) for column in inspect(model).primary_key]
        return self._keys[model]

    def get(self, model: type[Base], key: Any) -> Base | None:
        return self.keyed.get(model, {}).get(key if isinstance(key, tuple) else (key,))

    def add(self, row: Base) -> None:
        model = type(row)
        key = tuple(getattr(row, name) for name in self._key_names(model))
        if any(part is None for part in key):
            self.appended.setdefault(model, []).append(row)
            return
        rows = self.keyed.setdefault(model, {})
        if rows.get(key, row) is not row:
            raise ReadModelInconsistency(f"{model.__tablename__} {key} would be written twice")
        rows[key] = row

    def flush(self) -> None:
        """Nothing to flush: rows are written once, by :meth:`SetProjection.write`."""

    def rows(self, model: type[Base]) -> list[Base]:
        return [*self.keyed.get(model, {}).values(), *self.appended.get(model, [])]


class SetProjection:
    """The read models of the events given to :meth:`add`, kept in memory until :meth:`write`."""

    def __init__(self, *, stream: str = DEFAULT_STREAM) -> None:
        self.stream = stream
        self.last: ChaincodeEvent | None = None
        self._rows = _MemoryRows()
        # The handlers are typed with the Session they get in the live projector; they use only get/add/flush.
        self._session = cast(Session, self._rows)

    def add(self, events: Iterable[ChaincodeEvent]) -> list[ApplyResult]:
        """Apply ``events`` (in ledger order) in memory. Raises :class:`~gxlib.backend.errors.MalformedEventError`
        or :class:`ProjectionError` like the live projector (a replay never skips); the projection is not usable
        afterwards."""
        results: list[ApplyResult] = []
        for event in events:
            if self.last is not None and event.position <= self.last.position:
                results.append(ApplyResult.ALREADY_APPLIED)
                continue
            if event.event_name not in EVENT_TYPES:
                results.append(ApplyResult.UNKNOWN_TYPE)
            else:
                payload = parse_event(event)
                try:
                    HANDLERS[event.event_name](self._session, event, payload)
                except ReadModelInconsistency as exc:
                    raise ProjectionError(str(exc), event_type=event.event_name, block_number=event.block_number,
                                          tx_index=event.tx_index, tx_id=event.tx_id) from exc
                results.append(ApplyResult.APPLIED)
            self.last = event
        return results

    def write(self, target: Engine, *, clock: Callable[[], dt.datetime] = utcnow) -> Checkpoint | None:
        """Write every read-model row and the checkpoint (the last event added) to ``target`` in one transaction:
        one multi-row INSERT per table. ``target`` must be migrated and empty."""
        with target.begin() as connection:
            for model in READ_MODEL_TABLES:
                if model is ProjectorCheckpoint:
                    continue
                rows = [_values(row) for row in self._rows.rows(model)]
                if rows:
                    connection.execute(insert(cast(Table, model.__table__)), rows)
            if self.last is None:
                return None
            last = self.last
            connection.execute(insert(cast(Table, ProjectorCheckpoint.__table__)),
                               [{"stream": self.stream, "block_number": last.block_number, "tx_index": last.tx_index,
                                 "tx_id": last.tx_id, "updated_at": clock()}])
        return Checkpoint(last.block_number, last.tx_index, last.tx_id)


def _values(row: Base) -> dict[str, Any]:
    """The row's column values; an autoincrement ID not set yet is left to the database."""
    values = {column.key: getattr(row, column.key) for column in inspect(type(row)).columns}
    if values.get("id", 0) is None:
        del values["id"]
    return values
