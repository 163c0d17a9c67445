"""Commit statuses from one filtered-block stream per channel, with the per-transaction commit-status call as the
authority whenever the stream cannot vouch for a transaction (against the fake Gateway and Deliver services)."""

from __future__ import annotations

import asyncio

import pytest
from fabric_protos.peer import transaction_pb2

from gxlib.fabric.commits import CommitStreamSettings
from gxlib.fabric.errors import CommitError
from gxlib.fabric.gateway import Gateway

from .fake_gateway import FakeGateway, with_gateway


async def _until_live(gateway: Gateway, channel: str) -> None:
    """Send one transaction (it opens the stream) and wait until the stream has delivered its first block."""
    await gateway.network(channel).contract("cc").submit("Put", "opener")
    for _ in range(200):
        if gateway.commit_stream_live(channel):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the commit-status stream never became live")


def test_submits_learn_their_commit_from_the_block_stream_without_a_commit_status_call_each() -> None:
    async def body(gateway: Gateway, fake: FakeGateway) -> None:
        await _until_live(gateway, "ch")
        calls_before = fake.commit_status_calls
        contract = gateway.network("ch").contract("cc")
        results = await asyncio.gather(*(contract.submit("Put", str(i)) for i in range(20)))
        assert all(r.status.code_name == "VALID" for r in results)
        assert all(r.status.block_number > 100 for r in results)  # from the stream's blocks, not the fake's 7
        assert fake.commit_status_calls == calls_before
        assert fake.deliver is not None and fake.deliver.streams_opened == 1

    with_gateway(body, deliver=True)


def test_an_invalidation_code_from_the_stream_is_confirmed_by_the_peers_commit_status() -> None:
    # A re-sent envelope whose first copy committed before the stream watched it shows up as DUPLICATE_TXID in the
    # stream; the ledger's status of that tx ID is the first copy's, and that is what the caller must get.
    async def body(gateway: Gateway, fake: FakeGateway) -> None:
        await _until_live(gateway, "ch")
        contract = gateway.network("ch").contract("cc")
        proposal = contract.new_proposal("Put", "again")
        assert fake.deliver is not None
        fake.deliver.stream_codes[proposal.tx_id] = transaction_pb2.DUPLICATE_TXID
        result = await contract.submit_prepared(await contract.endorse(proposal))
        assert (result.status.code_name, result.status.block_number) == ("VALID", 7)

        rejected = contract.new_proposal("Put", "conflict")
        fake.commit_codes[rejected.tx_id] = transaction_pb2.MVCC_READ_CONFLICT
        with pytest.raises(CommitError, match="MVCC_READ_CONFLICT"):
            await contract.submit_prepared(await contract.endorse(rejected))

    with_gateway(body, deliver=True)


def test_when_the_stream_breaks_a_waiting_submit_gets_its_status_from_the_peer() -> None:
    async def body(gateway: Gateway, fake: FakeGateway) -> None:
        await _until_live(gateway, "ch")
        assert fake.deliver is not None
        fake.deliver.hold = True  # ordered, but no block comes
        calls_before = fake.commit_status_calls
        submit = asyncio.create_task(gateway.network("ch").contract("cc").submit("Put", "x"))
        while not fake.submitted or len(fake.submitted) < 2:
            await asyncio.sleep(0.01)
        fake.deliver.break_streams()
        result = await asyncio.wait_for(submit, 10)
        assert (result.status.code_name, result.status.block_number) == ("VALID", 7)
        assert fake.commit_status_calls == calls_before + 1
        assert not gateway.commit_stream_live("ch")

    with_gateway(body, deliver=True, gateway_options={"commit_stream": CommitStreamSettings(retry_after_s=60)})


def test_a_status_the_stream_does_not_deliver_in_time_comes_from_the_peer_within_the_deadline() -> None:
    async def body(gateway: Gateway, fake: FakeGateway) -> None:
        await _until_live(gateway, "ch")
        assert fake.deliver is not None
        fake.deliver.hold = True  # the stream is behind: the block never arrives
        result = await gateway.network("ch").contract("cc").submit("Put", "late", commit_timeout=0.5)
        assert (result.status.code_name, result.status.block_number) == ("VALID", 7)

    with_gateway(body, deliver=True, gateway_options={"commit_stream": CommitStreamSettings(final_check_s=0.2)})


