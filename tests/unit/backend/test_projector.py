"""The projector against events recorded from the real GX chaincode: read models, exactly-once checkpointing,
malformed and unknown events, lag, restart = replay."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Callable

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from gxlib.backend.errors import MalformedEventError, ProjectionError
from gxlib.backend.eventsource import ChaincodeEvent
from gxlib.backend.metrics import projector_metrics
from gxlib.backend.models import Account, Country, MintEvent, Pool, Proposal, Transfer, UserProfile
from gxlib.backend.projector import ApplyResult, Projector
from gxlib.backend.readmodel import ReadModel
from gxlib.backend.replay import compare_read_models, replay, replay_and_compare
from gxlib.backend.settings import ProjectorSettings
from tests.unit.backend.chaincode_events import PRECISION, ListEventSource, RecordedHistory, altered
from tests.unit.backend.helpers import FakeClock

FAST = ProjectorSettings(retry_base_s=0.001, retry_max_s=0.01)


def make_projector(engine: Engine, clock: FakeClock | None = None) -> tuple[Projector, CollectorRegistry]:
    registry = CollectorRegistry()
    metrics = projector_metrics(registry, runtime_collectors=False)
    kwargs = {"clock": clock} if clock else {}
    return Projector(engine, metrics=metrics, settings=FAST, **kwargs), registry


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


# That ListEventSource (and FabricEventSource) implement EventSource is checked statically:
# tests/unit/static_protocols.py, run by tests/unit/test_typecheck.py.


def test_recorded_history_builds_read_models_that_match_the_ledger(engine: Engine,
                                                                   recorded_history: RecordedHistory) -> None:
    projector, registry = make_projector(engine)
    results = [projector.apply(e) for e in recorded_history.events]
    assert set(results) == {ApplyResult.APPLIED}

    with Session(engine) as s:
        accounts = {a.account_id: a.balance for a in s.scalars(select(Account))}
        pools = {p.pool_id: (p.balance, p.minted) for p in s.scalars(select(Pool))}
        users = {u.user_id: u for u in s.scalars(select(UserProfile))}
        countries = {c.code: c.user_count for c in s.scalars(select(Country))}
        transfers = list(s.scalars(select(Transfer).order_by(Transfer.block_number, Transfer.tx_index)))
        proposals = list(s.scalars(select(Proposal)))
    for account_id, balance in accounts.items():
        assert balance == recorded_history.balance(account_id), account_id
    assert set(pools) == {"SYSTEM_USER_GENESIS_POOL", "SYSTEM_GOVT_GENESIS_POOL", "SYSTEM_CHARITABLE_POOL",
                          "SYSTEM_LOAN_POOL"}
    assert pools["SYSTEM_LOAN_POOL"] == (100_000_000 * PRECISION, 100_000_000 * PRECISION)
    user_pool_balance, user_pool_minted = pools["SYSTEM_USER_GENESIS_POOL"]
    assert user_pool_minted - user_pool_balance == users["alice"].genesis_amount + users["bob"].genesis_amount
    assert users["alice"].genesis_distributed and users["alice"].genesis_tier == 1
    assert users["bob"].user_number == 2 and users["bob"].country_code == "DE"
    assert countries == {"US": 1, "CA": 0, "GB": 0, "DE": 1}
    assert [t.kind for t in transfers] == ["GENESIS", "GENESIS", "TRANSFER"]
    assert transfers[-1].amount == 100 * PRECISION and transfers[-1].remark == "rent"
    assert [p.proposal_id for p in proposals] == ["p-1"]
    assert accounts["carol"] == 5 * PRECISION
    last = recorded_history.events[-1]
    checkpoint = projector.checkpoint()
    assert checkpoint is not None and checkpoint.position == last.position and checkpoint.tx_id == last.tx_id
    assert sample(registry, "projector_events_processed_total", eventType="GenesisDistributed") == 2
    assert sample(registry, "projector_checkpoint_block_number") == last.block_number

    status = ReadModel(engine).system_status()
    assert status.bootstrapped and status.user_count == 2 and status.countries == ["CA", "DE", "GB", "US"]


def test_bootstrap_mints_are_recorded_exactly_like_coins_minted(engine: Engine,
                                                                recorded_history: RecordedHistory) -> None:
    projector, _ = make_projector(engine)
    for event in recorded_history.events:
        projector.apply(event)
    with Session(engine) as s:
        mints = list(s.scalars(select(MintEvent).order_by(MintEvent.block_number, MintEvent.tx_index,
                                                          MintEvent.mint_index)))
    assert [m.source_event for m in mints] == ["SystemBootstrapped"] * 4 + ["CoinsMinted"]
    assert [m.mint_index for m in mints] == [0, 1, 2, 3, 0]
    bootstrap = json.loads(recorded_history.events[0].payload)["mints"]
    for row, payload in zip(mints, bootstrap, strict=False):
        assert (row.account_id, row.amount, row.amount_coins, row.remark) == (
            payload["accountId"], payload["amount"], payload["amountCoins"], payload["remark"])
    columns = [c.key for c in MintEvent.__table__.columns if c.key not in {"id", "source_event"}]
    assert all(getattr(m, c) is not None for m in mints for c in columns)


def test_a_redelivered_event_is_not_applied_twice(engine: Engine, recorded_history: RecordedHistory) -> None:
    projector, _ = make_projector(engine)
    for event in recorded_history.events:
        projector.apply(event)
    before = ReadModel(engine).account("bob")
    assert [projector.apply(e) for e in recorded_history.events] == [ApplyResult.ALREADY_APPLIED] * len(
        recorded_history.events)
    after = ReadModel(engine).account("bob")
    assert before is not None and after is not None and after.balance == before.balance


@pytest.mark.parametrize("change", [{"amount": -5}, {"amount": "100"}, {"accountId": ""}, {"timestamp": None},
                                    {"surprise": 1}, {"amount": 2**64}])
def test_a_malformed_known_event_raises_and_writes_nothing(engine: Engine, recorded_history: RecordedHistory,
                                                           change: dict[str, object]) -> None:
    projector, _ = make_projector(engine)
    mint = recorded_history.events[7]
    assert mint.event_name == "CoinsMinted"
    with pytest.raises(MalformedEventError) as info:
        projector.apply(altered(mint, **change))
    assert info.value.tx_id == mint.tx_id and info.value.block_number == mint.block_number
    assert projector.checkpoint() is None
    assert ReadModel(engine).account("carol") is None


def test_a_payload_that_is_not_json_is_malformed(engine: Engine) -> None:
    projector, _ = make_projector(engine)
    with pytest.raises(MalformedEventError, match="not JSON"):
        projector.apply(ChaincodeEvent(1, 0, "tx", "CoinsMinted", b"\xff{"))


def test_an_event_that_does_not_fit_the_read_model_rolls_back_with_the_checkpoint(
        engine: Engine, recorded_history: RecordedHistory) -> None:
    projector, _ = make_projector(engine)
    events = recorded_history.events
    for event in events[:6]:
        projector.apply(event)
    before = projector.checkpoint()
    overdraft = altered(events[6], amount=10**18)  # more than alice has in the read model
    with pytest.raises(ProjectionError, match="debiting"):
        projector.apply(overdraft)
    assert projector.checkpoint() == before
    with Session(engine) as s:
        assert s.scalars(select(Transfer).where(Transfer.kind == "TRANSFER")).first() is None


def test_a_failing_event_is_retried_and_counted_and_never_skipped(engine: Engine,
                                                                  recorded_history: RecordedHistory) -> None:
    projector, registry = make_projector(engine)
    events = recorded_history.events
    broken = altered(events[1], countries=["nope"])
    source = ListEventSource([events[0], broken, *events[2:]])

    async def run_for_a_while() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(projector.run(source, stop))
        for _ in range(500):
            await asyncio.sleep(0.01)
            if sample(registry, "projector_events_failed_total", eventType="CountryInitialized") >= 3:
                break
        stop.set()
        await task

    asyncio.run(run_for_a_while())
    assert sample(registry, "projector_events_failed_total", eventType="CountryInitialized") >= 3
    checkpoint = projector.checkpoint()
    assert checkpoint is not None and checkpoint.position == events[0].position  # stuck before the bad event
    assert ReadModel(engine).user("alice") is None  # nothing after it was applied


def test_a_database_outage_while_reading_the_checkpoint_does_not_end_the_projector(
        engine: Engine, recorded_history: RecordedHistory, monkeypatch: pytest.MonkeyPatch) -> None:
    projector, _ = make_projector(engine)
    events = recorded_history.events
    real_checkpoint = projector.checkpoint
    outage = {"left": 2}

    def checkpoint_while_the_database_is_down() -> object:
        if outage["left"] > 0:
            outage["left"] -= 1
            raise OperationalError("SELECT projector_checkpoint", {}, ConnectionRefusedError("database down"))
        return real_checkpoint()

    async def run_until_caught_up() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(projector.run(ListEventSource(events), stop))
        for _ in range(1000):
            done = real_checkpoint()
            if task.done() or (done is not None and done.position == events[-1].position):
                break
            await asyncio.sleep(0.01)
        stop.set()
        await task  # the old code ended here, with the database error

    monkeypatch.setattr(projector, "checkpoint", checkpoint_while_the_database_is_down)
    asyncio.run(run_until_caught_up())
    assert outage["left"] == 0  # both failures were met, and the service lived on
    caught_up = real_checkpoint()
    assert caught_up is not None and caught_up.position == events[-1].position


def test_a_fixed_event_source_lets_the_projector_continue(engine: Engine, recorded_history: RecordedHistory) -> None:
    projector, _ = make_projector(engine)
    events = recorded_history.events
    broken = altered(events[1], countries=["nope"])
    assert asyncio.run(projector.apply_with_retry(broken, max_attempts=2)) is None
    projector.apply(events[0])
    assert asyncio.run(projector.apply_with_retry(events[1], max_attempts=2)) is ApplyResult.APPLIED


def test_unknown_event_types_are_counted_and_passed_over(engine: Engine) -> None:
    projector, registry = make_projector(engine)
    result = projector.apply(ChaincodeEvent(3, 1, "tx-x", "SomethingNew", b'{"eventType":"SomethingNew"}'))
    assert result is ApplyResult.UNKNOWN_TYPE
    checkpoint = projector.checkpoint()
    assert checkpoint is not None and checkpoint.position == (3, 1)
    assert sample(registry, "projector_events_processed_total", eventType="unknown") == 1


def test_a_trusted_issuers_change_is_validated_counted_and_leaves_the_read_models_alone(engine: Engine) -> None:
    projector, registry = make_projector(engine)
    payload = {"eventType": "TrustedIssuersChanged", "mspIds": ["Org1MSP", "Org2MSP"], "previousMspIds": ["Org1MSP"],
               "changedByMspId": "Org1MSP", "timestamp": 1_700_000_000}
    result = projector.apply(ChaincodeEvent(4, 0, "tx-t", "TrustedIssuersChanged", json.dumps(payload).encode()))
    assert result is ApplyResult.APPLIED
    assert sample(registry, "projector_events_processed_total", eventType="TrustedIssuersChanged") == 1
    assert ReadModel(engine).system_status().bootstrapped is False
    with pytest.raises(MalformedEventError):
        projector.apply(ChaincodeEvent(5, 0, "tx-u", "TrustedIssuersChanged", b'{"eventType":"TrustedIssuersChanged"}'))


def test_lag_is_the_age_of_the_oldest_unprojected_event_and_zero_when_caught_up(
        engine: Engine, recorded_history: RecordedHistory) -> None:
    clock = FakeClock()
    projector, registry = make_projector(engine, clock)
    bootstrap = recorded_history.events[0]
    stamped = ChaincodeEvent(bootstrap.block_number, bootstrap.tx_index, bootstrap.tx_id, bootstrap.event_name,
                             bootstrap.payload, tx_timestamp=clock.now - dt.timedelta(seconds=4))
    broken = altered(stamped, mints=[])
    broken = ChaincodeEvent(broken.block_number, broken.tx_index, broken.tx_id, broken.event_name, broken.payload,
                            tx_timestamp=stamped.tx_timestamp)
    assert projector.lag_ms() == 0
    assert asyncio.run(projector.apply_with_retry(broken, max_attempts=1)) is None
    assert projector.lag_ms() == 4000
    clock.advance(2)
    assert projector.lag_ms() == 6000
    assert asyncio.run(projector.apply_with_retry(stamped)) is ApplyResult.APPLIED
    assert projector.lag_ms() == 0 and sample(registry, "projector_lag_milliseconds") == 0


def test_a_restart_at_any_point_ends_equal_to_a_full_replay(new_engine: Callable[[], Engine],
                                                            recorded_history: RecordedHistory) -> None:
    events = recorded_history.events
    reference = new_engine()
    report = replay(events, reference)
    assert report.applied == len(events) and report.checkpoint is not None
    for crash_after in (0, 1, 4, len(events) - 1):
        live = new_engine()
        first, _ = make_projector(live)
        for event in events[:crash_after]:
            first.apply(event)
        restarted, _ = make_projector(live)  # a new process resumes from the checkpoint

        asyncio.run(_run_until_caught_up(restarted, events))
        assert compare_read_models(live, reference) == [], crash_after


def test_replay_and_compare_finds_equal_models_and_reports_a_tampered_balance(
        new_engine: Callable[[], Engine], recorded_history: RecordedHistory) -> None:
    live = new_engine()
    projector, _ = make_projector(live)
    for event in recorded_history.events[:-2]:
        projector.apply(event)
    report = replay_and_compare(recorded_history.events, live, new_engine())
    assert report.equal and report.events == len(recorded_history.events) - 2

    with Session(live) as s, s.begin():
        account = s.get(Account, "bob")
        assert account is not None
        account.balance += 1
    report = replay_and_compare(recorded_history.events, live, new_engine())
    assert [(d.table, d.key) for d in report.differences] == [("accounts", ("bob",))]


def test_events_that_arrived_together_are_projected_in_one_transaction_and_equal_a_replay(
        new_engine: Callable[[], Engine], recorded_history: RecordedHistory, monkeypatch: pytest.MonkeyPatch) -> None:
    events = recorded_history.events
    live, reference = new_engine(), new_engine()
    projector, registry = make_projector(live)
    transactions: list[int] = []  # events per database transaction
    one_batch, one_event = Projector.apply_batch, Projector.apply

    def counted_batch(self: Projector, batch: list[ChaincodeEvent]) -> list[ApplyResult]:
        transactions.append(len(batch))
        return one_batch(self, batch)

    def counted_event(self: Projector, event: ChaincodeEvent) -> ApplyResult:
        transactions.append(1)
        return one_event(self, event)

    monkeypatch.setattr(Projector, "apply_batch", counted_batch)
    monkeypatch.setattr(Projector, "apply", counted_event)

    asyncio.run(_run_until_caught_up(projector, events))
    assert sum(transactions) == len(events) and len(transactions) < len(events)  # not one commit per event
    assert sum(sample(registry, "projector_events_processed_total", eventType=e.event_name)
               for e in {e.event_name: e for e in events}.values()) == len(events)
    replay(events, reference)
    assert compare_read_models(live, reference) == []


async def _run_until_caught_up(projector: Projector, events: list[ChaincodeEvent]) -> None:
    """Run ``projector`` on ``events`` until its checkpoint is the last event's position, then stop it."""
    stop = asyncio.Event()
    task = asyncio.create_task(projector.run(ListEventSource(events), stop))
    while projector.checkpoint() is None or projector.checkpoint().position != events[-1].position:  # type: ignore[union-attr]
        await asyncio.sleep(0.01)
    stop.set()
    await task
