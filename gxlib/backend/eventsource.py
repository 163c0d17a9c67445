"""The projector's seam to Fabric: committed chaincode events of the GX chaincode, in ledger order.

The Fabric client implements :class:`EventSource` with the Gateway's ChaincodeEvents stream: start at
``after.block_number`` (block 0 when ``after`` is None) and drop every event at or before ``after``
(block number, transaction index), like the Gateway's checkpointers do with their tx ID.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import NamedTuple, Protocol


@dataclass(frozen=True, order=True)
class Checkpoint:
    """Position of the last applied event: block number and the transaction's index in that block."""

    block_number: int
    tx_index: int
    tx_id: str = ""

    @property
    def position(self) -> tuple[int, int]:
        return (self.block_number, self.tx_index)


class ChaincodeEvent(NamedTuple):
    """One chaincode event of a valid transaction (Fabric delivers at most one per transaction). A named tuple:
    a replay builds one per event of the whole history, at half a frozen dataclass's cost."""

    block_number: int
    tx_index: int
    tx_id: str
    event_name: str
    payload: bytes
    tx_timestamp: dt.datetime | None = None  # the transaction's timestamp from its channel header, if known

    @property
    def position(self) -> tuple[int, int]:
        return (self.block_number, self.tx_index)


class EventSource(Protocol):
    def events(self, after: Checkpoint | None) -> AsyncIterator[ChaincodeEvent]:
        """Events strictly after ``after`` in ledger order; waits for new blocks and ends only when the source
        is closed. Raises on transport trouble (the projector reconnects from its checkpoint)."""
        ...
