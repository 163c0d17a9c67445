"""Reading a block: its transactions, their IDs, positions and validation codes."""

from __future__ import annotations

from dataclasses import dataclass

from fabric_protos.common import common_pb2

from gxlib.fabric.commit import validation_code_name


@dataclass(frozen=True)
class BlockTransaction:
    """One transaction of a block as the peers validated it."""

    block_number: int
    index: int
    tx_id: str
    header_type: int
    validation_code: int
    channel_header: common_pb2.ChannelHeader
    data: bytes  # the payload's data: a peer.Transaction for endorser transactions

    @property
    def validation_code_name(self) -> str:
        return validation_code_name(self.validation_code)

    @property
    def is_endorser_transaction(self) -> bool:
        return self.header_type == common_pb2.ENDORSER_TRANSACTION


def block_transactions(block: common_pb2.Block) -> list[BlockTransaction]:
    """Every transaction of ``block`` in order, with the validation code from the block's metadata."""
    metadata = block.metadata.metadata
    flags = metadata[common_pb2.TRANSACTIONS_FILTER] if len(metadata) > common_pb2.TRANSACTIONS_FILTER else b""
    found = []
    for index, raw in enumerate(block.data.data):
        envelope = common_pb2.Envelope()
        envelope.ParseFromString(raw)
        payload = common_pb2.Payload()
        payload.ParseFromString(envelope.payload)
        header = common_pb2.ChannelHeader()
        header.ParseFromString(payload.header.channel_header)
        # A block not yet validated has no filter; report it as NOT_VALIDATED (254).
        code = flags[index] if index < len(flags) else 254
        found.append(BlockTransaction(block.header.number, index, header.tx_id, header.type, code, header,
                                      payload.data))
    return found
