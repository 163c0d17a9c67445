"""The chaincode event stream survives a restart of the peer it reads from: nothing lost, nothing repeated.

Runs last in this directory (it restarts peer0-org1 and brings it back with ``devnet.up()``).
"""

from __future__ import annotations

import asyncio
import time

import pytest

from gxlib.devnet import processes
from gxlib.devnet.network import Devnet
from gxlib.devnet.peercli import PeerCliError
from gxlib.fabric.checkpoint import Checkpoint
from gxlib.fabric.contract import Contract, SubmitResult
from gxlib.fabric.errors import FabricError
from gxlib.fabric.events import ChaincodeEvent
from gxlib.fabric.gateway import Gateway
from tests.integration.conftest import DeployedChaincode

pytestmark = pytest.mark.integration


def test_event_stream_reconnects_after_the_peer_restarts_without_loss_or_repeats(
        devnet: Devnet, client_env, test_chaincode: DeployedChaincode) -> None:
    async def run() -> None:
        async with Gateway.from_environment(client_env, "service") as gateway:
            network = gateway.network(test_chaincode.channel)
            contract = network.contract(test_chaincode.name, test_chaincode.contract)
            before = await contract.submit("Emit", "restart-1", "before")
            stream = network.chaincode_events(test_chaincode.name,
                                              start=Checkpoint.start_of(before.status.block_number))
            seen: list[ChaincodeEvent] = []
            first_seen = asyncio.Event()

            async def consume() -> None:
                async for event in stream:
                    seen.append(event)
                    first_seen.set()
                    if len(seen) == 2:
                        stream.close()

            consumer = asyncio.ensure_future(consume())
            await asyncio.wait_for(first_seen.wait(), 30)

            peer = devnet.layout.peer_of("org1")
            await asyncio.to_thread(processes.stop_node, peer)
            await asyncio.sleep(1)  # the stream notices and starts retrying
            await asyncio.to_thread(_bring_back, devnet)

            after = await _submit_when_ready(contract, "restart-2", "after")
            await asyncio.wait_for(consumer, 60)
            assert [e.tx_id for e in seen] == [before.tx_id, after.tx_id]
            assert stream.reconnects >= 1

    asyncio.run(run())


def _bring_back(devnet: Devnet, attempts: int = 10) -> None:
    # `devnet.up()` can ask the restarted peer for its channels after its /healthz answers but before its gRPC
    # port listens (a race in the devnet's readiness check); up() is idempotent, so try again.
    for attempt in range(attempts):
        try:
            devnet.up()
            return
        except PeerCliError:
            if attempt == attempts - 1:
                raise
            time.sleep(1)


async def _submit_when_ready(contract: Contract, key: str, value: str, timeout_s: float = 60.0) -> SubmitResult:
    # Right after a restart the peer may not have re-dialled the chaincode server yet.
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        try:
            return await contract.submit("Emit", key, value)
        except FabricError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(1)
