"""Evaluate, submit, events, commit status, MVCC and re-sent envelopes with the test chaincode on the devnet."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from gxlib.bench.submits import bench_submits
from gxlib.devnet.network import Devnet
from gxlib.fabric.block import block_transactions
from gxlib.fabric.checkpoint import Checkpoint, InMemoryCheckpointer
from gxlib.fabric.contract import Contract
from gxlib.fabric.errors import CommitError, EndorseError, EvaluateError
from gxlib.fabric.events import ChaincodeEvent, ChaincodeEventStream
from gxlib.fabric.gateway import Gateway
from gxlib.fabric.network import Network
from gxlib.fabric.sync import SyncGateway
from gxlib.fabric.transaction import PreparedTransaction
from tests.integration.conftest import DeployedChaincode

pytestmark = pytest.mark.integration

T = TypeVar("T")


def _with_contract(env: dict[str, Any], cc: DeployedChaincode,
                   body: Callable[[Network, Contract], Awaitable[T]], identity: str = "service") -> T:
    async def run() -> T:
        async with Gateway.from_environment(env, identity) as gateway:
            network = gateway.network(cc.channel)
            return await body(network, network.contract(cc.name, cc.contract))

    return asyncio.run(run())


async def _events(stream: ChaincodeEventStream, count: int, timeout: float = 30) -> list[ChaincodeEvent]:
    got: list[ChaincodeEvent] = []

    async def consume() -> None:
        async for event in stream:
            got.append(event)
            if len(got) == count:
                stream.close()

    await asyncio.wait_for(consume(), timeout)
    return got


def test_submit_then_evaluate_round_trip(client_env, test_chaincode: DeployedChaincode) -> None:
    async def body(network: Network, contract: Contract) -> None:
        result = await contract.submit("Put", "round-trip", "v1")
        assert result.status.successful and result.status.block_number > 0
        assert await contract.evaluate("Get", "round-trip") == b"v1"
        assert (await network.transaction_status(result.tx_id)) == result.status
        who = json.loads(await contract.evaluate("Whoami"))
        assert who["mspId"] == "Org1MSP" and who["cn"].startswith("GxService@")

    _with_contract(client_env, test_chaincode, body)


def test_a_chaincode_rejection_is_an_endorse_error_with_its_message_and_writes_nothing(
        client_env, test_chaincode: DeployedChaincode) -> None:
    async def body(network: Network, contract: Contract) -> None:
        with pytest.raises(EndorseError) as caught:
            await contract.submit("Fail", "amount must be greater than zero")
        assert caught.value.chaincode_message == "amount must be greater than zero"
        assert caught.value.chaincode_status == 500
        assert caught.value.tx_id and caught.value.details
        with pytest.raises(EvaluateError, match="does not exist"):
            await contract.evaluate("Get", "fail-never-written")

    _with_contract(client_env, test_chaincode, body)


def test_an_event_arrives_with_its_payload_and_block_and_tx_position_and_resumes_after_its_checkpoint(
        client_env, test_chaincode: DeployedChaincode) -> None:
    async def body(network: Network, contract: Contract) -> None:
        first = await contract.submit("Emit", "ev-1", "hello")
        second = await contract.submit("Emit", "ev-2", "world")
        start = Checkpoint.start_of(first.status.block_number)
        events = await _events(network.chaincode_events(test_chaincode.name, start=start), 2)
        assert [e.tx_id for e in events] == [first.tx_id, second.tx_id]
        assert [e.block_number for e in events] == [first.status.block_number, second.status.block_number]
        blocks = [b async for b in network.blocks(first.status.block_number, first.status.block_number)]
        assert [t.tx_id for t in block_transactions(blocks[0])][events[0].tx_index] == first.tx_id
        assert events[0].event_name == "TestEvent"  # the last SetEvent of the transaction wins
        payload = json.loads(events[0].payload)
        assert (payload["key"], payload["payload"]) == ("ev-1", "hello")
        assert abs(events[0].timestamp.timestamp() - payload["timestamp"]) < 1

        # A consumer that handled the first event resumes with the second, and sees a new one: no loss, no repeat.
        checkpointer = InMemoryCheckpointer(events[0].position)
        stream = network.chaincode_events(test_chaincode.name, checkpointer=checkpointer)
        consumer = asyncio.ensure_future(_events(stream, 2))
        third = await contract.submit("Emit", "ev-3", "again")
        resumed = await consumer
        assert [e.tx_id for e in resumed] == [second.tx_id, third.tx_id]

    _with_contract(client_env, test_chaincode, body)


def test_two_hundred_concurrent_submits_on_one_connection_all_commit_valid(
        client_env, test_chaincode: DeployedChaincode) -> None:
    async def body(network: Network, contract: Contract) -> None:
        results = await asyncio.gather(*(contract.submit("Put", f"many-{i}", str(i)) for i in range(200)))
        assert {r.status.code_name for r in results} == {"VALID"}
        assert len({r.tx_id for r in results}) == 200
        assert await contract.evaluate("Get", "many-199") == b"199"

    _with_contract(client_env, test_chaincode, body)


def test_a_forced_mvcc_conflict_is_a_commit_error_with_its_validation_code(
        client_env, test_chaincode: DeployedChaincode) -> None:
    async def body(network: Network, contract: Contract) -> None:
        await contract.submit("Put", "mvcc", "v1")
        stale = await contract.prepare("Get", "mvcc")  # reads mvcc at its current version
        await contract.submit("Put", "mvcc", "v2")  # ... which this changes before the read commits
        with pytest.raises(CommitError) as caught:
            await contract.submit_prepared(stale)
        assert caught.value.code == "MVCC_READ_CONFLICT"
        assert caught.value.tx_id == stale.tx_id
        status = await network.transaction_status(stale.tx_id)
        assert status is not None and status.code_name == "MVCC_READ_CONFLICT"

    _with_contract(client_env, test_chaincode, body)


def test_the_same_signed_envelope_sent_twice_commits_once_and_the_repeat_is_a_duplicate_txid(
        client_env, test_chaincode: DeployedChaincode) -> None:
    async def body(network: Network, contract: Contract) -> None:
        prepared = await contract.prepare("Put", "resend", "once")
        stored = prepared.to_bytes()  # what an outbox keeps before the first submit
        first = await contract.submit_prepared(prepared)
        again = PreparedTransaction.from_bytes(stored)
        assert again.tx_id == prepared.tx_id
        await network.submit(again)  # the orderer takes it; the peers must refuse to apply it twice
        marker = await contract.submit("Put", "resend-marker", "x")  # ordered after the repeat
        codes = []
        async for block in network.blocks(first.status.block_number, marker.status.block_number):
            codes += [t.validation_code_name for t in block_transactions(block) if t.tx_id == prepared.tx_id]
        assert codes == ["VALID", "DUPLICATE_TXID"]
        status = await network.commit_status(prepared.tx_id)
        assert status.successful and status.block_number == first.status.block_number

    _with_contract(client_env, test_chaincode, body)


def test_the_sync_facade_submits_and_evaluates(client_env, test_chaincode: DeployedChaincode) -> None:
    with SyncGateway.from_environment(client_env, "service") as gateway:
        contract = gateway.network(test_chaincode.channel).contract(test_chaincode.name, test_chaincode.contract)
        result = contract.submit("Put", "sync", "facade")
        assert result.status.successful
        assert contract.evaluate("Get", "sync") == b"facade"


def test_peer_chaincode_query_reads_what_the_gateway_client_wrote(devnet: Devnet, client_env,
                                                                  test_chaincode: DeployedChaincode) -> None:
    async def body(network: Network, contract: Contract) -> None:
        await contract.submit("Put", "cross-check", "from-gxlib")

    _with_contract(client_env, test_chaincode, body)
    out = devnet.peer_cli("org2").run("chaincode", "query", "-C", test_chaincode.channel, "-n", test_chaincode.name,
                                      "-c", '{"Args":["TestContract:Get","cross-check"]}')
    assert out.strip() == "from-gxlib"


def test_a_short_gateway_benchmark_commits_everything_it_submits(client_env, test_chaincode: DeployedChaincode) -> None:
    async def body(network: Network, contract: Contract) -> None:
        result = await bench_submits(contract, "Put", lambda n: (f"bench-{n}", str(n)), concurrency=50, seconds=3)
        print("gateway bench:", json.dumps(result.to_json()))  # numbers for the record (pytest -s)
        assert result.failed == 0 and result.committed > 0

    _with_contract(client_env, test_chaincode, body)
