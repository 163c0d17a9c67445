"""Set-based replay: the read models of an event history built in memory and written to a fresh database in bulk
(one INSERT run over many rows, or COPY; an UPDATE for rows changed after they were written) with one checkpoint,
all in one transaction.

Each event goes through the live projector's own validation (:func:`~gxlib.backend.projector.parse_event`) and
handlers (:data:`~gxlib.backend.readmodel.HANDLERS`), so the result is the live projection's by construction;
only the storage differs: the handlers' ``get``/``add`` land in dictionaries instead of a database session (a
fresh target has no rows to read). Memory holds the read models' rows — what the database would hold — and which
of them were made or looked up since the last write, so a replay can write while it still reads
(:meth:`SetProjection.write_pending`: new rows inserted, rows written before and changed since updated).

Usage::

    projection = SetProjection()
    projection.add(events)            # as often as events arrive, in ledger order
    checkpoint = projection.write(target_engine)
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import gc
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import repeat
from operator import attrgetter
from typing import Any, cast

from sqlalchemy import Connection, Engine, Table, insert, inspect
from sqlalchemy.orm import Session

from gxchaincode.events import EVENT_TYPES
from gxlib.backend.errors import ProjectionError
from gxlib.backend.eventsource import ChaincodeEvent, Checkpoint
from gxlib.backend.models import READ_MODEL_TABLES, Base, ProjectorCheckpoint
from gxlib.backend.projector import DEFAULT_STREAM, ApplyResult, parse_event
from gxlib.backend.readmodel import HANDLERS, ReadModelInconsistency
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


class _Record:
    """A read-model row in memory: the model's columns as plain attributes (``__slots__`` per model, no ORM
    instrumentation). What the handlers build through ``new_row`` and find through ``get``."""

    __slots__ = ()
    columns: tuple[str, ...] = ()


_RECORD_TYPES: dict[type[Base], type[_Record]] = {}


def record_type(model: type[Base]) -> type[_Record]:
    """The :class:`_Record` subclass of ``model`` (one per model, made once)."""
    found = _RECORD_TYPES.get(model)
    if found is None:
        columns = tuple(str(column.key) for column in inspect(model).columns)
        found = type(f"{model.__name__}Record", (_Record,), {"__slots__": columns, "columns": columns})
        _RECORD_TYPES[model] = found
    return found


class _Layout:
    """How rows of one model are built and keyed in memory."""

    def __init__(self, model: type[Base]) -> None:
        self.record = record_type(model)
        self.columns = self.record.columns
        key_names = [str(column.key) for column in inspect(model).primary_key]
        single = attrgetter(key_names[0])
        self.key_of: Callable[[Any], tuple[Any, ...]] = (
            attrgetter(*key_names) if len(key_names) > 1 else lambda record: (single(record),))


_consume: Callable[[Iterable[Any]], None] = collections.deque(maxlen=0).extend


class _MemoryRows:
    """What the read-model handlers use of a Session (``get``, ``new_row``, ``add``, ``flush``), over dictionaries.
    Rows with a natural key are found by ``get``; rows keyed by an autoincrement ID (mints, transfers) are kept in
    order, their ID left to the database."""

    def __init__(self) -> None:
        self.keyed: dict[type[Base], dict[tuple[Any, ...], Any]] = {}
        self.appended: dict[type[Base], list[Any]] = {}
        # Keyed rows made or looked up since the last write (a handler changes only rows it made or got), and the
        # keys of those already in the database: what the next write inserts or updates.
        self.touched: dict[type[Base], dict[tuple[Any, ...], Any]] = {}
        self.written: dict[type[Base], set[tuple[Any, ...]]] = {}
        self._layouts: dict[type[Base], _Layout] = {}

    def _layout(self, model: type[Base]) -> _Layout:
        layout = self._layouts.get(model)
        if layout is None:
            layout = self._layouts[model] = _Layout(model)
        return layout

    def get(self, model: type[Base], key: Any) -> Any:
        rows = self.keyed.get(model)
        if rows is None:
            return None
        key = key if isinstance(key, tuple) else (key,)
        record = rows.get(key)
        if record is not None:
            self.touched[model][key] = record
        return record

    def new_row(self, model: type[Base], values: dict[str, Any]) -> Any:
        """A new row of ``model`` with ``values`` (other columns None), stored like :meth:`add`."""
        layout = self._layout(model)
        record = layout.record()
        # setattr over the columns in C (map, consumed by a zero-length deque): most of building a row.
        _consume(map(setattr, repeat(record), layout.columns, map(values.get, layout.columns)))
        self._store(model, layout, record)
        return record

    def add(self, row: Base) -> None:
        """Store an ORM row as built elsewhere (kept as a record of its column values)."""
        model = type(row)
        state = inspect(row).dict
        self.new_row(model, {name: state.get(name) for name in self._layout(model).columns})

    def _store(self, model: type[Base], layout: _Layout, record: Any) -> None:
        key = layout.key_of(record)
        if None in key:
            self.appended.setdefault(model, []).append(record)
            return
        rows = self.keyed.setdefault(model, {})
        if key in rows:
            raise ReadModelInconsistency(f"{model.__tablename__} {key} would be written twice")
        rows[key] = record
        self.touched.setdefault(model, {})[key] = record

    def flush(self) -> None:
        """Nothing to flush: rows are written in bulk, by :meth:`write_pending`."""

    def pending(self) -> int:
        """Rows made or looked up since the last :meth:`write_pending`."""
        return (sum(len(rows) for rows in self.appended.values())
                + sum(len(rows) for rows in self.touched.values()))

    def write_pending(self, connection: Connection) -> int:
        """Insert the rows made and update the keyed rows looked up since the last call, in ``connection``'s
        transaction (tables in :data:`READ_MODEL_TABLES` order); how many rows."""
        written = 0
        for model in READ_MODEL_TABLES:
            table = cast(Table, model.__table__)
            appended = self.appended.pop(model, None)
            if appended:
                bulk_insert(connection, table, appended)
                written += len(appended)
            touched = self.touched.get(model)
            if touched:
                known = self.written.setdefault(model, set())
                new = [record for key, record in touched.items() if key not in known]
                changed = [record for key, record in touched.items() if key in known]
                if new:
                    bulk_insert(connection, table, new)
                if changed:
                    bulk_update(connection, table, changed)
                known.update(touched)
                written += len(touched)
                touched.clear()
        return written


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


def bulk_insert(connection: Connection, table: Table, rows: Sequence[Any]) -> None:
    """Insert ``rows`` (objects with an attribute per column) into ``table``, every column but an autoincrement
    ID (left to the database), each value through its column type's bind processing as SQLAlchemy would do.
    On PostgreSQL (psycopg) with COPY; elsewhere with the driver's ``executemany`` of one INSERT — either way no
    per-row statement building."""
    dialect = connection.dialect
    columns = [column for column in table.columns if column is not table.autoincrement_column]
    values = _bound_values(dialect, columns, rows)
    quote = dialect.identifier_preparer.quote
    column_list = ", ".join(quote(column.name) for column in columns)
    if dialect.name == "postgresql" and dialect.driver == "psycopg":
        driver: Any = connection.connection.driver_connection  # psycopg's own Connection, in this transaction
        with driver.cursor() as cursor, cursor.copy(f"COPY {quote(table.name)} ({column_list}) FROM STDIN") as copy:
            for value in values:
                copy.write_row(value)
        return
    markers, parameters = _driver_markers(dialect, len(columns), values)
    connection.exec_driver_sql(f"INSERT INTO {quote(table.name)} ({column_list}) VALUES ({', '.join(markers)})",
                               parameters)


def bulk_update(connection: Connection, table: Table, rows: Sequence[Any]) -> None:
    """Update ``rows`` (objects with an attribute per column, each already in ``table``) by primary key: every
    other column set to the row's value, through its column type's bind processing as in :func:`bulk_insert`; one
    UPDATE run by the driver's ``executemany``."""
    dialect = connection.dialect
    keys = list(table.primary_key.columns)
    key_names = {column.name for column in keys}
    others = [column for column in table.columns if column.name not in key_names]
    values = _bound_values(dialect, [*others, *keys], rows)
    quote = dialect.identifier_preparer.quote
    markers, parameters = _driver_markers(dialect, len(others) + len(keys), values)
    assignments = ", ".join(f"{quote(column.name)} = {marker}" for column, marker in zip(others, markers[:len(others)],
                                                                                      strict=True))
    condition = " AND ".join(f"{quote(column.name)} = {marker}"
                             for column, marker in zip(keys, markers[len(others):], strict=True))
    connection.exec_driver_sql(f"UPDATE {quote(table.name)} SET {assignments} WHERE {condition}", parameters)


