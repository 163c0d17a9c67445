"""The submitter claims a command as soon as PostgreSQL says it was enqueued (LISTEN/NOTIFY), not at its next poll;
a listener whose connection dies reconnects; SQLite keeps the poll. Runs on the session's real PostgreSQL cluster."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from gxlib.backend.arrivals import CHANNEL, PostgresArrivals, command_arrivals
from gxlib.backend.db import make_engine, migrate
from gxlib.backend.models import CommandStatus
from gxlib.backend.outbox import Outbox
from gxlib.backend.pgcluster import PostgresCluster
from gxlib.backend.settings import SubmitterSettings
from gxlib.backend.submitter import Submitter
from tests.unit.backend.fakefabric import FakeFabric
from tests.unit.backend.helpers import FakeArrivals, mint_payload

# A poll far longer than any wait below: a command claimed within WAKE_S was claimed because of its notification.
SLOW_POLL = SubmitterSettings(poll_interval_s=60.0, commit_timeout_s=1, status_timeout_s=1)
WAKE_S = 10.0
_numbers = itertools.count(1)


@pytest.fixture
def pg_engine(postgres_cluster: PostgresCluster) -> Iterator[Engine]:
    engine = make_engine(postgres_cluster.create_database(f"gx_arrivals_{next(_numbers)}"))
    migrate(engine)
    yield engine
    engine.dispose()


async def _status_within(outbox: Outbox, command_id: str, seconds: float) -> CommandStatus:
    deadline = time.monotonic() + seconds
    while True:
        status = CommandStatus((await asyncio.to_thread(outbox.get, command_id)).status)
        if status is CommandStatus.COMMITTED or time.monotonic() > deadline:
            return status
        await asyncio.sleep(0.05)


async def _enqueue(outbox: Outbox, key: str) -> str:
    result = await asyncio.to_thread(outbox.enqueue, "MINT", mint_payload(1), key)
    return result.command.id


def test_an_enqueued_command_is_claimed_at_once_instead_of_at_the_next_poll(pg_engine: Engine) -> None:
    outbox = Outbox(pg_engine)

    async def scenario(arrivals: PostgresArrivals | None) -> tuple[CommandStatus, CommandStatus]:
        fabric = FakeFabric()
        stop = asyncio.Event()
        submitter = Submitter(outbox, fabric, SLOW_POLL, worker_id="w1", arrivals=arrivals)
        running = asyncio.create_task(submitter.run(stop))
        if arrivals is not None:
            await asyncio.wait_for(arrivals.listening.wait(), WAKE_S)
        await asyncio.sleep(0.3)  # the submitter's first claim found nothing; it now waits for its 60 s poll
        first = await _enqueue(outbox, f"first-{arrivals is not None}")
        first_status = await _status_within(outbox, first, WAKE_S if arrivals else 2.0)
        second = await _enqueue(outbox, f"second-{arrivals is not None}")  # a second wake, after a claim
        second_status = await _status_within(outbox, second, WAKE_S if arrivals else 0.5)
        stop.set()
        await asyncio.wait_for(running, 30)
        return first_status, second_status

    assert asyncio.run(scenario(PostgresArrivals(pg_engine))) == (CommandStatus.COMMITTED, CommandStatus.COMMITTED)
    # Without the listener both wait for the poll (the comparison that shows the wake is the notification's).
    assert asyncio.run(scenario(None)) == (CommandStatus.PENDING, CommandStatus.PENDING)


def test_a_listener_whose_connection_is_killed_reconnects_and_catches_up(pg_engine: Engine,
                                                                         caplog: pytest.LogCaptureFixture) -> None:
    outbox = Outbox(pg_engine)
    arrivals = PostgresArrivals(pg_engine, retry_s=0.1, max_retry_s=0.2)

    async def scenario() -> CommandStatus:
        stop = asyncio.Event()
        running = asyncio.create_task(Submitter(outbox, FakeFabric(), SLOW_POLL, arrivals=arrivals).run(stop))
        await asyncio.wait_for(arrivals.listening.wait(), WAKE_S)
        await asyncio.sleep(0.3)
        with pg_engine.begin() as conn:
            killed = conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                       "WHERE query = :listen"), {"listen": f"LISTEN {CHANNEL}"}).scalars().all()
        assert killed == [True]
        # Enqueued while nobody listens: the reconnected listener's first arrived() claims it.
        command = await _enqueue(outbox, "while-down")
        status = await _status_within(outbox, command, WAKE_S)
        stop.set()
        await asyncio.wait_for(running, 30)
        return status

    with caplog.at_level(logging.WARNING, logger="gxlib.backend.arrivals"):
        assert asyncio.run(scenario()) == CommandStatus.COMMITTED
    assert any("not listening for enqueued commands" in r.getMessage() for r in caplog.records)


def test_the_trigger_notifies_on_postgresql_only(pg_engine: Engine, tmp_path: Path) -> None:
    with pg_engine.connect() as conn:
        triggers = list(conn.execute(text("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")).scalars())
    assert triggers == ["outbox_commands_notify"]
    assert isinstance(command_arrivals(pg_engine), PostgresArrivals)
    sqlite = make_engine(f"sqlite:///{tmp_path / 'b.sqlite3'}")
    try:
        migrate(sqlite)
        with sqlite.connect() as conn:
            assert conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'trigger'")).all() == []
        assert command_arrivals(sqlite) is None  # polled, as before
    finally:
        sqlite.dispose()


def test_a_burst_of_arrivals_costs_one_claim_and_finished_commands_cost_none(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'b.sqlite3'}")
    migrate(engine)
    outbox = Outbox(engine)
    claims: list[int] = []
    claim = outbox.claim

    def counting_claim(*args: Any, **kwargs: Any) -> Any:
        found = claim(*args, **kwargs)
        claims.append(len(found))
        return found

    outbox.claim = counting_claim  # type: ignore[method-assign]
    arrivals = FakeArrivals()
    settings = SLOW_POLL.model_copy(update={"arrival_coalesce_s": 0.5})

    async def scenario() -> tuple[list[int], list[CommandStatus], float]:
        stop = asyncio.Event()
        running = asyncio.create_task(Submitter(outbox, FakeFabric(), settings, arrivals=arrivals).run(stop))
        await asyncio.wait_for(arrivals.listening.wait(), WAKE_S)
        await asyncio.sleep(0.6)  # quiet: the first claim is over half a second ago
        assert arrivals.arrived is not None
        ids = [await _enqueue(outbox, "quiet")]
        arrivals.arrived()  # quiet: claimed at once
        await asyncio.sleep(0.1)
        started = time.monotonic()
        for n in range(10):  # a burst right after that claim: one claim, at the end of the window
            ids.append(await _enqueue(outbox, f"burst-{n}"))
            arrivals.arrived()
        statuses = [await _status_within(outbox, i, WAKE_S) for i in ids]
        waited = time.monotonic() - started
        stop.set()
        await asyncio.wait_for(running, 30)
        return list(claims), statuses, waited

    try:
        seen, statuses, waited = asyncio.run(scenario())
    finally:
        engine.dispose()
    assert statuses == [CommandStatus.COMMITTED] * 11
    # The start's claim, the quiet arrival alone, then the burst together; no claim for a finished command while
    # slots were free and arrivals announced (it would find nothing the arrivals do not announce).
    assert seen == [0, 1, 10]
    assert waited < WAKE_S / 2  # not the 60 s poll: the window's deadline claimed the burst
