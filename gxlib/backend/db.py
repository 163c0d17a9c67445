"""The database: engine (SQLite by default, PostgreSQL in production), sessions, migrations, pool figures."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.exc import ArgumentError, InvalidatePoolError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import QueuePool

from gxlib.backend.dburl import redacted_database_url
from gxlib.backend.errors import DatabaseMigrationError, DatabaseUrlError
from gxlib.files import PRIVATE_FILE_MODE, create_with_mode

DATABASE_FILE_MODE = PRIVATE_FILE_MODE

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


# libpq's connect_timeout for PostgreSQL: a database host that drops packets fails a connection in seconds (the API
# answers 503 and the workers retry) instead of hanging each request for the kernel's TCP timeout (minutes).
DEFAULT_CONNECT_TIMEOUT_S = 5
# A pooled PostgreSQL connection idle longer than this is pinged before it is handed out, so one the server dropped
# meanwhile (a restart, an idle timeout) is replaced instead of failing the caller's statement. One used more
# recently is not: it was alive a moment ago, and a ping per checkout cost every transaction a round trip (~0.1 ms
# of CPU and ~0.25 ms of latency, measured on the outbox's enqueue). HikariCP's aliveBypassWindowMs, 500 ms.
PING_WHEN_IDLE_S = 0.5


def make_engine(url: str, *, pool_size: int = 10, max_overflow: int = 5, echo: bool = False,
                connect_timeout_s: int = DEFAULT_CONNECT_TIMEOUT_S) -> Engine:
    """An engine for ``url``. SQLite gets WAL, a busy timeout, foreign keys and ``BEGIN IMMEDIATE``
    transactions, so that concurrent writers (API, submitter, projector processes) queue instead of failing
    with a lock upgrade error. PostgreSQL gets ``connect_timeout`` unless the URL sets its own."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        # Name the URL the operator gave (redacted); SQLAlchemy 1.x quoted it whole, password included.
        reason = "SQLAlchemy cannot parse it" if isinstance(exc, ArgumentError) else str(exc)
        raise DatabaseUrlError(redacted_database_url(url), reason) from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            # The database holds every command and read model: owner-only from its first byte (SQLite gives
            # its -wal and -shm files the database file's mode).
            create_with_mode(Path(parsed.database), DATABASE_FILE_MODE)
        engine = create_engine(url, echo=echo, poolclass=QueuePool, pool_size=pool_size, max_overflow=max_overflow,
                               connect_args={"check_same_thread": False, "timeout": 30})
        _configure_sqlite(engine)
        return engine
    connect_args = {} if "connect_timeout" in parsed.query else {"connect_timeout": connect_timeout_s}
    # LIFO: the connection just returned is handed out next, so a busy service keeps reusing the ones within the
    # ping window and the others sit idle (pinged when next needed).
    engine = create_engine(url, echo=echo, pool_size=pool_size, max_overflow=max_overflow, pool_use_lifo=True,
                           connect_args=connect_args)
    ping_when_idle(engine, PING_WHEN_IDLE_S)
    return engine


_LAST_USED = "gx.last_used"


def ping_when_idle(engine: Engine, idle_s: float) -> None:
    """Ping a pooled connection at checkout when it has been idle (checked in) for more than ``idle_s``: a dead one
    invalidates the pool (every connection made before it; the server was restarted or dropped them) and the pool
    hands out a new connection, so the caller never sees it. SQLAlchemy's ``pool_pre_ping``, minus the pings of
    connections in constant use. A connection new from the server is not pinged."""
    dialect = engine.dialect

    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_connection: Any, record: Any) -> None:
        record.info[_LAST_USED] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _handed_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        last_used = record.info.get(_LAST_USED)
        if last_used is None or time.monotonic() - last_used <= idle_s:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as exc:  # the driver's error of a dead connection, whatever the driver
            raise InvalidatePoolError(f"a pooled connection idle for {time.monotonic() - last_used:.1f}s is gone: "
                                      f"{exc}") from exc


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's implicit BEGIN is DEFERRED).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def use_rollback_journal(connection: Connection) -> bool:
    """Before one transaction loads a database no other connection has open (a replay's fresh target): on SQLite,
    a rollback journal instead of the WAL for ``connection``'s file, until :func:`use_wal_journal`. A WAL takes every
    new page once and copies it again into the database at the checkpoint; a rollback journal needs nothing for
    pages the file did not have (a fresh target's commit measured 45–58 ms in WAL, 14–23 ms so, 20k events). The
    switch needs ``connection`` to be the file's only open connection: with others open SQLite keeps the WAL, and
    this returns False (as on any other database). Call it with no transaction open on ``connection``."""
    if connection.dialect.name != "sqlite":
        return False
    driver: Any = connection.connection.driver_connection
    try:
        mode = driver.execute("PRAGMA journal_mode=DELETE").fetchone()[0]
    except sqlite3.OperationalError:  # "database is locked": another connection has the file open
        return False
    return str(mode).lower() == "delete"


def use_wal_journal(connection: Connection) -> None:
    """Back to the WAL after :func:`use_rollback_journal` (no transaction open on ``connection``). If it cannot
    switch now, the next connection :func:`make_engine` opens does."""
    driver: Any = connection.connection.driver_connection
    driver.execute("PRAGMA journal_mode=WAL")


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def _alembic_config(connection: Any) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def migrate(engine: Engine, revision: str = "head") -> str:
    """Bring the schema to ``revision`` (default: the newest); returns the revision now in force."""
    try:
        with engine.begin() as connection:
            command.upgrade(_alembic_config(connection), revision)
        return current_revision(engine) or "base"
    except SQLAlchemyError as exc:
        raise DatabaseMigrationError(engine.url.render_as_string(hide_password=True), str(exc)) from exc


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str:
    head = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()
    assert head is not None
    return head


def is_reachable(engine: Engine) -> bool:
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return True
    except SQLAlchemyError:
        return False


@dataclass(frozen=True)
class PoolFigures:
    in_use: int
    maximum: int


def pool_figures(engine: Engine) -> PoolFigures:
    """Connections checked out of the pool now, and the most it hands out (size + overflow)."""
    pool = engine.pool
    if isinstance(pool, QueuePool):
        return PoolFigures(pool.checkedout(), pool.size() + max(pool._max_overflow, 0))
    return PoolFigures(0, 1)
