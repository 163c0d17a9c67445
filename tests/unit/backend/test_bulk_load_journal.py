"""A replay loads a fresh SQLite target with a rollback journal instead of the WAL (every new page written once, not
once into the WAL and again at the checkpoint), and leaves it in WAL for the services; where the switch cannot be
made (another connection open, or PostgreSQL) the load goes on as before."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from sqlalchemy import Engine, func, select

from gxlib.backend.db import make_engine, migrate, use_rollback_journal, use_wal_journal
from gxlib.backend.eventsource import ChaincodeEvent, Checkpoint
from gxlib.backend.ledger_replay import replay_batches
from gxlib.backend.models import Account
from gxlib.backend.pgcluster import PostgresCluster
from gxlib.backend.projector import Projector
from gxlib.backend.replay import compare_read_models
from tests.unit.backend.chaincode_events import RecordedHistory


def journal_mode(path: Path) -> str:
    with sqlite3.connect(path) as connection:
        return str(connection.execute("PRAGMA journal_mode").fetchone()[0])


def migrated_sqlite(tmp_path: Path) -> tuple[Engine, Path]:
    path = tmp_path / "target.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    engine.dispose()  # the migration's pooled connection closed
    return engine, path


def test_the_only_connection_loads_with_a_rollback_journal_and_goes_back_to_wal(tmp_path: Path) -> None:
    engine, path = migrated_sqlite(tmp_path)
    with engine.connect() as connection:
        assert use_rollback_journal(connection) is True
        with connection.begin():
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "delete"
            connection.exec_driver_sql("INSERT INTO accounts (account_id, balance, updated_at, last_tx_id) "
                                       "VALUES ('a', '5', '2026-12-08 00:00:00.000000', 'tx')")
            assert not Path(f"{path}-wal").exists()  # the new pages go to the file itself
        use_wal_journal(connection)
    engine.dispose()
    assert journal_mode(path) == "wal"
    with engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(Account)) == 1


def test_with_another_connection_open_the_wal_stays(tmp_path: Path) -> None:
    engine, path = migrated_sqlite(tmp_path)
    with sqlite3.connect(path) as other:
        other.execute("SELECT count(*) FROM accounts").fetchone()
        with engine.connect() as connection:
            assert use_rollback_journal(connection) is False
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    engine.dispose()


def test_postgresql_is_left_as_it_is(postgres_cluster: PostgresCluster) -> None:
    engine = make_engine(postgres_cluster.create_database("gx_test_journal"))
    try:
        with engine.connect() as connection:
            assert use_rollback_journal(connection) is False
    finally:
        engine.dispose()


async def delivered(events: list[ChaincodeEvent]) -> AsyncIterator[list[ChaincodeEvent]]:
    for event in events:
        yield [event]
        await asyncio.sleep(0)


def test_a_replay_into_a_fresh_sqlite_file_ends_in_wal_and_equal(tmp_path: Path, new_engine: Callable[[], Engine],
                                                                 recorded_history: RecordedHistory) -> None:
    events = recorded_history.events
    live = new_engine()
    for event in events:
        Projector(live).apply(event)
    target, path = migrated_sqlite(tmp_path)
    until = Checkpoint(events[-1].block_number, events[-1].tx_index, events[-1].tx_id)
    asyncio.run(replay_batches(delivered(events), until, target, stream_rows=3))
    target.dispose()
    assert journal_mode(path) == "wal"
    assert compare_read_models(live, target) == []
