"""The outbox-submitter against a fake Fabric: exactly once through crashes, error classes, breaker, bounds."""

from __future__ import annotations

import asyncio
import random
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from gxlib.backend.breaker import BreakerState, CircuitBreaker
from gxlib.backend.commands import FabricIdentity
from gxlib.backend.metrics import submitter_metrics
from gxlib.backend.models import CommandStatus
from gxlib.backend.outbox import Outbox
from gxlib.backend.settings import SubmitterSettings
from gxlib.backend.submitter import Outcome, Submitter
from gxlib.backend.txgateway import TransportError, TxRequest
from tests.unit.backend.fakefabric import Crash, FakeFabric, crash, deadline, transport_down
from tests.unit.backend.helpers import FakeClock, FakeMonotonic, mint_payload

SETTINGS = SubmitterSettings(batch_size=10, max_in_flight=10, lease_s=30, max_attempts=5, backoff_base_s=1,
                             backoff_max_s=8, mvcc_retry_delay_s=0.0, breaker_failure_threshold=3,
                             breaker_cooldown_s=10, commit_timeout_s=1, status_timeout_s=1)


class Harness:
    def __init__(self, engine: Engine, fabric: FakeFabric | None = None, settings: SubmitterSettings = SETTINGS,
                 worker: str = "w1") -> None:
        self.clock = FakeClock()
        self.mono = FakeMonotonic()
        self.outbox = Outbox(engine, clock=self.clock)
        self.fabric = fabric or FakeFabric()
        self.registry = CollectorRegistry()
        self.metrics = submitter_metrics(self.registry, runtime_collectors=False)
        self.settings = settings
        self.submitter = self.new_submitter(worker)

    def new_submitter(self, worker: str) -> Submitter:
        """A fresh process: new breaker, new worker ID (what a restart after a crash is)."""
        breaker = CircuitBreaker(self.settings.breaker_failure_threshold, self.settings.breaker_cooldown_s,
                                 clock=self.mono)
        return Submitter(self.outbox, self.fabric, self.settings, metrics=self.metrics, breaker=breaker,
                         worker_id=worker, rng=random.Random(7))

    def enqueue(self, n: int = 1, start: int = 1) -> list[str]:
        return [self.outbox.enqueue("MINT", mint_payload(i), f"key-{i}").command.id for i in range(start, start + n)]

    def step(self, advance_s: float = 0.0) -> list[Outcome]:
        self.clock.advance(advance_s)
        return asyncio.run(self.submitter.run_once())

    def sample(self, name: str, **labels: str) -> float:
        value = self.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value


# That FakeFabric (and FabricTxGateway) implement TxGateway is checked statically:
# tests/unit/static_protocols.py, run by tests/unit/test_typecheck.py.


def test_command_commits_once_with_its_tx_id_stored_before_the_submit(engine: Engine) -> None:
    h = Harness(engine)
    [cid] = h.enqueue()
    seen: list[str | None] = []
    h.fabric.faults["submit"].append(lambda: seen.append(h.outbox.get(cid).fabric_tx_id))

    assert h.step() == [Outcome.COMMITTED]

    record = h.outbox.get(cid)
    assert record.status == CommandStatus.COMMITTED
    assert seen == [record.fabric_tx_id] and record.fabric_tx_id in h.fabric.ledger
    assert record.block_number == h.fabric.ledger[record.fabric_tx_id].block_number
    assert record.first_submitted_at is not None and record.committed_at is not None
    assert h.fabric.valid_effects() == {cid: 1}
    assert h.sample("outbox_commands_processed_total", status="success", commandType="MINT") == 1
    assert h.sample("fabric_transaction_submissions_total", status="success") == 1
    assert h.sample("fabric_transaction_duration_ms_count") == 1


