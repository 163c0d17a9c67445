"""The chaincode-as-a-service gRPC server: the peer dials it and opens ``protos.Chaincode/Connect`` streams.

Each stream gets its own :class:`~gxshim.session.StreamSession` (the chaincode registers on it with the
package ID); transactions of every stream share one worker pool. When a peer restarts it simply dials again
and the new stream registers afresh.

Keepalive: the peer dials with Fabric's default client keepalive (a ping every 60 s, even without an active
call). gRPC servers by default refuse pings more often than every 5 minutes without data and answer repeated
ones with GOAWAY ``too_many_pings``, dropping the chaincode. This server permits pings down to
``min_ping_interval_s`` (default 10 s) without calls, and pings the peer itself every 60 s to notice a dead one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import grpc
from fabric_protos.peer import chaincode_shim_pb2 as shim_pb2
from fabric_protos.peer import chaincode_shim_pb2_grpc as shim_grpc

from gxshim.errors import ShimError
from gxshim.response import Chaincode
from gxshim.session import StreamSession

log = logging.getLogger(__name__)

# Fabric's peer and shims use 100 MiB message limits on the chaincode stream.
MAX_MESSAGE_BYTES = 100 * 1024 * 1024


@dataclass(frozen=True)
class TLSConfig:
    """Server TLS for the chaincode endpoint; with ``client_ca_pem`` the peer must present a client certificate."""

    cert_pem: bytes
    key_pem: bytes
    client_ca_pem: bytes | None = None

    @classmethod
    def from_files(cls, cert: Path, key: Path, client_ca: Path | None = None) -> TLSConfig:
        return cls(cert.read_bytes(), key.read_bytes(), client_ca.read_bytes() if client_ca else None)


@dataclass(frozen=True)
class ServerOptions:
    """Tuning of the chaincode server (the defaults suit a Fabric 2.5 peer)."""

    max_workers: int = 64  # transactions executing at once, across all streams
    max_streams: int = 16  # concurrent Connect streams (one per peer that uses this server, plus reconnects)
    response_timeout_s: float = 60.0  # how long a transaction waits for the peer's answer to one request
    min_ping_interval_s: float = 10.0  # pings from the peer more frequent than this count as abuse
    keepalive_time_s: float = 60.0  # our own pings to the peer
    keepalive_timeout_s: float = 20.0

    def grpc_options(self) -> list[tuple[str, int]]:
        return [
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.min_ping_interval_without_data_ms", int(self.min_ping_interval_s * 1000)),
            ("grpc.keepalive_time_ms", int(self.keepalive_time_s * 1000)),
            ("grpc.keepalive_timeout_ms", int(self.keepalive_timeout_s * 1000)),
            ("grpc.http2.max_pings_without_data", 0),
            ("grpc.so_reuseport", 0),
        ]


class ServerStartError(ShimError):
    """The chaincode server could not listen on its address."""


class _ChaincodeService(shim_grpc.ChaincodeServicer):
    def __init__(self, server: ChaincodeServer) -> None:
        self._server = server

    def Connect(self, request_iterator: Iterator[shim_pb2.ChaincodeMessage],  # the gRPC method name
                context: grpc.ServicerContext) -> Iterator[shim_pb2.ChaincodeMessage]:
        session = self._server._open_session(context.peer())
        context.add_callback(lambda: session.close("stream cancelled or finished"))
        reader = threading.Thread(target=session.read, args=(request_iterator,), name=f"{session.name}-reader",
                                  daemon=True)
        reader.start()
        return session.outbound()


class ChaincodeServer:
    """Serves ``chaincode`` under ``chaincode_id`` (the package ID) at ``address`` (``host:port``).

    ``start()`` binds and returns; ``stop()`` closes every stream. :attr:`port` is the bound port (useful with
    port 0). Use as a context manager in tests.
    """

    def __init__(self, chaincode_id: str, address: str, chaincode: Chaincode, *, tls: TLSConfig | None = None,
                 options: ServerOptions | None = None) -> None:
        if not chaincode_id:
            raise ShimError("chaincode_id (the package ID, CHAINCODE_ID) must not be empty")
        self.chaincode_id = chaincode_id
        self.address = address
        self.chaincode = chaincode
        self.tls = tls
        self.options = options or ServerOptions()
        self.port: int | None = None
        self._executor = ThreadPoolExecutor(self.options.max_workers, thread_name_prefix="chaincode-tx")
        self._grpc: grpc.Server | None = None
        self._sessions: list[StreamSession] = []
        self._lock = threading.Lock()
        self._counter = 0

    def _open_session(self, peer: str) -> StreamSession:
        with self._lock:
            self._counter += 1
            self._sessions = [s for s in self._sessions if not s.closed]
            session = StreamSession(self.chaincode_id, self.chaincode, self._executor,
                                    response_timeout_s=self.options.response_timeout_s,
                                    name=f"stream-{self._counter}")
            self._sessions.append(session)
        log.info("%s: peer %s connected", session.name, peer)
        return session

    @property
    def sessions(self) -> list[StreamSession]:
        """Streams that are still open."""
        with self._lock:
            return [s for s in self._sessions if not s.closed]

    def start(self) -> ChaincodeServer:
        # Stream handlers occupy a gRPC thread each while the stream lives; transactions run on our own pool.
        server = grpc.server(ThreadPoolExecutor(self.options.max_streams, thread_name_prefix="chaincode-stream"),
                             options=self.options.grpc_options(),
                             maximum_concurrent_rpcs=self.options.max_streams)
        shim_grpc.add_ChaincodeServicer_to_server(_ChaincodeService(self), server)
        try:
            if self.tls is None:
                port = server.add_insecure_port(self.address)
            else:
                credentials = grpc.ssl_server_credentials(
                    [(self.tls.key_pem, self.tls.cert_pem)], root_certificates=self.tls.client_ca_pem,
                    require_client_auth=self.tls.client_ca_pem is not None)
                port = server.add_secure_port(self.address, credentials)
        except RuntimeError as exc:
            raise ServerStartError(f"cannot listen on {self.address}: {exc}") from exc
        if not port:
            raise ServerStartError(f"cannot listen on {self.address}", hint="is the port taken?")
        server.start()
        self._grpc, self.port = server, port
        log.info("chaincode %s listening on %s (port %d, tls=%s)", self.chaincode_id, self.address, port,
                 self.tls is not None)
        return self

    def wait(self) -> None:
        """Block until the server stops."""
        if self._grpc is not None:
            self._grpc.wait_for_termination()

    def stop(self, grace_s: float = 2.0) -> None:
        """Close all streams and stop listening (idempotent)."""
        for session in self.sessions:
            session.close("server stopping")
        if self._grpc is not None:
            self._grpc.stop(grace_s).wait()
            self._grpc = None
        self._executor.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> ChaincodeServer:
        return self.start() if self._grpc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()
