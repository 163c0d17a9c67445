"""The set-based replay (read models built in memory, one bulk write): the same read models and checkpoint as the
live projector applying one event at a time, and the same refusals — on SQLite and PostgreSQL, with events
recorded from the real chaincode."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import cast

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


def test_the_bulk_write_keeps_uint64_extremes_and_utc_times_as_the_orm_does(engine: Engine) -> None:
    from sqlalchemy import Table, select
    from sqlalchemy.orm import Session

    from gxlib.backend.models import Account
    from gxlib.backend.rowstore import bulk_insert, record_type
    from gxlib.backend.sqltypes import UINT64_MAX

    when = dt.datetime(2026, 12, 6, 21, 0, 1, 250000, tzinfo=dt.UTC)
    rows = []
    for n, balance in enumerate((0, 2**63, UINT64_MAX)):
        row = record_type(Account)()
        row.account_id, row.balance, row.updated_at, row.last_tx_id = f"a{n}", balance, when, f"tx{n}"
        rows.append(row)
    with engine.begin() as connection:
        bulk_insert(connection, cast(Table, Account.__table__), rows)
    with Session(engine) as session:
        found = {a.account_id: (a.balance, a.updated_at) for a in session.scalars(select(Account))}
    assert found == {"a0": (0, when), "a1": (2**63, when), "a2": (UINT64_MAX, when)}


def test_the_bulk_write_refuses_a_boolean_amount_even_after_writing_the_equal_integer(engine: Engine) -> None:
    from sqlalchemy import Table

    from gxlib.backend.models import Account
    from gxlib.backend.rowstore import bulk_insert, record_type

    when = dt.datetime(2026, 12, 6, tzinfo=dt.UTC)
    rows = []
    for n, balance in enumerate((1, True)):  # True == 1: a memo keyed by value alone would let True through
        row = record_type(Account)()
        row.account_id, row.balance, row.updated_at, row.last_tx_id = f"a{n}", balance, when, f"tx{n}"
        rows.append(row)
    with pytest.raises(ValueError, match="not a uint64"), engine.begin() as connection:
        bulk_insert(connection, cast(Table, Account.__table__), rows)


def test_the_gc_pause_restores_the_collector_as_it_was_even_when_nested_or_failing() -> None:
    import gc

    from gxlib.backend.setreplay import gc_paused

    assert gc.isenabled()
    with gc_paused():
        with pytest.raises(RuntimeError), gc_paused():
            raise RuntimeError("a replay failed")
        assert not gc.isenabled()  # the outer holder is still inside
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()  # it was off before: it stays off
    finally:
        gc.enable()


def test_rows_written_early_and_the_rest_at_the_end_equal_one_write(new_engine: Callable[[], Engine],
                                                                   recorded_history: RecordedHistory) -> None:
    events = recorded_history.events
    whole, streamed = new_engine(), new_engine()
    one = SetProjection()
    one.add(events)
    one.write(whole)
    parts = SetProjection()
    with streamed.begin() as connection:
        for event in events:
            parts.add([event])
            parts.write_pending(connection)
            assert parts.pending_rows() == 0
        parts.write_rest(connection)
    assert compare_read_models(whole, streamed) == []