def test_the_error_series_exists_at_zero_before_anything_failed(engine: Engine) -> None:
    # The dashboard's "error %" divides the error rate by the total: without a 0 series it shows no data, not 0%.
    h = Harness(engine)
    assert h.registry.get_sample_value("fabric_transaction_submissions_total", {"status": "error"}) == 0.0
    h.enqueue()
    assert h.step() == [Outcome.COMMITTED]
    assert h.registry.get_sample_value("fabric_transaction_submissions_total", {"status": "error"}) == 0.0
    assert h.registry.get_sample_value("fabric_transaction_submissions_total", {"status": "success"}) == 1.0


def test_the_transaction_carries_the_chaincode_function_and_arguments(engine: Engine) -> None:
    h = Harness(engine)
    [cid] = h.enqueue()
    h.step()
    [tx] = h.fabric.ledger.values()
    assert (tx.command_id, tx.function, tx.args) == (cid, "TokenomicsContract:Mint",
                                                     ("acct-1", "100", "test mint 1"))


def test_chaincode_rejection_is_failed_copied_to_the_dlq_and_never_retried(engine: Engine) -> None:
    h = Harness(engine, FakeFabric(reject=lambda request: "remark cannot be empty - must document reason"))
    [cid] = h.enqueue()

    assert h.step() == [Outcome.FAILED]
    assert h.step(advance_s=3600) == []

    record = h.outbox.get(cid)
    assert record.status == CommandStatus.FAILED and record.error_code == "ENDORSEMENT_REJECTED"
    [letter] = h.outbox.dead_letters()
    assert letter.command_id == cid and letter.final_status == "FAILED"
    assert letter.error_message == "remark cannot be empty - must document reason"
    assert h.fabric.calls["prepare"] == 1 and h.fabric.calls["submit"] == 0
    assert h.sample("outbox_commands_processed_total", status="failed", commandType="MINT") == 1
    assert h.submitter.breaker.state is BreakerState.CLOSED


def test_mvcc_conflict_is_retried_with_a_new_transaction(engine: Engine) -> None:
    h = Harness(engine, FakeFabric(mvcc_next=1))
    [cid] = h.enqueue()

    assert h.step() == [Outcome.RETRY]
    first = h.outbox.get(cid)
    assert first.status == CommandStatus.PENDING and first.error_code == "MVCC_READ_CONFLICT"
    assert first.fabric_tx_id is None  # forgotten: the next attempt needs a new tx ID

    assert h.step(advance_s=1) == [Outcome.COMMITTED]
    final = h.outbox.get(cid)
    invalid = [tx for tx in h.fabric.ledger.values() if tx.code == "MVCC_READ_CONFLICT"]
    assert len(invalid) == 1 and final.fabric_tx_id != invalid[0].tx_id
    assert h.fabric.valid_effects() == {cid: 1}
    assert h.sample("outbox_commands_processed_total", status="retry", commandType="MINT") == 1


def test_mvcc_conflicts_spend_no_attempts_so_contention_never_sends_a_command_to_the_dlq(engine: Engine) -> None:
    conflicts = SETTINGS.max_attempts * 3  # a released backlog conflicting on its hot account again and again
    h = Harness(engine, FakeFabric(mvcc_next=conflicts))
    [cid] = h.enqueue()
    outcomes = [h.step(advance_s=SETTINGS.contention_backoff_max_s) for _ in range(conflicts + 1)]
    assert outcomes[:-1] == [[Outcome.RETRY]] * conflicts and outcomes[-1] == [Outcome.COMMITTED]
    assert h.outbox.dead_letters() == [] and h.outbox.get(cid).status == CommandStatus.COMMITTED
    assert h.fabric.valid_effects() == {cid: 1}


def test_a_commit_not_seen_yet_spends_no_attempts_and_is_never_dead_lettered(engine: Engine) -> None:
    unknown = SETTINGS.max_attempts * 2  # the gateway peer restarted and is catching up on blocks
    h = Harness(engine, FakeFabric(unknown_status_next=unknown))
    [cid] = h.enqueue()
    outcomes = [h.step(advance_s=SETTINGS.backoff_max_s) for _ in range(unknown + 1)]
    assert Outcome.DLQ not in [o for step in outcomes for o in step]
    assert h.outbox.get(cid).status == CommandStatus.COMMITTED and h.outbox.dead_letters() == []
    assert h.fabric.valid_effects() == {cid: 1} and h.fabric.duplicate_submissions <= unknown


