"""Fixtures for the shim's unit tests: a chaincode server on loopback and a fake peer dialing it."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID, ObjectIdentifier

from gxshim import ChaincodeServer, ContractChaincode, ServerOptions, TLSConfig
from tests.integration.testcc import TestContract
from tests.unit.shim.fakepeer import FakePeer

PACKAGE_ID = "testcc_1.0:" + "ab" * 32


def make_cert(cn: str = "SuperAdmin", ous: tuple[str, ...] = ("client", "org1"),
              attrs: dict[str, str] | None = None) -> bytes:
    """A self-signed PEM certificate with NodeOUs and (optionally) Fabric CA attributes."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou) for ou in ous]
                     + [x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(now)
               .not_valid_after(now + dt.timedelta(days=1)))
    if attrs is not None:
        builder = builder.add_extension(x509.UnrecognizedExtension(
            ObjectIdentifier("1.2.3.4.5.6.7.8.1"), json.dumps({"attrs": attrs}).encode()), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True)
class TLSMaterial:
    ca_pem: bytes
    server_cert_pem: bytes
    server_key_pem: bytes
    client_cert_pem: bytes
    client_key_pem: bytes


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def make_tls(host: str = "127.0.0.1") -> TLSMaterial:
    """A throwaway TLS CA with a server certificate for ``host`` (IP SAN) and a client certificate."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-tls-ca")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=1))
          .not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))

    def leaf(cn: str, san: list[x509.GeneralName]) -> tuple[bytes, bytes]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
                .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=1)).not_valid_after(now + dt.timedelta(days=1))
                .add_extension(x509.SubjectAlternativeName(san), critical=False)
                .sign(ca_key, hashes.SHA256()))
        return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)

    server_cert, server_key = leaf(host, [x509.IPAddress(ipaddress.ip_address(host))])
    client_cert, client_key = leaf("peer-client", [x509.DNSName("peer-client")])
    return TLSMaterial(ca.public_bytes(serialization.Encoding.PEM), server_cert, server_key, client_cert, client_key)


@pytest.fixture
def serve() -> Iterator[Callable[..., ChaincodeServer]]:
    """Start a chaincode server on 127.0.0.1 (a free port) for the given chaincode; stopped after the test."""
    started: list[ChaincodeServer] = []

    def start(chaincode: object | None = None, options: ServerOptions | None = None,
              port: int = 0, tls: TLSConfig | None = None) -> ChaincodeServer:
        server = ChaincodeServer(PACKAGE_ID, f"127.0.0.1:{port}", chaincode or ContractChaincode([TestContract()]),
                                 options=options or ServerOptions(response_timeout_s=5), tls=tls)
        started.append(server.start())
        return server

    yield start
    for server in started:
        server.stop(0)


@pytest.fixture
def peers() -> Iterator[Callable[..., FakePeer]]:
    """Connect fake peers to a server; closed after the test."""
    made: list[FakePeer] = []

    def connect(server: ChaincodeServer, **kwargs: object) -> FakePeer:
        peer = FakePeer(f"127.0.0.1:{server.port}", **kwargs)  # type: ignore[arg-type]
        made.append(peer)
        assert peer.ready.wait(5), "chaincode did not register"
        return peer

    yield connect
    for peer in made:
        peer.close()