def _bound_values(dialect: Any, columns: Sequence[Any], rows: Sequence[Any]) -> list[tuple[Any, ...]]:
    """Each row's values of ``columns`` (by attribute name) as a tuple, through the columns' bind processing."""
    names = [str(column.key) for column in columns]
    processors = [column.type.dialect_impl(dialect).bind_processor(dialect) for column in columns]
    converters = [(position, process) for position, process in enumerate(processors) if process]
    get = attrgetter(*names)
    values: list[tuple[Any, ...]] = ([get(row) for row in rows] if len(names) > 1 else
                                     [(get(row),) for row in rows])
    if converters and values:
        by_column = list(zip(*values, strict=True))  # converted a column at a time
        for position, process in converters:
            by_column[position] = _converted(process, by_column[position])
        values = list(zip(*by_column, strict=True))
    return values


def _driver_markers(dialect: Any, count: int, values: list[tuple[Any, ...]]) -> tuple[list[str], Sequence[Any]]:
    """``count`` parameter markers in the driver's own style, and ``values`` as its ``executemany`` takes them."""
    style = dialect.paramstyle
    if style == "named":
        return [f":p{n}" for n in range(count)], [{f"p{n}": value for n, value in enumerate(row)} for row in values]
    # pyformat drivers (psycopg, psycopg2, PyMySQL) take positional %s as well.
    marker = {"qmark": "?", "format": "%s", "pyformat": "%s", "numeric": ":{}", "numeric_dollar": "${}"}[style]
    return [marker.format(n + 1) for n in range(count)], values


class _Memo(dict[Any, Any]):
    """Results of a column type's bind processing (a pure function of the value) by value, computed on a miss."""

    def __init__(self, process: Callable[[Any], Any]) -> None:
        super().__init__()
        self.process = process

    def __missing__(self, value: Any) -> Any:
        self[value] = result = self.process(value)
        return result


def _converted(process: Callable[[Any], Any], column: Sequence[Any]) -> tuple[Any, ...]:
    """``column``'s values through ``process``, each distinct value processed once: a history repeats most values
    (the second of many transactions' timestamps, equal amounts). Values are told apart by type as well when the
    column mixes types (True == 1 == 1.0, but a uint64 column refuses True and 1.0), and unhashable ones are
    processed one by one."""
    if len(set(map(type, column)) - {type(None)}) <= 1:
        try:
            return tuple(map(_Memo(process).__getitem__, column))
        except TypeError:  # an unhashable value
            pass
    memo: dict[Any, Any] = {}

    def convert(value: Any) -> Any:
        key = (type(value), value)
        try:
            return memo[key]
        except KeyError:
            memo[key] = result = process(value)
            return result
        except TypeError:  # unhashable
            return process(value)

    return tuple(map(convert, column))