def test_contention_leaves_a_command_all_its_attempts_for_transport_failures(engine: Engine) -> None:
    # R9's worst command had used 9 of 10 attempts on conflicts alone: a few transport failures after a burst of
    # contention would have dead-lettered a command whose every failure was someone else's or transient.
    conflicts = SETTINGS.max_attempts * 2
    h = Harness(engine, FakeFabric(mvcc_next=conflicts),
                settings=SETTINGS.model_copy(update={"breaker_failure_threshold": 100}))  # failures, no outage
    [cid] = h.enqueue()
    for _ in range(conflicts):
        assert h.step(advance_s=SETTINGS.contention_backoff_max_s) == [Outcome.RETRY]
    assert h.outbox.get(cid).attempts == 0  # contention spent nothing
    h.fabric.faults["prepare"].extend([transport_down] * (SETTINGS.max_attempts - 1))
    outcomes = [h.step(advance_s=SETTINGS.backoff_max_s) for _ in range(SETTINGS.max_attempts)]
    assert outcomes == [[Outcome.RETRY]] * (SETTINGS.max_attempts - 1) + [[Outcome.COMMITTED]]
    record = h.outbox.get(cid)
    assert record.status == CommandStatus.COMMITTED and record.attempts == SETTINGS.max_attempts
    assert record.free_retries == conflicts and h.fabric.valid_effects() == {cid: 1}


def test_the_pause_after_repeated_conflicts_grows_and_stays_under_its_cap(engine: Engine) -> None:
    settings = SETTINGS.model_copy(update={"mvcc_retry_delay_s": 0.05, "contention_backoff_max_s": 2.0})
    submitter = Harness(engine, settings=settings).submitter

    def pauses(attempts: int) -> list[float]:
        return [submitter._contention_delay(SimpleNamespace(attempts=0, free_retries=attempts))  # type: ignore[arg-type]
                for _ in range(200)]

    assert max(pauses(1)) <= 0.05 < max(pauses(8))  # grows with the command's retries
    assert max(pauses(4)) <= 0.05 * 8
    assert min(pauses(30)) > 0 and max(pauses(30)) <= 2.0  # capped, never zero


@pytest.mark.parametrize("fault", [transport_down, deadline])
def test_transport_failure_is_retried_with_backoff(engine: Engine, fault: object) -> None:
    h = Harness(engine)
    [cid] = h.enqueue()
    h.fabric.faults["prepare"].append(fault)  # type: ignore[arg-type]

    assert h.step() == [Outcome.RETRY]
    record = h.outbox.get(cid)
    assert record.status == CommandStatus.PENDING and record.error_code in {"UNAVAILABLE", "DEADLINE_EXCEEDED"}
    delay = (record.next_attempt_at - h.clock.now).total_seconds()
    assert 0 < delay <= SETTINGS.backoff_base_s
    assert h.step() == []  # not due yet
    assert h.step(advance_s=delay) == [Outcome.COMMITTED]
    assert h.fabric.valid_effects() == {cid: 1}
    assert h.sample("fabric_transaction_submissions_total", status="error") == 1


def test_transport_failure_after_the_tx_is_stored_resends_the_same_transaction(engine: Engine) -> None:
    h = Harness(engine)
    [cid] = h.enqueue()
    h.fabric.faults["after_submit"].append(deadline)  # on the ledger, but the answer was lost

    assert h.step() == [Outcome.RETRY]
    stored = h.outbox.get(cid).fabric_tx_id
    assert stored is not None
    assert h.step(advance_s=60) == [Outcome.COMMITTED]
    assert h.outbox.get(cid).fabric_tx_id == stored
    assert h.fabric.calls["prepare"] == 1  # no second transaction was made
    assert h.fabric.valid_effects() == {cid: 1}


