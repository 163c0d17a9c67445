"""Where a Fabric node listens and how to open a TLS gRPC channel to it.

A :class:`PeerEndpoint` holds the address, the TLS CA that signed the node's certificate and the name in that
certificate (devnet nodes listen on 127.0.0.1 but their certificates name ``peer0.org1.gx.local``). One
``grpc.aio`` channel multiplexes any number of concurrent calls, so one connection serves many transactions.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from gxlib.errors import GxError
from gxlib.fabric.identity import load_environment

# Keepalive the peer accepts (its default minimum interval is 60s) and big messages (blocks, packages).
# The rest trims what gRPC does per call, which at a few calls in flight is most of the client's CPU per transaction
# (about 4% less CPU per transaction with all three, measured side by side at 10 submits in flight):
# - no BDP probing: gRPC otherwise follows an answer with a PING of its own to size the flow-control window (a frame
#   out, an ack back, a wake-up each); the window it would grow to is set instead — STREAM_WINDOW_BYTES per stream,
#   a large block in one round trip;
# - no gRPC retries: gxlib retries at its own level (the submitter re-sends the same signed envelope), and gRPC's
#   retry layer buffers every call's messages in case it replays them;
# - the minimal filter stack: no optional per-call filters (census, stats) that nothing here reads.
STREAM_WINDOW_BYTES = 8 * 1024 * 1024
_CHANNEL_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.keepalive_time_ms", 120_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.max_receive_message_length", 100 * 1024 * 1024),
    ("grpc.max_send_message_length", 100 * 1024 * 1024),
    ("grpc.http2.bdp_probe", 0),
    ("grpc.http2.lookahead_bytes", STREAM_WINDOW_BYTES),
    ("grpc.enable_retries", 0),
    ("grpc.minimal_stack", 1),
]


class ConnectionSettingsError(GxError):
    """The endpoint settings (TLS files, peer name) are missing or unreadable."""


@dataclass(frozen=True)
class PeerEndpoint:
    """A TLS gRPC endpoint of a peer (or orderer). ``client_*`` are only needed when the node requires mutual TLS."""

    address: str
    tls_ca_cert: bytes
    server_name: str = ""
    msp_id: str = ""
    name: str = ""
    client_cert: bytes | None = None
    client_key: bytes | None = None

    @classmethod
    def from_files(cls, address: str, tls_ca_file: str | Path, server_name: str = "", **extra: Any) -> PeerEndpoint:
        try:
            return cls(address, Path(tls_ca_file).read_bytes(), server_name, **extra)
        except OSError as exc:
            raise ConnectionSettingsError(f"cannot read the TLS CA {tls_ca_file} for {address}: {exc}") from exc

    def open_channel(self) -> grpc.aio.Channel:
        """A new ``grpc.aio`` channel to this endpoint (connects lazily, reconnects by itself)."""
        credentials = grpc.ssl_channel_credentials(root_certificates=self.tls_ca_cert,
                                                   private_key=self.client_key, certificate_chain=self.client_cert)
        options = list(_CHANNEL_OPTIONS)
        if self.server_name:
            options += [("grpc.ssl_target_name_override", self.server_name),
                        ("grpc.default_authority", self.server_name)]
        return grpc.aio.secure_channel(self.address, credentials, options=options)

    @property
    def tls_cert_hash(self) -> bytes:
        """SHA-256 of the client TLS certificate (DER), which Fabric binds into requests under mutual TLS."""
        if not self.client_cert:
            return b""
        cert = x509.load_pem_x509_certificate(self.client_cert)
        return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).digest()


def peer_endpoints_from_environment(environment: str | Path | dict[str, Any]) -> dict[str, PeerEndpoint]:
    """Every peer of the devnet environment (``gx devnet env --json``), keyed by org key (``org1``, ``org2``)."""
    env = load_environment(environment)
    return {peer["org"]: PeerEndpoint.from_files(peer["endpoint"], peer["tls_ca_file"], peer["tls_server_name"],
                                                 msp_id=peer["msp_id"], name=peer["name"])
            for peer in env["peers"]}
