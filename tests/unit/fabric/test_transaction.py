from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from fabric_protos.common import common_pb2

from gxlib.fabric.signer import EcdsaSigner, digest
from gxlib.fabric.transaction import PreparedTransaction, TransactionFormatError

from .builders import endorsed_envelope, new_key


def test_a_prepared_transaction_is_the_signed_endorsed_envelope_with_its_tx_id_and_result() -> None:
    key = new_key()
    unsigned = endorsed_envelope("tx-1", channel="gxchannel", result=b'{"balance": 5}')
    prepared = PreparedTransaction.sign(unsigned, EcdsaSigner(key))
    assert (prepared.tx_id, prepared.channel, prepared.result) == ("tx-1", "gxchannel", b'{"balance": 5}')
    envelope = prepared.to_proto()
    assert envelope.payload == unsigned.payload
    key.public_key().verify(envelope.signature, digest(envelope.payload), ec.ECDSA(Prehashed(hashes.SHA256())))


def test_stored_bytes_restore_the_identical_signed_envelope_for_a_resend() -> None:
    prepared = PreparedTransaction.sign(endorsed_envelope("tx-2"), EcdsaSigner(new_key()))
    stored = prepared.to_bytes()
    restored = PreparedTransaction.from_bytes(stored)
    assert restored == prepared
    assert restored.to_bytes() == stored
    assert restored.tx_id == "tx-2"


def test_bytes_that_are_not_a_signed_endorser_transaction_are_refused() -> None:
    with pytest.raises(TransactionFormatError):
        PreparedTransaction.from_bytes(b"\xff\x00 definitely not protobuf")
    with pytest.raises(TransactionFormatError, match="not signed"):
        PreparedTransaction.from_bytes(endorsed_envelope("tx-3").SerializeToString())
    config = common_pb2.Envelope(payload=common_pb2.Payload(header=common_pb2.Header(
        channel_header=common_pb2.ChannelHeader(type=common_pb2.CONFIG).SerializeToString())).SerializeToString(),
        signature=b"sig")
    with pytest.raises(TransactionFormatError, match="endorser transaction"):
        PreparedTransaction.from_bytes(config.SerializeToString())


def test_a_transaction_signed_with_its_proposals_ids_reports_them_and_restores_to_the_same_ids_from_bytes() -> None:
    prepared = PreparedTransaction.sign(endorsed_envelope("tx-4", channel="gxchannel", result=b"r"),
                                        EcdsaSigner(new_key()), tx_id="tx-4", channel="gxchannel")
    restored = PreparedTransaction.from_bytes(prepared.to_bytes())
    assert restored == prepared
    assert (prepared.tx_id, prepared.channel, prepared.result) == ("tx-4", "gxchannel", b"r")
    assert (restored.tx_id, restored.channel, restored.result) == ("tx-4", "gxchannel", b"r")