@pytest.mark.parametrize("crash_point", ["prepare", "submit", "after_submit", "after_commit"])
def test_crash_at_any_point_neither_loses_nor_duplicates_the_command(engine: Engine, crash_point: str) -> None:
    h = Harness(engine)
    [cid] = h.enqueue()
    h.fabric.faults[crash_point].append(crash)

    with pytest.raises(Crash):
        h.step()
    assert h.outbox.get(cid).status == CommandStatus.PROCESSING  # the dead worker still holds the lease

    h.submitter = h.new_submitter("w2")  # restart
    assert h.step() == []  # the lease has not expired yet
    assert h.step(advance_s=SETTINGS.lease_s + 1) == [Outcome.COMMITTED]

    record = h.outbox.get(cid)
    assert record.status == CommandStatus.COMMITTED and record.attempts == 2
    assert h.fabric.valid_effects() == {cid: 1}
    if crash_point != "prepare":
        # the reclaimed command asked for its stored tx by ID before sending anything
        assert h.fabric.calls["prepare"] == 1
    if crash_point in {"after_submit", "after_commit"}:
        assert h.fabric.calls["submit"] == 1  # already on the ledger: nothing re-sent


def test_a_resent_envelope_is_refused_by_the_ledger_as_a_duplicate(engine: Engine) -> None:
    h = Harness(engine)
    [cid] = h.enqueue()
    h.fabric.faults["after_submit"].append(crash)
    with pytest.raises(Crash):
        h.step()
    # The status lookup of the restarted worker times out once: it re-sends the same envelope.
    h.fabric.faults["status"].append(lambda: None)
    tx_id = h.outbox.get(cid).fabric_tx_id
    assert tx_id is not None
    saved = h.fabric.ledger.pop(tx_id)  # the peer has not seen it yet (still with the orderer)
    h.submitter = h.new_submitter("w2")
    assert h.step(advance_s=SETTINGS.lease_s + 1) == [Outcome.COMMITTED]
    h.fabric.ledger.setdefault(saved.tx_id, saved)
    assert h.fabric.calls["prepare"] == 1 and h.fabric.calls["submit"] == 2
    assert h.fabric.valid_effects() == {cid: 1}


def test_attempts_exhausted_go_to_the_dlq(engine: Engine) -> None:
    h = Harness(engine, settings=SETTINGS.model_copy(update={"breaker_failure_threshold": 100}))
    [cid] = h.enqueue()
    h.fabric.faults["prepare"].extend([transport_down] * SETTINGS.max_attempts)

    outcomes = [h.step(advance_s=60) for _ in range(SETTINGS.max_attempts)]

    assert outcomes[-1] == [Outcome.DLQ]
    record = h.outbox.get(cid)
    assert record.status == CommandStatus.DLQ and record.attempts == SETTINGS.max_attempts
    [letter] = h.outbox.dead_letters()
    assert letter.final_status == "DLQ" and "attempts exhausted" in (letter.error_message or "")
    assert h.fabric.valid_effects() == {}


def test_breaker_opens_after_consecutive_transport_failures_and_commands_stay_pending(engine: Engine) -> None:
    h = Harness(engine, settings=SETTINGS.model_copy(update={"batch_size": 1, "max_in_flight": 1}))
    ids = h.enqueue(5)
    h.fabric.faults["prepare"].extend([transport_down] * 3)

    for _ in range(3):
        assert h.step(advance_s=60) == [Outcome.RETRY]
    assert h.submitter.breaker.state is BreakerState.OPEN
    assert h.sample("circuit_breaker_state") == 1.0

    assert h.step(advance_s=60) == []  # open: nothing claimed, nothing submitted
    assert h.fabric.calls["prepare"] == 3
    assert {h.outbox.get(i).status for i in ids} == {CommandStatus.PENDING}

    h.mono.advance(SETTINGS.breaker_cooldown_s)
    assert h.submitter.breaker.state is BreakerState.HALF_OPEN
    assert h.step() == [Outcome.COMMITTED]  # the status probe closed the breaker, then one command was claimed
    assert h.fabric.calls["status"] >= 1
    assert h.submitter.breaker.state is BreakerState.CLOSED
    assert h.sample("circuit_breaker_state") == 0.0


