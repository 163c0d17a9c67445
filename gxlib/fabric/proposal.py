"""Building and signing chaincode proposals, and the transaction ID Fabric derives from them.

A proposal's transaction ID is ``hex(sha256(nonce + creator))``: it is fixed the moment the nonce is drawn, before
anything is sent. That is what lets the outbox store the ID before the first submit (SPEC §3.2).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from fabric_protos.common import common_pb2
from fabric_protos.peer import chaincode_pb2, proposal_pb2
from google.protobuf import timestamp_pb2

from gxlib.fabric.identity import Identity
from gxlib.fabric.signer import Signer, digest

NONCE_BYTES = 24


def transaction_id(nonce: bytes, creator: bytes) -> str:
    """The transaction ID Fabric expects for a proposal with this nonce and serialised creator."""
    return hashlib.sha256(nonce + creator).hexdigest()


@dataclass(frozen=True)
class TransactionContext:
    """The creator, the nonce and the transaction ID they determine."""

    creator: bytes
    nonce: bytes
    tx_id: str = field(init=False, compare=False)

    def __post_init__(self) -> None:
        # Derived once, when made: every proposal reads it (and functools.cached_property takes a lock on 3.11).
        object.__setattr__(self, "tx_id", transaction_id(self.nonce, self.creator))

    @classmethod
    def new(cls, identity: Identity, nonce: bytes | None = None) -> TransactionContext:
        return cls(identity.serialize(), nonce if nonce is not None else os.urandom(NONCE_BYTES))

    def signature_header(self) -> bytes:
        return common_pb2.SignatureHeader(creator=self.creator, nonce=self.nonce).SerializeToString()


def now_timestamp() -> timestamp_pb2.Timestamp:
    # From the clock's nanoseconds: Timestamp.GetCurrentTime goes through datetime and calendar in Python.
    seconds, nanos = divmod(time.time_ns(), 1_000_000_000)
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)


@dataclass(frozen=True)
class ProposalSpec:
    """What to invoke: ``function`` (``Contract:Function``) with string/bytes ``args`` on ``chaincode``."""

    channel: str
    chaincode: str
    function: str
    args: Sequence[str | bytes] = ()
    transient: Mapping[str, bytes] = field(default_factory=dict)

    def chaincode_args(self) -> list[bytes]:
        return [self.function.encode(), *(a if isinstance(a, bytes) else str(a).encode() for a in self.args)]


@dataclass(frozen=True)
class SignedProposal:
    """A signed proposal ready to send to the Gateway (endorse/evaluate) or straight to a peer."""

    tx_id: str
    channel: str
    proposal_bytes: bytes
    signature: bytes

    def to_proto(self) -> proposal_pb2.SignedProposal:
        return proposal_pb2.SignedProposal(proposal_bytes=self.proposal_bytes, signature=self.signature)


@lru_cache(maxsize=64)
def _chaincode_header_extension(chaincode: str) -> bytes:
    """The channel header's extension naming the chaincode: the same bytes for every proposal to it."""
    return proposal_pb2.ChaincodeHeaderExtension(chaincode_id=chaincode_pb2.ChaincodeID(name=chaincode)
                                                 ).SerializeToString()


def build_proposal(spec: ProposalSpec, context: TransactionContext) -> proposal_pb2.Proposal:
    """The unsigned ``peer.Proposal`` for ``spec`` with the transaction ID of ``context``."""
    channel_header = common_pb2.ChannelHeader(
        type=common_pb2.ENDORSER_TRANSACTION,
        timestamp=now_timestamp(),
        channel_id=spec.channel,
        tx_id=context.tx_id,
        epoch=0,
        extension=_chaincode_header_extension(spec.chaincode),
    )
    header = common_pb2.Header(channel_header=channel_header.SerializeToString(),
                               signature_header=context.signature_header())
    invocation = chaincode_pb2.ChaincodeInvocationSpec(chaincode_spec=chaincode_pb2.ChaincodeSpec(
        chaincode_id=chaincode_pb2.ChaincodeID(name=spec.chaincode),
        input=chaincode_pb2.ChaincodeInput(args=spec.chaincode_args()),
    ))
    payload = proposal_pb2.ChaincodeProposalPayload(input=invocation.SerializeToString(),
                                                    TransientMap=dict(spec.transient))
    return proposal_pb2.Proposal(header=header.SerializeToString(), payload=payload.SerializeToString())


def sign_proposal(spec: ProposalSpec, identity: Identity, signer: Signer,
                  context: TransactionContext | None = None) -> SignedProposal:
    """Build and sign a proposal; a fresh nonce (hence tx ID) unless ``context`` is given."""
    context = context or TransactionContext.new(identity)
    proposal_bytes = build_proposal(spec, context).SerializeToString()
    return SignedProposal(context.tx_id, spec.channel, proposal_bytes, signer.sign(digest(proposal_bytes)))
