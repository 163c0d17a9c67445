"""Pooled PostgreSQL connections are pinged only after they sat idle (gxlib.backend.db.ping_when_idle): one the
server dropped while idle is replaced before anyone uses it; one in constant use costs no ping round trip."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from gxlib.backend.db import PING_WHEN_IDLE_S, make_engine
from gxlib.backend.pgcluster import PostgresCluster

_numbers = itertools.count()


@pytest.fixture
def pooled(postgres_cluster: PostgresCluster) -> Iterator[tuple[Engine, Engine]]:
    """The backend's engine on a new database, and an administrator's engine (no pool) beside it."""
    url = postgres_cluster.create_database(f"gx_pool_ping_{next(_numbers)}")
    engine, admin = make_engine(url), create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    yield engine, admin
    engine.dispose()
    admin.dispose()


def backend_pid(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())


def terminate(admin: Engine, pid: int) -> None:
    with admin.connect() as connection:
        assert connection.exec_driver_sql(f"SELECT pg_terminate_backend({pid})").scalar_one() is True
    time.sleep(0.1)  # the server closes the socket


def counting_pings(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> list[float]:
    pings: list[float] = []
    ping = engine.dialect.do_ping

    def counted(dbapi_connection: Any) -> bool:
        pings.append(time.monotonic())
        return ping(dbapi_connection)

    monkeypatch.setattr(engine.dialect, "do_ping", counted)
    return pings


def test_a_connection_the_server_dropped_while_idle_is_replaced_before_use(
        pooled: tuple[Engine, Engine], monkeypatch: pytest.MonkeyPatch) -> None:
    engine, admin = pooled
    pings = counting_pings(engine, monkeypatch)
    first = backend_pid(engine)
    terminate(admin, first)
    time.sleep(PING_WHEN_IDLE_S + 0.1)
    second = backend_pid(engine)  # no error: the ping found it gone and the pool connected anew
    assert second != first and len(pings) == 1


def test_a_connection_in_constant_use_is_not_pinged_and_is_once_it_sat_idle(
        pooled: tuple[Engine, Engine], monkeypatch: pytest.MonkeyPatch) -> None:
    engine, _admin = pooled
    pings = counting_pings(engine, monkeypatch)
    pids = {backend_pid(engine) for _ in range(50)}
    assert len(pids) == 1 and pings == []  # LIFO: the same connection, every time, unpinged
    time.sleep(PING_WHEN_IDLE_S + 0.1)
    assert backend_pid(engine) in pids and len(pings) == 1


def test_a_connection_dropped_within_the_window_fails_one_statement_and_the_pool_recovers(
        pooled: tuple[Engine, Engine]) -> None:
    # The trade-off, stated: a connection used a moment ago is trusted. If the server dropped it in that moment,
    # the statement fails (as any statement in flight during a restart does), and the next one connects anew.
    engine, admin = pooled
    first = backend_pid(engine)
    terminate(admin, first)
    with pytest.raises(OperationalError), engine.connect() as connection:
        connection.exec_driver_sql("SELECT 1")
    assert backend_pid(engine) != first