def test_a_failed_half_open_probe_opens_the_breaker_again_without_touching_a_command(engine: Engine) -> None:
    h = Harness(engine)
    ids = h.enqueue(3)
    h.fabric.faults["prepare"].extend([transport_down] * 3)
    assert h.step() == [Outcome.RETRY] * 3
    assert h.submitter.breaker.state is BreakerState.OPEN
    h.mono.advance(SETTINGS.breaker_cooldown_s)
    h.fabric.faults["status"].append(transport_down)
    assert h.step(advance_s=60) == []  # the probe (a status query) fails: nothing claimed
    assert h.submitter.breaker.state is BreakerState.OPEN
    assert h.fabric.calls["prepare"] == 3 and h.fabric.calls["status"] == 1
    # The failure that opened the breaker is the outage's: it gives its attempt back.
    assert sorted(h.outbox.get(i).attempts for i in ids) == [0, 1, 1]
    h.mono.advance(SETTINGS.breaker_cooldown_s)
    assert h.step(advance_s=60) == [Outcome.COMMITTED]  # the probe passes; one command goes as the trial
    assert h.submitter.breaker.state is BreakerState.CLOSED  # and its commit closes the breaker
    assert h.step(advance_s=60) == [Outcome.COMMITTED] * 2


def test_a_long_outage_costs_waiting_commands_no_attempts_and_sends_nothing_to_the_dlq(engine: Engine) -> None:
    # One attempt allowed, and the first transport failure opens the breaker: without the outage rule the command
    # would be in the DLQ at once.
    h = Harness(engine, settings=SETTINGS.model_copy(update={"max_attempts": 1, "breaker_failure_threshold": 1,
                                                             "batch_size": 1}))
    [cid, waiting] = h.enqueue(2)
    h.fabric.faults["prepare"].append(transport_down)
    h.fabric.faults["status"].extend([transport_down] * 20)
    assert h.step(advance_s=60) == [Outcome.RETRY]  # attempt 1 of 1 failed, yet the command is not dead-lettered
    assert h.submitter.breaker.state is BreakerState.OPEN
    for _ in range(20):  # twenty cool-downs of a dead Gateway: every probe fails, no command is claimed
        h.mono.advance(SETTINGS.breaker_cooldown_s)
        assert h.step(advance_s=60) == []
        assert h.submitter.breaker.state is BreakerState.OPEN
    assert {h.outbox.get(i).status for i in (cid, waiting)} == {CommandStatus.PENDING}
    assert h.outbox.dead_letters() == []
    h.mono.advance(SETTINGS.breaker_cooldown_s)  # the Gateway is back
    assert h.step(advance_s=60) == [Outcome.COMMITTED]
    assert h.step(advance_s=60) == [Outcome.COMMITTED]
    assert h.fabric.valid_effects() == {cid: 1, waiting: 1}


def test_claimed_commands_are_released_untouched_when_the_breaker_opens_mid_batch(engine: Engine) -> None:
    h = Harness(engine)
    [cid] = h.enqueue()
    h.submitter.breaker.record_failure()
    h.submitter.breaker.record_failure()
    h.submitter.breaker.record_failure()
    claimed = h.outbox.claim("w1", 1, 30)
    assert asyncio.run(h.submitter.process(claimed[0])) == Outcome.RELEASED
    record = h.outbox.get(cid)
    assert record.status == CommandStatus.PENDING and record.attempts == 0 and record.lease_owner is None


def test_many_transactions_are_in_flight_at_once_within_the_bound(engine: Engine) -> None:
    settings = SETTINGS.model_copy(update={"batch_size": 8, "max_in_flight": 8})
    h = Harness(engine, FakeFabric(submit_latency_s=0.05), settings=settings)
    ids = h.enqueue(20)

    async def drain() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(h.submitter.run(stop))
        for _ in range(200):
            await asyncio.sleep(0.02)
            if len(h.fabric.valid_effects()) == len(ids) and not h.submitter._in_flight:
                break
        stop.set()
        await task

    asyncio.run(drain())
    assert h.fabric.valid_effects() == dict.fromkeys(ids, 1)
    assert 1 < h.fabric.max_in_flight <= 8
    assert h.outbox.counts()["COMMITTED"] == 20


