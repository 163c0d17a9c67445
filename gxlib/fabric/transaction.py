"""A prepared transaction: the endorsed, signed envelope, with its tx ID known, ready to (re-)send to the orderer.

The envelope is the whole state: its header names the channel and the tx ID and its actions carry the chaincode's
result. So :meth:`PreparedTransaction.to_bytes` / :meth:`from_bytes` are all an outbox needs to store it and to
re-send *the same signed envelope* later — Fabric commits a given tx ID at most once (a repeat is invalidated
as ``DUPLICATE_TXID``), which makes re-sending safe.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from fabric_protos.common import common_pb2
from fabric_protos.peer import proposal_pb2, proposal_response_pb2, transaction_pb2

from gxlib.errors import GxError
from gxlib.fabric.signer import Signer, digest


class TransactionFormatError(GxError):
    """Bytes that should hold a transaction envelope do not."""


@dataclass(frozen=True)
class PreparedTransaction:
    """A signed transaction envelope (``common.Envelope``) and what is in its header.

    Only ``envelope`` is the transaction; ``known_tx_id``/``known_channel`` are what the caller already knows of its
    header (the proposal's), so a fresh transaction is not parsed to learn them — :meth:`from_bytes` parses.
    """

    envelope: bytes
    known_tx_id: str = field(default="", compare=False, repr=False)
    known_channel: str = field(default="", compare=False, repr=False)

    @classmethod
    def sign(cls, unsigned: common_pb2.Envelope, signer: Signer, *, tx_id: str = "",
             channel: str = "") -> PreparedTransaction:
        """Sign the payload of the envelope the Gateway returned from endorsement (``tx_id`` and ``channel``: those
        of the proposal it answers, if known)."""
        payload = unsigned.payload  # a copy of the bytes on each read
        signed = common_pb2.Envelope(payload=payload, signature=signer.sign(digest(payload)))
        return cls(signed.SerializeToString(), tx_id, channel)

    @classmethod
    def from_bytes(cls, data: bytes) -> PreparedTransaction:
        """Restore a transaction stored with :meth:`to_bytes`; checks it is a signed endorser transaction."""
        prepared = cls(bytes(data))
        try:
            header = prepared.channel_header
        except Exception as exc:  # protobuf raises its own DecodeError; callers want one type
            raise TransactionFormatError(f"not a Fabric transaction envelope: {exc}") from exc
        if header.type != common_pb2.ENDORSER_TRANSACTION or not header.tx_id:
            raise TransactionFormatError("the envelope is not an endorser transaction with a tx ID")
        if not prepared.to_proto().signature:
            raise TransactionFormatError(f"transaction {header.tx_id} is not signed")
        # Its header is read now, so its tx ID and channel are known from here on.
        return cls(prepared.envelope, header.tx_id, header.channel_id)

    def to_bytes(self) -> bytes:
        return self.envelope

    def to_proto(self) -> common_pb2.Envelope:
        envelope = common_pb2.Envelope()
        envelope.ParseFromString(self.envelope)
        return envelope

    @cached_property
    def _payload(self) -> common_pb2.Payload:
        # Parsed once (it holds the endorsements and rw-sets: the bulk of the envelope); not handed out.
        payload = common_pb2.Payload()
        payload.ParseFromString(self.to_proto().payload)
        return payload

    @property
    def channel_header(self) -> common_pb2.ChannelHeader:
        header = common_pb2.ChannelHeader()
        header.ParseFromString(self._payload.header.channel_header)
        return header

    # Known without parsing for a fresh or restored transaction: a submit asks for both several times (request,
    # errors, commit status), and functools.cached_property takes a lock each first time on Python 3.11.
    @property
    def tx_id(self) -> str:
        return self.known_tx_id or self.channel_header.tx_id

    @property
    def channel(self) -> str:
        return self.known_channel or self.channel_header.channel_id

    @cached_property
    def result(self) -> bytes:
        """The payload the chaincode returned when it was endorsed (what ``submit`` gives back)."""
        return chaincode_action(self._payload.data).response.payload


def chaincode_action(transaction_data: bytes) -> proposal_pb2.ChaincodeAction:
    """The endorsed chaincode action (response, events, rw-sets) inside an endorser transaction's data."""
    transaction = transaction_pb2.Transaction()
    transaction.ParseFromString(transaction_data)
    if not transaction.actions:
        raise TransactionFormatError("the transaction has no actions")
    action_payload = transaction_pb2.ChaincodeActionPayload()
    action_payload.ParseFromString(transaction.actions[0].payload)
    response_payload = proposal_response_pb2.ProposalResponsePayload()
    response_payload.ParseFromString(action_payload.action.proposal_response_payload)
    action = proposal_pb2.ChaincodeAction()
    action.ParseFromString(response_payload.extension)
    return action