def test_cancelling_one_wait_for_a_transaction_sends_the_other_waits_to_the_peer_not_into_cancellation() -> None:
    # Two waits for one tracked tx ID share its waiter: cancelling one must not cancel the other caller.
    async def body(gateway: Gateway, fake: FakeGateway) -> None:
        await _until_live(gateway, "ch")
        assert fake.deliver is not None
        fake.deliver.hold = True
        network = gateway.network("ch")
        prepared = await network.contract("cc").prepare("Put", "twice")
        await network.submit(prepared)
        first = asyncio.create_task(network.commit_status(prepared.tx_id))
        second = asyncio.create_task(network.commit_status(prepared.tx_id))
        await asyncio.sleep(0.05)
        calls_before = fake.commit_status_calls
        first.cancel()
        status = await asyncio.wait_for(second, 10)
        assert (status.code_name, status.block_number) == ("VALID", 7)
        assert fake.commit_status_calls == calls_before + 1
        with pytest.raises(asyncio.CancelledError):
            await first

    with_gateway(body, deliver=True)


def test_a_status_asked_for_a_transaction_not_sent_through_this_gateway_comes_from_the_peer() -> None:
    async def body(gateway: Gateway, fake: FakeGateway) -> None:
        await _until_live(gateway, "ch")
        calls_before = fake.commit_status_calls
        status = await gateway.network("ch").commit_status("ab" * 32)
        assert (status.code_name, status.block_number) == ("VALID", 7)
        assert fake.commit_status_calls == calls_before + 1

    with_gateway(body, deliver=True)


def test_without_block_delivery_every_commit_status_is_asked_of_the_peer() -> None:
    async def body(gateway: Gateway, fake: FakeGateway) -> None:
        contract = gateway.network("ch").contract("cc")
        for i in range(3):
            await contract.submit("Put", str(i))
            await asyncio.sleep(0.05)
        assert fake.commit_status_calls == 3
        assert not gateway.commit_stream_live("ch")

    with_gateway(body)  # no Deliver service: the stream is refused (UNIMPLEMENTED)


def test_a_disabled_commit_stream_is_never_opened() -> None:
    async def body(gateway: Gateway, fake: FakeGateway) -> None:
        contract = gateway.network("ch").contract("cc")
        for i in range(3):
            await contract.submit("Put", str(i))
        assert fake.deliver is not None and fake.deliver.streams_opened == 0
        assert fake.commit_status_calls == 3

    with_gateway(body, deliver=True, gateway_options={"commit_stream": CommitStreamSettings(enabled=False)})


def test_commit_stream_settings_refuse_nonsense() -> None:
    with pytest.raises(ValueError, match="max_tracked"):
        CommitStreamSettings(max_tracked=0)
    with pytest.raises(ValueError, match="negative"):
        CommitStreamSettings(final_check_s=-1)


def test_beyond_max_tracked_the_oldest_transaction_gets_its_status_from_the_peer() -> None:
    async def body(gateway: Gateway, fake: FakeGateway) -> None:
        await _until_live(gateway, "ch")
        assert fake.deliver is not None
        fake.deliver.hold = True
        contract, network = gateway.network("ch").contract("cc"), gateway.network("ch")
        first, second = await contract.prepare("Put", "a"), await contract.prepare("Put", "b")
        await network.submit(first)
        await network.submit(second)  # one tracked at most: the first is released
        fake.deliver.cut()
        calls_before = fake.commit_status_calls
        assert (await network.commit_status(second.tx_id)).block_number > 100
        assert fake.commit_status_calls == calls_before
        assert (await network.commit_status(first.tx_id)).block_number == 7
        assert fake.commit_status_calls == calls_before + 1

    with_gateway(body, deliver=True, gateway_options={"commit_stream": CommitStreamSettings(max_tracked=1)})