def test_a_worker_that_lost_its_lease_cannot_record_an_outcome(engine: Engine) -> None:
    h = Harness(engine)
    [cid] = h.enqueue()
    h.outbox.claim("w1", 1, 30)
    h.clock.advance(31)
    h.outbox.claim("w2", 1, 30)
    from gxlib.backend.errors import LeaseLostError

    with pytest.raises(LeaseLostError) as info:
        h.outbox.mark_committed(cid, "w1", 7)
    assert info.value.command_id == cid
    h.outbox.mark_committed(cid, "w2", 7)


def test_transport_error_carries_code() -> None:
    err = TransportError("down", code="UNAVAILABLE", tx_id="t1")
    assert err.tx_id == "t1" and "UNAVAILABLE" in str(err)


@pytest.mark.parametrize("also_retry_fails", [False, True])
def test_a_database_failure_while_recording_the_outcome_never_duplicates(engine: Engine,
                                                                        monkeypatch: pytest.MonkeyPatch,
                                                                        also_retry_fails: bool) -> None:
    from sqlalchemy.exc import OperationalError

    h = Harness(engine)
    [cid] = h.enqueue()

    def database_gone(*args: object, **kwargs: object) -> None:
        raise OperationalError("UPDATE outbox_commands", {}, Exception("connection lost"))

    with monkeypatch.context() as patch:
        patch.setattr(h.outbox, "mark_committed", database_gone)
        if also_retry_fails:
            patch.setattr(h.outbox, "schedule_retry", database_gone)
            assert h.step() == [Outcome.ABANDONED]
            assert h.outbox.get(cid).status == CommandStatus.PROCESSING  # reclaimed when the lease expires
        else:
            assert h.step() == [Outcome.RETRY]  # back to PENDING with its tx ID kept
    h.submitter = h.new_submitter("w2")
    assert h.step(advance_s=SETTINGS.lease_s + 1) == [Outcome.COMMITTED]
    assert h.fabric.valid_effects() == {cid: 1} and h.fabric.calls["submit"] == 1


def _run_briefly(submitter: Submitter, seconds: float = 0.6) -> None:
    async def main() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(seconds, stop.set)
        await submitter.run(stop)

    asyncio.run(main())


def test_an_orderer_outage_keeps_the_breaker_from_closing_and_risks_one_command_per_cool_down(
        engine: Engine) -> None:
    # The Gateway peer answers (the probe, a status query, passes) but nothing reaches the orderer: before, the
    # probe closed the breaker, a whole batch failed once per cool-down, and circuit_breaker_state read 0 at those
    # moments — FabricCircuitBreakerOpen (min_over_time(...[1m]) > 0) never fired through a long outage.
    h = Harness(engine)
    ids = h.enqueue(6)
    h.fabric.faults["submit"].extend([transport_down] * 100)
    assert h.step() == [Outcome.RETRY] * 6  # the outage begins: the breaker opens
    assert h.submitter.breaker.state is BreakerState.OPEN
    gauge = []
    for _ in range(5):  # five cool-downs of the outage
        h.mono.advance(SETTINGS.breaker_cooldown_s)
        submits = h.fabric.calls["submit"]
        assert h.step(advance_s=60) == [Outcome.RETRY]  # probe passed: exactly one trial command, which fails
        assert h.fabric.calls["submit"] == submits + 1
        gauge.append(h.sample("circuit_breaker_state"))
        assert h.submitter.breaker.state is BreakerState.OPEN
    assert min(gauge) > 0
    assert h.outbox.dead_letters() == []
    h.fabric.faults["submit"].clear()  # the orderer is back
    h.mono.advance(SETTINGS.breaker_cooldown_s)
    assert h.step(advance_s=60) == [Outcome.COMMITTED]
    assert h.submitter.breaker.state is BreakerState.CLOSED
    assert h.step(advance_s=60) == [Outcome.COMMITTED] * 5
    assert h.fabric.valid_effects() == {i: 1 for i in ids}


