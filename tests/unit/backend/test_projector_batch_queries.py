"""The live projector's batch (Projector.apply_batch): the rows a batch reads are loaded with one query per table
and the rows it adds are found again without flushing, so a batch costs a few statements, not a few per event —
and the read models stay those of applying the events one at a time. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine, event
from sqlalchemy.orm import Session

from gxlib.backend.eventsource import ChaincodeEvent
from gxlib.backend.models import Account, Pool, UserProfile
from gxlib.backend.projector import Projector
from gxlib.backend.readmodel import SessionRows, rows_read_by
from gxlib.backend.replay import compare_read_models
from tests.unit.backend.chaincode_events import RecordedHistory, altered


def mints_to_new_accounts(history: RecordedHistory, count: int) -> list[ChaincodeEvent]:
    events = history.events
    mint = next(e for e in events if e.event_name == "CoinsMinted")
    last = events[-1]
    return [altered(mint, accountId=f"fresh-{n}", remark=f"m{n}")._replace(
        block_number=last.block_number + 1 + n // 10, tx_index=n % 10, tx_id=f"tx-fresh-{n}") for n in range(count)]


def statements_of(engine: Engine) -> list[str]:
    seen: list[str] = []
    event.listen(engine, "before_cursor_execute",
                 lambda _conn, _cursor, statement, *_rest: seen.append(statement.split()[0].upper()))
    return seen


def test_a_whole_history_in_one_batch_equals_applying_it_event_by_event(new_engine: Callable[[], Engine],
                                                                        recorded_history: RecordedHistory) -> None:
    events = [*recorded_history.events, *mints_to_new_accounts(recorded_history, 30)]
    one_by_one, batched = new_engine(), new_engine()
    for e in events:
        Projector(one_by_one).apply(e)
    Projector(batched).apply_batch(events)  # users created, then given genesis, then paying, in one transaction
    assert compare_read_models(one_by_one, batched) == []


def test_a_batch_of_mints_to_new_accounts_reads_the_database_a_few_times_not_once_per_event(
        engine: Engine, recorded_history: RecordedHistory) -> None:
    Projector(engine).apply_batch(recorded_history.events)
    batch = mints_to_new_accounts(recorded_history, 50)
    statements = statements_of(engine)
    Projector(engine).apply_batch(batch)
    assert statements.count("SELECT") <= 3  # the checkpoint, the accounts, the pools (if any)


def test_rows_read_by_names_the_accounts_pools_user_and_countries_of_an_event() -> None:
    assert rows_read_by("GenesisDistributed", {"userId": "alice", "fromPool": "SYSTEM_USER_GENESIS_POOL"}) == {
        Account: {"alice", "SYSTEM_USER_GENESIS_POOL"}, Pool: {"SYSTEM_USER_GENESIS_POOL"},
        UserProfile: {"alice"}}
    assert rows_read_by("TrustedIssuersChanged", {"issuers": ["x"]}) == {}


def test_a_row_the_prefetch_did_not_name_is_still_found_and_a_named_absent_one_once_added(
        engine: Engine, recorded_history: RecordedHistory) -> None:
    Projector(engine).apply_batch(recorded_history.events)
    with Session(engine) as session, session.no_autoflush:
        rows = SessionRows(session)
        rows.prefetch({Account: {"nobody"}})
        assert rows.get(Account, "alice") is not None  # not prefetched: asked for
        assert rows.get(Account, "nobody") is None
        added = rows.new_row(Account, {"account_id": "nobody", "balance": 0, "updated_at": None, "last_tx_id": "t"})
        assert rows.get(Account, "nobody") is added
