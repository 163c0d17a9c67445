"""Migrations and models agree; uint64 amounts and UTC timestamps survive both databases."""

from __future__ import annotations

import datetime as dt
import socket
import threading

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from gxlib.backend.db import current_revision, head_revision, make_engine, migrate
from gxlib.backend.models import Account, Base


def test_the_migrations_create_exactly_the_models(engine: Engine) -> None:
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}), Base.metadata)
    assert diff == []
    assert current_revision(engine) == head_revision()


def test_the_spec_tables_exist(engine: Engine) -> None:
    tables = set(inspect(engine).get_table_names())
    assert {"outbox_commands", "outbox_dlq", "user_profiles", "accounts", "pools", "countries", "mint_events",
            "transfers", "proposals", "projector_checkpoint"} <= tables
    columns = {c["name"] for c in inspect(engine).get_columns("outbox_commands")}
    assert {"id", "command_type", "payload", "idempotency_key", "status", "attempts", "next_attempt_at",
            "lease_owner", "lease_expires_at", "fabric_tx_id", "block_number", "error_code", "error_message",
            "created_at", "first_submitted_at", "committed_at"} <= columns


def test_migrating_twice_is_a_no_op(database_url: str) -> None:
    eng = make_engine(database_url)
    try:
        assert migrate(eng) == head_revision()
        assert migrate(eng) == head_revision()
    finally:
        eng.dispose()


@pytest.mark.parametrize("amount", [0, 1, 2**63 - 1, 2**63, 2**64 - 1])
def test_uint64_amounts_round_trip_exactly_and_sort_numerically(engine: Engine, amount: int) -> None:
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    with Session(engine) as s, s.begin():
        s.add(Account(account_id="x", balance=amount, updated_at=now, last_tx_id="t"))
        s.add(Account(account_id="y", balance=9, updated_at=now, last_tx_id="t"))
    with Session(engine) as s:
        account = s.get(Account, "x")
        assert account is not None and account.balance == amount and account.updated_at == now
        ordered = list(s.scalars(select(Account.account_id).order_by(Account.balance)))
    assert ordered == (["x", "y"] if amount < 9 else ["y", "x"])


def test_out_of_range_amounts_are_refused(engine: Engine) -> None:
    with Session(engine) as s:
        s.add(Account(account_id="x", balance=2**64, updated_at=dt.datetime.now(dt.UTC), last_tx_id="t"))
        with pytest.raises(Exception, match="uint64"):
            s.flush()


def test_a_database_host_that_never_answers_fails_the_connection_instead_of_hanging() -> None:
    # A listener that completes the TCP handshake (the kernel does) and then says nothing, like a stuck or
    # packet-dropping database host: without libpq's connect_timeout a connection would wait for minutes.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        engine = make_engine(f"postgresql+psycopg://gx:secret@127.0.0.1:{port}/gx", connect_timeout_s=1)
        outcome: list[BaseException | None] = []

        def connect() -> None:
            try:
                with engine.connect():
                    outcome.append(None)
            except BaseException as exc:  # recorded for the assertion below
                outcome.append(exc)

        worker = threading.Thread(target=connect, daemon=True)
        worker.start()
        worker.join(timeout=60)
        engine.dispose()
    assert not worker.is_alive(), "the connection still hangs on a database host that never answers"
    assert len(outcome) == 1 and isinstance(outcome[0], OperationalError)
    assert "timeout" in str(outcome[0]).lower()