def test_an_idle_half_open_breaker_probes_the_gateway_and_closes(engine: Engine) -> None:
    h = Harness(engine)
    for _ in range(SETTINGS.breaker_failure_threshold):
        h.submitter.breaker.record_failure()
    h.mono.advance(SETTINGS.breaker_cooldown_s)
    assert h.submitter.breaker.state is BreakerState.HALF_OPEN
    _run_briefly(h.submitter)  # no command to probe with
    assert h.submitter.breaker.state is BreakerState.CLOSED
    assert h.fabric.calls["status"] >= 1 and h.fabric.calls["prepare"] == 0


def test_an_idle_probe_of_a_dead_gateway_opens_the_breaker_again(engine: Engine) -> None:
    h = Harness(engine)
    for _ in range(SETTINGS.breaker_failure_threshold):
        h.submitter.breaker.record_failure()
    h.mono.advance(SETTINGS.breaker_cooldown_s)
    h.fabric.faults["status"].extend([transport_down] * 50)
    _run_briefly(h.submitter)
    assert h.submitter.breaker.state is BreakerState.OPEN


def test_differing_endorsements_are_endorsed_again_and_do_not_trip_the_breaker(engine: Engine) -> None:
    from gxlib.backend.txgateway import EndorsementMismatchError

    def payloads_differ() -> None:
        raise EndorsementMismatchError("failed to collect enough transaction endorsements")

    h = Harness(engine, settings=SETTINGS.model_copy(update={"breaker_failure_threshold": 1}))
    [cid] = h.enqueue()
    h.fabric.faults["prepare"].extend([payloads_differ] * 3)
    for _ in range(3):
        assert h.step(advance_s=60) == [Outcome.RETRY]
        assert h.submitter.breaker.state is BreakerState.CLOSED
    assert h.step(advance_s=60) == [Outcome.COMMITTED]
    assert h.fabric.valid_effects() == {cid: 1}


def test_the_fabric_gateway_tells_differing_endorsements_from_an_unreachable_peer() -> None:
    import grpc

    from gxlib.backend.fabric_tx import FabricTxGateway
    from gxlib.backend.txgateway import EndorsementMismatchError
    from gxlib.fabric import errors as fabric_errors

    def endorse_error(detail: str) -> fabric_errors.EndorseError:
        return fabric_errors.EndorseError(
            "failed to collect enough transaction endorsements", code=grpc.StatusCode.ABORTED,
            details=(fabric_errors.ErrorDetail("127.0.0.1:9051", "Org2MSP", detail),))

    class Contract:
        def __init__(self, error: Exception) -> None:
            self.error = error

        def new_proposal(self, function: str, *args: str) -> Any:
            return type("Proposal", (), {"tx_id": "t" * 64})()

        async def endorse(self, proposal: Any) -> Any:
            raise self.error

    def gateway_raising(error: Exception) -> FabricTxGateway:
        gateway = FabricTxGateway({}, "ch", "cc")
        contract = Contract(error)
        network = type("Network", (), {"contract": lambda self, name: contract})()
        gateway._gateway = lambda identity: type("G", (), {"network": lambda self, ch: network})()  # type: ignore
        return gateway

    request = TxRequest("c1", "TokenomicsContract:Mint", ("a", "1"), FabricIdentity.SUPER_ADMIN)
    with pytest.raises(EndorsementMismatchError):
        asyncio.run(gateway_raising(endorse_error("ProposalResponsePayloads do not match")).prepare(request))
    with pytest.raises(TransportError) as info:
        asyncio.run(gateway_raising(endorse_error("connection refused")).prepare(request))
    assert info.value.code == "UNAVAILABLE" and info.value.tx_id == "t" * 64
