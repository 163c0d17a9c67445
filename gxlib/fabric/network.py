"""A channel seen through a Gateway: its contracts, transaction status by ID, re-sending, and chaincode events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from fabric_protos.common import common_pb2, ledger_pb2
from fabric_protos.peer import transaction_pb2

from gxlib.fabric.checkpoint import Checkpoint, Checkpointer
from gxlib.fabric.commit import CommitStatus
from gxlib.fabric.contract import Contract
from gxlib.fabric.errors import EvaluateError
from gxlib.fabric.events import ChaincodeEventStream, read_blocks
from gxlib.fabric.proposal import ProposalSpec, sign_proposal
from gxlib.fabric.transaction import PreparedTransaction

if TYPE_CHECKING:
    from gxlib.fabric.gateway import Gateway

QSCC = "qscc"


class Network:
    """Channel ``name`` of a :class:`~gxlib.fabric.gateway.Gateway`."""

    def __init__(self, gateway: Gateway, name: str) -> None:
        self.gateway = gateway
        self.name = name

    def contract(self, chaincode: str, contract_name: str | None = None) -> Contract:
        """Chaincode ``chaincode``; with ``contract_name``, functions are called as ``contract_name:function``."""
        return Contract(self, chaincode, contract_name)

    async def submit(self, transaction: PreparedTransaction) -> None:
        """(Re-)send a prepared transaction to the orderer; use :meth:`commit_status` to learn its fate."""
        await self.gateway.submit(transaction)

    async def commit_status(self, tx_id: str, timeout: float | None = None) -> CommitStatus:
        """Wait for ``tx_id`` to commit and return its status (raises a deadline error if it never shows up)."""
        return await self.gateway.commit_status(self.name, tx_id, timeout)

    async def transaction_status(self, tx_id: str) -> CommitStatus | None:
        """The status of ``tx_id`` if the ledger holds it, else ``None`` — without waiting.

        Asks ``qscc`` whether the transaction is in the ledger, then takes its block number from the commit
        status (immediate for a committed transaction). This is what an outbox asks before re-submitting.
        """
        proposal = sign_proposal(ProposalSpec(self.name, QSCC, "GetTransactionByID", (self.name, tx_id)),
                                 self.gateway.identity, self.gateway.signer)
        try:
            raw = await self.gateway.evaluate(proposal, [self.gateway.identity.msp_id])
        except EvaluateError as exc:
            if "no such transaction ID" in str(exc):
                return None
            raise
        processed = transaction_pb2.ProcessedTransaction()
        processed.ParseFromString(raw)
        status = await self.commit_status(tx_id)
        return CommitStatus(tx_id, int(processed.validationCode), status.block_number)

    async def block_height(self) -> int:
        """The channel's height (number of blocks) on the Gateway peer, from ``qscc GetChainInfo``."""
        proposal = sign_proposal(ProposalSpec(self.name, QSCC, "GetChainInfo", (self.name,)),
                                 self.gateway.identity, self.gateway.signer)
        info = ledger_pb2.BlockchainInfo()
        info.ParseFromString(await self.gateway.evaluate(proposal, [self.gateway.identity.msp_id]))
        return int(info.height)

    def blocks(self, start_block: int, stop_block: int) -> AsyncIterator[common_pb2.Block]:
        """Blocks ``start_block``..``stop_block`` (inclusive) from the Gateway peer (waits for blocks not yet cut)."""
        gateway = self.gateway
        return read_blocks(gateway.channel, gateway.endpoint, self.name, gateway.identity, gateway.signer,
                           start_block, stop_block)

    def chaincode_events(self, chaincode: str | None, *, checkpointer: Checkpointer | None = None,
                         start: Checkpoint | None = None, start_block: int | None = None,
                         reconnect: bool = True) -> ChaincodeEventStream:
        """Events of ``chaincode`` (``None``: every chaincode) from the checkpointer's position, else ``start``,
        else ``start_block``, else from the next new block; read from the Gateway peer's block delivery."""
        gateway = self.gateway
        return ChaincodeEventStream(gateway.channel, gateway.endpoint, self.name, gateway.identity, gateway.signer,
                                    chaincode, start=start, start_block=start_block, checkpointer=checkpointer,
                                    reconnect=reconnect)
