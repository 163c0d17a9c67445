"""The ledger replay's apply-and-write half (:func:`replay_batches`): events applied as batches arrive, rows made
or changed written while delivery goes on, everything committed in one transaction — or nothing, when the
delivery or an event fails after rows were already streamed. On SQLite and PostgreSQL, with events recorded from
the real chaincode."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence

import pytest
from sqlalchemy import Engine, func, select

from gxlib.backend.errors import MalformedEventError
from gxlib.backend.eventsource import ChaincodeEvent, Checkpoint
from gxlib.backend.ledger_replay import replay_batches
from gxlib.backend.models import READ_MODEL_TABLES, MintEvent
from gxlib.backend.projector import Projector
from gxlib.backend.replay import compare_read_models
from tests.unit.backend.chaincode_events import RecordedHistory, altered


class DeliveryBroke(RuntimeError):
    pass


async def delivered(events: Sequence[ChaincodeEvent], *, per_batch: int = 2,
                    fail_after: int | None = None) -> AsyncIterator[list[ChaincodeEvent]]:
    for start in range(0, len(events), per_batch):
        if fail_after is not None and start >= fail_after:
            raise DeliveryBroke("the peer went away")
        yield list(events[start:start + per_batch])
        await asyncio.sleep(0)  # let the applying side run between deliveries, as a real stream does


def last_of(events: Sequence[ChaincodeEvent]) -> Checkpoint:
    return Checkpoint(events[-1].block_number, events[-1].tx_index, events[-1].tx_id)


def rows_in(engine: Engine) -> int:
    with engine.connect() as connection:
        return sum(connection.scalar(select(func.count()).select_from(model)) or 0 for model in READ_MODEL_TABLES)


def test_rows_streamed_during_delivery_end_equal_to_the_live_projection(new_engine: Callable[[], Engine],
                                                                         recorded_history: RecordedHistory) -> None:
    events = recorded_history.events
    live, target = new_engine(), new_engine()
    for event in events:
        Projector(live).apply(event)
    counts = asyncio.run(replay_batches(delivered(events), last_of(events), target, stream_rows=1))
    assert counts == {"events": len(events), "applied": len(events), "unknown": 0}
    assert compare_read_models(live, target) == []
    assert Projector(target).checkpoint() == Projector(live).checkpoint()


def test_events_after_the_checkpoint_given_are_not_replayed(new_engine: Callable[[], Engine],
                                                            recorded_history: RecordedHistory) -> None:
    events = recorded_history.events
    live, target = new_engine(), new_engine()
    for event in events[:5]:
        Projector(live).apply(event)
    counts = asyncio.run(replay_batches(delivered(events), last_of(events[:5]), target, stream_rows=1))
    assert counts["events"] == 5
    assert compare_read_models(live, target) == []


def test_a_delivery_failure_after_rows_were_streamed_leaves_the_target_empty(
        engine: Engine, recorded_history: RecordedHistory) -> None:
    events = recorded_history.events
    assert any(e.event_name == "SystemBootstrapped" for e in events[:2])  # mints in the first batch: streamed
    with pytest.raises(DeliveryBroke):
        asyncio.run(replay_batches(delivered(events, fail_after=6), last_of(events), engine, stream_rows=1))
    assert rows_in(engine) == 0
    assert Projector(engine).checkpoint() is None


def test_a_malformed_event_after_rows_were_streamed_leaves_the_target_empty(
        engine: Engine, recorded_history: RecordedHistory) -> None:
    events = list(recorded_history.events)
    mint = events[7]
    assert mint.event_name == "CoinsMinted"
    events[7] = altered(mint, amount=-5)
    with pytest.raises(MalformedEventError) as info:
        asyncio.run(replay_batches(delivered(events), last_of(events), engine, stream_rows=1))
    assert info.value.tx_id == mint.tx_id
    with engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(MintEvent)) == 0
    assert rows_in(engine) == 0
