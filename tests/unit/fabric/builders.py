"""Test builders: keys, certificates, identities, and synthetic blocks/envelopes shaped like the peer's."""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fabric_protos.common import common_pb2
from fabric_protos.peer import (
    chaincode_event_pb2,
    proposal_pb2,
    proposal_response_pb2,
    transaction_pb2,
)
from google.protobuf import timestamp_pb2

from gxlib.fabric.identity import Identity


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def self_signed_cert(key: ec.EllipticCurvePrivateKey, common_name: str = "User1@org1.example.com",
                     dns_names: tuple[str, ...] = (), ca: bool = False) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=1))
               .not_valid_after(now + dt.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if dns_names:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(d) for d in dns_names]),
                                        critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def new_identity(msp_id: str = "Org1MSP") -> tuple[Identity, ec.EllipticCurvePrivateKey]:
    key = new_key()
    return Identity(msp_id, self_signed_cert(key)), key


def endorsed_envelope(tx_id: str, channel: str = "mychannel", chaincode: str = "basic", result: bytes = b"ok",
                      event: tuple[str, bytes] | None = None, seconds: int = 1_700_000_000) -> common_pb2.Envelope:
    """An unsigned endorser-transaction envelope like the one the Gateway returns from Endorse."""
    events = b""
    if event is not None:
        events = chaincode_event_pb2.ChaincodeEvent(chaincode_id=chaincode, tx_id=tx_id, event_name=event[0],
                                                    payload=event[1]).SerializeToString()
    response = proposal_response_pb2.Response(status=200, payload=result)
    action = proposal_pb2.ChaincodeAction(response=response, events=events)
    prp = proposal_response_pb2.ProposalResponsePayload(proposal_hash=b"h", extension=action.SerializeToString())
    cap = transaction_pb2.ChaincodeActionPayload(
        chaincode_proposal_payload=b"",
        action=transaction_pb2.ChaincodeEndorsedAction(proposal_response_payload=prp.SerializeToString()))
    tx = transaction_pb2.Transaction(actions=[transaction_pb2.TransactionAction(header=b"",
                                                                                payload=cap.SerializeToString())])
    channel_header = common_pb2.ChannelHeader(type=common_pb2.ENDORSER_TRANSACTION, channel_id=channel, tx_id=tx_id,
                                              timestamp=timestamp_pb2.Timestamp(seconds=seconds))
    payload = common_pb2.Payload(header=common_pb2.Header(channel_header=channel_header.SerializeToString(),
                                                          signature_header=b""),
                                 data=tx.SerializeToString())
    return common_pb2.Envelope(payload=payload.SerializeToString())


def block(number: int, envelopes: list[common_pb2.Envelope], codes: list[int]) -> common_pb2.Block:
    """A committed block holding ``envelopes`` with validation codes ``codes`` in its transactions filter."""
    metadata = [b"", b"", bytes(codes), b"", b""]
    return common_pb2.Block(header=common_pb2.BlockHeader(number=number),
                            data=common_pb2.BlockData(data=[e.SerializeToString() for e in envelopes]),
                            metadata=common_pb2.BlockMetadata(metadata=metadata))
