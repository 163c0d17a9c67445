"""Read-model rows in memory, written in bulk: what the read-model handlers (:data:`~gxlib.backend.readmodel.HANDLERS`)
use instead of an ORM Session, in the set-based replay (:mod:`gxlib.backend.setreplay`, a fresh database: nothing to
read) and in the live projector's batches (:meth:`~gxlib.backend.projector.Projector.apply_batch`: the rows a batch
reads loaded from the database first, one query per table).

A handler looks rows up with ``get`` and makes them with ``new_row``; a row is a plain object with an attribute per
column (:func:`record_type`). :meth:`RowStore.write_pending` then writes, in the caller's transaction, the rows made
(one INSERT run over all of a table's rows, COPY on PostgreSQL) and the rows looked up and perhaps changed (one
UPDATE by primary key run over them) since its last call. No ORM unit of work, no identity map, no per-row statement.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cache
from itertools import repeat
from operator import attrgetter
from typing import Any, cast

from sqlalchemy import Connection, Select, Table, bindparam, inspect, select

from gxlib.backend.models import READ_MODEL_TABLES, Base
from gxlib.backend.readmodel import ReadModelInconsistency


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

    def build(self, values: Mapping[Any, Any]) -> Any:
        """A record with ``values`` by column name (other columns None)."""
        record = self.record()
        # setattr over the columns in C (map, consumed by a zero-length deque): most of building a row.
        _consume(map(setattr, repeat(record), self.columns, map(values.get, self.columns)))
        return record


_consume: Callable[[Iterable[Any]], None] = collections.deque(maxlen=0).extend


class RowStore:
    """What the read-model handlers use of a Session (``get``, ``new_row``, ``add``, ``flush``), over dictionaries.
    Rows with a natural key are found by ``get``; rows keyed by an autoincrement ID (mints, transfers) are kept in
    order, their ID left to the database.

    With a ``connection``, rows already in the database are read from it: those named to :meth:`prefetch` with one
    query per table, any other one ``get`` asks for with a query of its own (a key found absent is not asked again).
    Without one (a fresh database), ``get`` knows only the rows made here."""

    def __init__(self, connection: Connection | None = None) -> None:
        self.connection = connection
        self.keyed: dict[type[Base], dict[tuple[Any, ...], Any]] = {}
        self.appended: dict[type[Base], list[Any]] = {}
        # Keyed rows made or looked up since the last write (a handler changes only rows it made or got), and the
        # keys of those already in the database: what the next write inserts or updates.
        self.touched: dict[type[Base], dict[tuple[Any, ...], Any]] = {}
        self.written: dict[type[Base], set[tuple[Any, ...]]] = {}
        self._absent: set[tuple[type[Base], tuple[Any, ...]]] = set()
        self._layouts: dict[type[Base], _Layout] = {}

    def _layout(self, model: type[Base]) -> _Layout:
        layout = self._layouts.get(model)
        if layout is None:
            layout = self._layouts[model] = _Layout(model)
        return layout

    def get(self, model: type[Base], key: Any) -> Any:
        key = key if isinstance(key, tuple) else (key,)
        rows = self.keyed.get(model)
        record = None if rows is None else rows.get(key)
        if record is None:
            if self.connection is None or (model, key) in self._absent:
                return None
            record = self._load_one(model, key)
            if record is None:
                return None
        self.touched[model][key] = record
        return record

    def _load_one(self, model: type[Base], key: tuple[Any, ...]) -> Any:
        assert self.connection is not None
        statement, names = _by_key(model)
        found = self.connection.execute(statement, dict(zip(names, key, strict=True))).mappings().first()
        if found is None:
            self._absent.add((model, key))
            return None
        return self._loaded(model, found)

    def prefetch(self, keys: Mapping[type[Base], set[Any]]) -> None:
        """Read the rows of ``keys`` (model → primary-key values; single-column keys) from the connection, one
        query per table (in chunks of :data:`PREFETCH_CHUNK` keys), and remember which are not there, so ``get``
        answers them without a query each."""
        if self.connection is None:
            return
        for model, wanted in keys.items():
            statement, key_name = _by_keys(model)
            pending = sorted(wanted)
            for start in range(0, len(pending), PREFETCH_CHUNK):
                chunk = pending[start:start + PREFETCH_CHUNK]
                found = {row[key_name]: row for row in
                         self.connection.execute(statement, {"b_keys": chunk}).mappings()}
                for value in chunk:
                    if value in found:
                        self._loaded(model, found[value])
                    else:
                        self._absent.add((model, (value,)))

    def _loaded(self, model: type[Base], values: Mapping[Any, Any]) -> Any:
        """A row read from the database, kept as written."""
        layout = self._layout(model)
        record = layout.build(values)
        key = layout.key_of(record)
        self.keyed.setdefault(model, {})[key] = record
        self.touched.setdefault(model, {})
        self.written.setdefault(model, set()).add(key)
        return record

    def new_row(self, model: type[Base], values: dict[str, Any]) -> Any:
        """A new row of ``model`` with ``values`` (other columns None), stored like :meth:`add`."""
        layout = self._layout(model)
        record = layout.build(values)
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
        self._absent.discard((model, key))
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


PREFETCH_CHUNK = 500


@cache
def _by_key(model: type[Base]) -> tuple[Select[Any], list[str]]:
    """The SELECT of one ``model`` row by its primary key (one bound parameter per key column, named after it),
    built once."""
    table = cast(Table, model.__table__)
    names = [f"b_{column.key}" for column in table.primary_key.columns]
    return (select(table).where(*(column == bindparam(name)
                                  for column, name in zip(table.primary_key.columns, names, strict=True))), names)


@cache
def _by_keys(model: type[Base]) -> tuple[Select[Any], str]:
    """The SELECT of the ``model`` rows whose (single-column) primary key is in the list ``b_keys``, built once;
    and the key column's name in its rows."""
    table = cast(Table, model.__table__)
    column = next(iter(table.primary_key.columns))
    return select(table).where(column.in_(bindparam("b_keys", expanding=True))), str(column.key)


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
