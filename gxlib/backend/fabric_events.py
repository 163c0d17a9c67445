"""The projector's :class:`~gxlib.backend.eventsource.EventSource` over gxlib's Fabric event stream.

Events come from the peer's block delivery with their exact position (block number, transaction index) and
the transaction's timestamp, so the projector's checkpoint resumes without loss or repeats.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from gxlib.backend.eventsource import ChaincodeEvent, Checkpoint
from gxlib.fabric.checkpoint import Checkpoint as FabricCheckpoint
from gxlib.fabric.gateway import Gateway


class FabricEventSource:
    """Committed events of one chaincode on one channel, read as the given devnet identity."""

    def __init__(self, environment: dict[str, Any], channel: str, chaincode: str, *, identity: str = "service") -> None:
        self.environment = environment
        self.channel = channel
        self.chaincode = chaincode
        self.identity = identity

    async def events(self, after: Checkpoint | None) -> AsyncIterator[ChaincodeEvent]:
        start = FabricCheckpoint(after.block_number, after.tx_index) if after else FabricCheckpoint.start_of(0)
        async with Gateway.from_environment(self.environment, self.identity) as gateway:
            stream = gateway.network(self.channel).chaincode_events(self.chaincode, start=start)
            async for event in stream:
                yield ChaincodeEvent(event.block_number, event.tx_index, event.tx_id, event.event_name,
                                     event.payload, event.timestamp)
