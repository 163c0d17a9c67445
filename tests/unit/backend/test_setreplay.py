"""The set-based replay (read models built in memory, one bulk write): the same read models and checkpoint as the
live projector applying one event at a time, and the same refusals — on SQLite and PostgreSQL, with events
recorded from the real chaincode."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import Engine

from gxlib.backend.db import migrate
from gxlib.backend.errors import MalformedEventError, ProjectionError
from gxlib.backend.projector import ApplyResult, Projector
from gxlib.backend.replay import compare_read_models, replay
from gxlib.backend.setreplay import SetProjection
from tests.unit.backend.chaincode_events import RecordedHistory, altered


def test_a_set_based_replay_equals_the_live_projection_event_by_event(new_engine: Callable[[], Engine],
                                                                      recorded_history: RecordedHistory) -> None:
    live, target = new_engine(), new_engine()
    for event in recorded_history.events:
        Projector(live).apply(event)
    report = replay(recorded_history.events, target)
    assert report.events == report.applied == len(recorded_history.events)
    assert compare_read_models(live, target) == []
    assert Projector(target).checkpoint() == Projector(live).checkpoint()


def test_a_set_based_replay_stops_at_the_checkpoint_it_is_given(new_engine: Callable[[], Engine],
                                                                recorded_history: RecordedHistory) -> None:
    events = recorded_history.events
    live, target = new_engine(), new_engine()
    for event in events[:5]:
        Projector(live).apply(event)
    report = replay(events, target, until=Projector(live).checkpoint())
    assert report.events == 5
    assert compare_read_models(live, target) == []


def test_redelivered_events_are_applied_once(recorded_history: RecordedHistory) -> None:
    projection = SetProjection()
    events = recorded_history.events
    projection.add(events[:4])
    assert projection.add(events) == [ApplyResult.ALREADY_APPLIED] * 4 + [ApplyResult.APPLIED] * (len(events) - 4)


def test_a_malformed_event_stops_the_replay_and_writes_nothing(engine: Engine,
                                                               recorded_history: RecordedHistory) -> None:
    events = list(recorded_history.events)
    mint = events[7]
    assert mint.event_name == "CoinsMinted"
    with pytest.raises(MalformedEventError) as info:
        replay([*events[:7], altered(mint, amount=-5), *events[8:]], engine)
    assert info.value.tx_id == mint.tx_id
    assert Projector(engine).checkpoint() is None


def test_an_event_that_does_not_fit_names_its_position(recorded_history: RecordedHistory, engine: Engine) -> None:
    events = recorded_history.events
    overdraft = altered(events[6], amount=10**18)  # more than the sender has
    projection = SetProjection()
    projection.add(events[:6])
    with pytest.raises(ProjectionError, match="debiting") as info:
        projection.add([overdraft])
    assert (info.value.block_number, info.value.tx_index) == overdraft.position
    migrate(engine)
    assert Projector(engine).checkpoint() is None
