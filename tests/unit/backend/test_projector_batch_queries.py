"""The live projector's batch (Projector.apply_batch): the rows a batch reads are loaded with one query per table
and the rows it adds are found again without flushing, so a batch costs a few statements, not a few per event —
and the read models stay those of applying the events one at a time. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine, event

from gxlib.backend.eventsource import ChaincodeEvent
from gxlib.backend.models import Account, Pool, UserProfile
from gxlib.backend.projector import Projector
from gxlib.backend.readmodel import rows_read_by
from gxlib.backend.replay import compare_read_models
from gxlib.backend.rowstore import RowStore
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
    with engine.connect() as connection:
        rows = RowStore(connection)
        rows.prefetch({Account: {"nobody"}})
        statements = statements_of(engine)
        assert rows.get(Account, "alice") is not None  # not prefetched: asked for
        assert rows.get(Account, "nobody") is None  # prefetched as absent: not asked again
        assert statements == ["SELECT"]
        added = rows.new_row(Account, {"account_id": "nobody", "balance": 0, "updated_at": None, "last_tx_id": "t"})
        assert rows.get(Account, "nobody") is added


def test_a_batch_updates_only_the_rows_it_looked_up_and_inserts_the_ones_it_made(
        engine: Engine, recorded_history: RecordedHistory) -> None:
    Projector(engine).apply_batch(recorded_history.events)
    statements = statements_of(engine)
    Projector(engine).apply_batch(mints_to_new_accounts(recorded_history, 20))
    # mint_events and accounts inserted, one statement each (PostgreSQL: COPY, on the driver's own cursor);
    # the checkpoint updated; nothing else written
    assert statements.count("INSERT") == (2 if engine.dialect.name == "sqlite" else 0)
    assert statements.count("UPDATE") == 1
    assert statements.count("SELECT") <= 3  # and read: the checkpoint, the accounts (and pools) of the batch
