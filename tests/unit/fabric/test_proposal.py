from __future__ import annotations

import hashlib
import time

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from fabric_protos.common import common_pb2
from fabric_protos.peer import chaincode_pb2, proposal_pb2

from gxlib.fabric.proposal import (
    NONCE_BYTES,
    ProposalSpec,
    TransactionContext,
    now_timestamp,
    sign_proposal,
    transaction_id,
)
from gxlib.fabric.signer import EcdsaSigner, digest

from .builders import new_identity


def test_tx_id_is_hex_sha256_of_nonce_then_creator() -> None:
    nonce, creator = b"\x01" * 24, b"creator-bytes"
    assert transaction_id(nonce, creator) == hashlib.sha256(b"\x01" * 24 + b"creator-bytes").hexdigest()
    assert transaction_id(creator, nonce) != transaction_id(nonce, creator)


def test_the_tx_id_is_known_before_anything_is_sent_and_new_for_each_nonce() -> None:
    identity, _ = new_identity()
    first, second = TransactionContext.new(identity), TransactionContext.new(identity)
    assert len(first.nonce) == NONCE_BYTES
    assert first.tx_id == transaction_id(first.nonce, identity.serialize())
    assert first.tx_id != second.tx_id


def test_the_proposal_timestamp_is_now_to_the_nanosecond_field() -> None:
    # Peers refuse proposals whose timestamp is far from their clock.
    before = time.time_ns()
    stamp = now_timestamp()
    after = time.time_ns()
    assert before <= stamp.seconds * 1_000_000_000 + stamp.nanos <= after
    assert 0 <= stamp.nanos < 1_000_000_000


def test_proposal_carries_channel_chaincode_tx_id_creator_args_and_transient_data() -> None:
    identity, key = new_identity()
    context = TransactionContext.new(identity, nonce=b"n" * 24)
    spec = ProposalSpec("gxchannel", "gxtv3", "TokenomicsContract:Mint", ("acct", b"\x00raw"), {"secret": b"s"})
    signed = sign_proposal(spec, identity, EcdsaSigner(key), context)

    assert (signed.tx_id, signed.channel) == (context.tx_id, "gxchannel")
    proposal = proposal_pb2.Proposal()
    proposal.ParseFromString(signed.proposal_bytes)
    header = common_pb2.Header()
    header.ParseFromString(proposal.header)
    channel_header = common_pb2.ChannelHeader()
    channel_header.ParseFromString(header.channel_header)
    assert channel_header.type == common_pb2.ENDORSER_TRANSACTION
    assert (channel_header.channel_id, channel_header.tx_id, channel_header.epoch) == ("gxchannel", context.tx_id, 0)
    assert channel_header.timestamp.seconds > 0
    extension = proposal_pb2.ChaincodeHeaderExtension()
    extension.ParseFromString(channel_header.extension)
    assert extension.chaincode_id.name == "gxtv3"
    signature_header = common_pb2.SignatureHeader()
    signature_header.ParseFromString(header.signature_header)
    assert (signature_header.creator, signature_header.nonce) == (identity.serialize(), b"n" * 24)

    payload = proposal_pb2.ChaincodeProposalPayload()
    payload.ParseFromString(proposal.payload)
    assert dict(payload.TransientMap) == {"secret": b"s"}
    invocation = chaincode_pb2.ChaincodeInvocationSpec()
    invocation.ParseFromString(payload.input)
    assert invocation.chaincode_spec.chaincode_id.name == "gxtv3"
    assert list(invocation.chaincode_spec.input.args) == [b"TokenomicsContract:Mint", b"acct", b"\x00raw"]

    key.public_key().verify(signed.signature, digest(signed.proposal_bytes), ec.ECDSA(Prehashed(hashes.SHA256())))
    assert signed.to_proto().proposal_bytes == signed.proposal_bytes
