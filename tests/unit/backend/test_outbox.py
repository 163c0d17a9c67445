"""The outbox repository on SQLite and PostgreSQL: idempotent enqueue (also racing), leases, fencing, DLQ."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from gxlib.backend.errors import IdempotencyConflictError, InvalidPayloadError, LeaseLostError
from gxlib.backend.models import CommandStatus, OutboxCommand
from gxlib.backend.outbox import Outbox
from tests.unit.backend.helpers import FakeClock, mint_payload


def rows(engine: Engine) -> int:
    with Session(engine) as s:
        return int(s.scalar(select(func.count()).select_from(OutboxCommand)) or 0)


def test_enqueue_stores_a_pending_command_with_its_canonical_payload(engine: Engine) -> None:
    outbox = Outbox(engine)
    result = outbox.enqueue("MINT", {"accountId": "a", "amount": 2**64 - 1, "remark": "max"}, "k")
    assert result.created
    record = outbox.get(result.command.id)
    assert record.status == CommandStatus.PENDING and record.attempts == 0
    assert record.payload == {"accountId": "a", "amount": 2**64 - 1, "remark": "max"}
    assert record.created_at.tzinfo is not None


def test_a_repeated_key_returns_the_original_command_and_writes_no_second_row(engine: Engine) -> None:
    outbox = Outbox(engine)
    first = outbox.enqueue("MINT", mint_payload(), "same-key")
    again = outbox.enqueue("MINT", mint_payload(), "same-key")
    assert not again.created and again.command.id == first.command.id
    assert rows(engine) == 1


def test_a_reused_key_with_a_different_payload_is_refused(engine: Engine) -> None:
    outbox = Outbox(engine)
    first = outbox.enqueue("MINT", mint_payload(amount=1), "k")
    with pytest.raises(IdempotencyConflictError) as info:
        outbox.enqueue("MINT", mint_payload(amount=2), "k")
    assert info.value.command_id == first.command.id and rows(engine) == 1


def test_concurrent_enqueues_with_one_key_make_exactly_one_row(engine: Engine) -> None:
    outbox = Outbox(engine)
    barrier = threading.Barrier(8)

    def enqueue(_: int) -> tuple[str, bool]:
        barrier.wait()
        result = outbox.enqueue("MINT", mint_payload(), "racing-key")
        return result.command.id, result.created

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(enqueue, range(8)))
    assert len({cid for cid, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert rows(engine) == 1


def test_an_invalid_payload_never_reaches_the_table(engine: Engine) -> None:
    outbox = Outbox(engine)
    with pytest.raises(InvalidPayloadError) as info:
        outbox.enqueue("MINT", {"accountId": "a", "amount": 0, "remark": "r"}, "k")
    assert info.value.parameter == "amount"
    assert rows(engine) == 0


def test_claim_leases_due_commands_oldest_first_and_counts_an_attempt(engine: Engine) -> None:
    clock = FakeClock()
    outbox = Outbox(engine, clock=clock)
    ids = []
    for i in range(5):
        ids.append(outbox.enqueue("MINT", mint_payload(i), f"k{i}").command.id)
        clock.advance(1)
    claimed = outbox.claim("w1", 3, lease_s=30)
    assert [c.id for c in claimed] == ids[:3]
    assert all(c.status == CommandStatus.PROCESSING and c.lease_owner == "w1" and c.attempts == 1 for c in claimed)
    assert [c.id for c in outbox.claim("w2", 10, lease_s=30)] == ids[3:]
    assert outbox.claim("w3", 10, lease_s=30) == []


def test_an_expired_lease_is_reclaimed_and_the_old_owner_is_fenced_off(engine: Engine) -> None:
    clock = FakeClock()
    outbox = Outbox(engine, clock=clock)
    cid = outbox.enqueue("MINT", mint_payload(), "k").command.id
    outbox.claim("w1", 1, lease_s=10)
    outbox.record_tx(cid, "w1", "tx-1", b"envelope")
    clock.advance(9)
    assert outbox.claim("w2", 1, lease_s=10) == []
    clock.advance(2)
    [reclaimed] = outbox.claim("w2", 1, lease_s=10)
    assert reclaimed.lease_owner == "w2" and reclaimed.attempts == 2
    assert (reclaimed.fabric_tx_id, reclaimed.tx_envelope) == ("tx-1", b"envelope")
    with pytest.raises(LeaseLostError):
        outbox.mark_committed(cid, "w1", 3)
    outbox.mark_committed(cid, "w2", 3)
    record = outbox.get(cid)
    assert record.status == CommandStatus.COMMITTED and record.block_number == 3 and record.lease_owner is None


def test_a_retry_is_not_due_before_its_time_and_can_forget_the_transaction(engine: Engine) -> None:
    clock = FakeClock()
    outbox = Outbox(engine, clock=clock)
    cid = outbox.enqueue("MINT", mint_payload(), "k").command.id
    outbox.claim("w1", 1, lease_s=10)
    outbox.record_tx(cid, "w1", "tx-1", b"e")
    outbox.schedule_retry(cid, "w1", 5, code="MVCC_READ_CONFLICT", message="conflict", keep_tx=False)
    assert outbox.claim("w1", 1, lease_s=10) == []
    clock.advance(5)
    [again] = outbox.claim("w1", 1, lease_s=10)
    assert again.fabric_tx_id is None and again.tx_envelope is None and again.error_code == "MVCC_READ_CONFLICT"
    assert again.first_submitted_at is not None


def test_failed_and_dlq_commands_are_copied_to_the_dead_letter_table(engine: Engine) -> None:
    outbox = Outbox(engine)
    a = outbox.enqueue("MINT", mint_payload(1), "a").command.id
    b = outbox.enqueue("MINT", mint_payload(2), "b").command.id
    outbox.claim("w", 2, lease_s=10)
    outbox.mark_failed(a, "w", code="ENDORSEMENT_REJECTED", message="accountID cannot be empty")
    outbox.move_to_dlq(b, "w", code="UNAVAILABLE", message="10 attempts exhausted")
    letters = {d.command_id: d for d in outbox.dead_letters()}
    assert letters[a].final_status == "FAILED" and letters[a].error_message == "accountID cannot be empty"
    assert letters[b].final_status == "DLQ"
    counts = outbox.counts()
    assert counts["FAILED"] == 1 and counts["DLQ"] == 1 and counts["dlq_rows"] == 2
    with pytest.raises(LeaseLostError):
        outbox.mark_failed(a, "w", code="X", message="again")


def test_release_gives_a_command_back_without_counting_the_attempt(engine: Engine) -> None:
    outbox = Outbox(engine)
    cid = outbox.enqueue("MINT", mint_payload(), "k").command.id
    outbox.claim("w", 1, lease_s=10)
    outbox.release(cid, "w")
    record = outbox.get(cid)
    assert record.status == CommandStatus.PENDING and record.attempts == 0 and record.lease_owner is None


def test_concurrent_claimers_never_take_the_same_command(engine: Engine) -> None:
    outbox = Outbox(engine)
    for i in range(200):
        outbox.enqueue("MINT", mint_payload(i), f"k{i}")
    barrier = threading.Barrier(6)

    def claimer(n: int) -> list[str]:
        barrier.wait()
        taken: list[str] = []
        while batch := outbox.claim(f"w{n}", 7, lease_s=60):
            taken += [c.id for c in batch]
        return taken

    with ThreadPoolExecutor(6) as pool:
        taken = [cid for ids in pool.map(claimer, range(6)) for cid in ids]
    assert len(taken) == 200 and len(set(taken)) == 200
