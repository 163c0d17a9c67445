"""The Gateway client's requests and answers, against a fake Gateway service on loopback TLS."""

from __future__ import annotations

import asyncio

import pytest
from fabric_protos.peer import transaction_pb2

from gxlib.fabric.errors import CommitError, EndorseError
from gxlib.fabric.gateway import Gateway
from gxlib.fabric.sync import SyncGateway

from .fake_gateway import FakeGateway, with_gateway


def test_submit_endorses_sends_the_signed_envelope_and_waits_for_a_valid_commit() -> None:
    async def body(gateway: Gateway, fake: FakeGateway) -> None:
        contract = gateway.network("ch").contract("cc", "Token")
        result = await contract.submit("Mint", "acct", "5")
        assert result.result == b"endorsed:5"
        assert (result.status.code_name, result.status.block_number) == ("VALID", 7)
        assert len(fake.submitted) == 1
        assert await contract.evaluate("Balance", "acct") == b"Token:Balance|acct"

    with_gateway(body)


def test_many_submits_share_one_connection_concurrently() -> None:
    async def body(gateway: Gateway, fake: FakeGateway) -> None:
        contract = gateway.network("ch").contract("cc")
        results = await asyncio.gather(*(contract.submit("Put", str(i)) for i in range(50)))
        assert len({r.tx_id for r in results}) == 50 and len(fake.submitted) == 50

    with_gateway(body)


def test_an_invalidated_transaction_raises_commit_error_and_a_rejection_raises_endorse_error() -> None:
    async def body(gateway: Gateway, fake: FakeGateway) -> None:
        contract = gateway.network("ch").contract("cc")
        prepared = await contract.prepare("Put", "k")
        fake.commit_codes[prepared.tx_id] = transaction_pb2.MVCC_READ_CONFLICT
        with pytest.raises(CommitError) as commit:
            await contract.submit_prepared(prepared)
        assert (commit.value.code, commit.value.tx_id) == ("MVCC_READ_CONFLICT", prepared.tx_id)
        with pytest.raises(EndorseError) as endorse:
            await contract.submit("Fail", "remark cannot be empty")
        assert endorse.value.chaincode_message == "remark cannot be empty"
        assert endorse.value.details[0].address == "peer0:7051"

    with_gateway(body)


def test_the_sync_facade_runs_on_its_own_loop_and_returns_plain_results() -> None:
    async def body(gateway: Gateway, fake: FakeGateway) -> None:
        def blocking() -> bytes:
            with SyncGateway(gateway.endpoint, gateway.identity, gateway.signer) as sync:
                contract = sync.network("ch").contract("cc")
                assert contract.submit("Put", "x").status.successful
                return contract.evaluate("Get", "x")

        # From another thread: the fake server needs this loop free while the facade blocks.
        assert await asyncio.to_thread(blocking) == b"Get|x"

    with_gateway(body)
