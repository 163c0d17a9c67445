"""Projector.apply_batch (what replays use): the same read models as applying one event at a time, all or nothing,
redeliveries skipped — on SQLite and PostgreSQL, with events recorded from the real chaincode."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest
from sqlalchemy import Engine

from gxlib.backend.errors import MalformedEventError
from gxlib.backend.eventsource import ChaincodeEvent
from gxlib.backend.projector import ApplyResult, Projector
from gxlib.backend.replay import compare_read_models, replay
from tests.unit.backend.chaincode_events import RecordedHistory, altered, recorded_history
from tests.unit.chaincode.conftest import callers

__all__ = ["callers", "recorded_history"]


def test_a_batch_gives_the_read_models_of_one_event_at_a_time(new_engine: Callable[[], Engine],
                                                              recorded_history: RecordedHistory) -> None:
    one_by_one, batched = new_engine(), new_engine()
    for event in recorded_history.events:
        Projector(one_by_one).apply(event)
    results = Projector(batched).apply_batch(recorded_history.events)
    assert results == [ApplyResult.APPLIED] * len(recorded_history.events)
    assert compare_read_models(one_by_one, batched) == []
    assert Projector(batched).checkpoint() == Projector(one_by_one).checkpoint()


def test_replay_in_small_batches_equals_the_live_projection(new_engine: Callable[[], Engine],
                                                            recorded_history: RecordedHistory) -> None:
    live, target = new_engine(), new_engine()
    for event in recorded_history.events:
        Projector(live).apply(event)
    report = replay(recorded_history.events, target, batch_size=2)
    assert report.events == report.applied == len(recorded_history.events)
    assert compare_read_models(live, target) == []


def test_a_malformed_event_in_a_batch_writes_nothing_of_the_batch(engine: Engine,
                                                                  recorded_history: RecordedHistory) -> None:
    events = list(recorded_history.events)
    projector = Projector(engine)
    projector.apply_batch(events[:2])
    before = projector.checkpoint()
    broken = altered(events[3], amount="lots") if events[3].event_name == "CoinsMinted" else \
        altered(events[3], timestamp="not a number")
    with pytest.raises(MalformedEventError):
        projector.apply_batch([events[2], broken, *events[4:]])
    assert projector.checkpoint() == before


def test_a_batch_skips_what_the_checkpoint_already_covers(engine: Engine, recorded_history: RecordedHistory) -> None:
    events = recorded_history.events
    projector = Projector(engine)
    projector.apply_batch(events[:4])
    results = projector.apply_batch(events)
    assert results[:4] == [ApplyResult.ALREADY_APPLIED] * 4
    assert results[4:] == [ApplyResult.APPLIED] * (len(events) - 4)


class _QuietChain:
    """An event source whose chain never gets a new block."""

    async def events(self, after: object) -> AsyncIterator[ChaincodeEvent]:
        await asyncio.Event().wait()
        yield  # pragma: no cover - never reached


def test_a_projector_waiting_on_a_quiet_chain_stops_at_once_when_told(engine: Engine) -> None:
    async def run() -> float:
        stop = asyncio.Event()
        task = asyncio.create_task(Projector(engine).run(_QuietChain(), stop))
        await asyncio.sleep(0.3)
        began = time.monotonic()
        stop.set()
        await asyncio.wait_for(task, timeout=5)
        return time.monotonic() - began

    assert asyncio.run(run()) < 1.0
