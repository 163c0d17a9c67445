"""One chaincode stream with a peer: registration, transaction dispatch, and routing of the peer's answers.

Threads and ownership:

* the gRPC framework pulls :meth:`StreamSession.outbound` — the only writer on the stream; everything else
  (transaction workers, the reader echoing KEEPALIVE) puts messages on its queue;
* one reader thread (:meth:`StreamSession.read`) takes the peer's messages off the stream: TRANSACTION/INIT go
  to the worker pool, RESPONSE/ERROR go to the waiting transaction by (channel, txid);
* each transaction runs on a pool worker and has at most one request outstanding, as the peer requires
  (it drops a second concurrent request for the same transaction).

When the stream ends (peer restart, shutdown) the session closes: waiting transactions get
:class:`~gxshim.errors.StreamClosedError` and late replies are dropped. The peer dials again and gets a
new session; the server keeps listening.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterator
from concurrent.futures import Executor
from dataclasses import dataclass, field

from fabric_protos.peer import chaincode_pb2
from fabric_protos.peer import chaincode_shim_pb2 as shim_pb2

from gxshim.errors import PeerError, ResponseTimeoutError, ShimError, StreamClosedError
from gxshim.response import Chaincode, Response
from gxshim.stub import ChaincodeStub

log = logging.getLogger(__name__)

Msg = shim_pb2.ChaincodeMessage
T = Msg.Type
TxKey = tuple[str, str]  # (channel ID, transaction ID)

_CLOSED = object()  # put in a transaction's inbox when the stream ends


@dataclass
class _TxSlot:
    """Where the peer's answers for one in-flight transaction arrive."""

    inbox: queue.Queue[object] = field(default_factory=queue.Queue)
    # After a timed-out request a late answer may still come; no further request is safe on this slot.
    poisoned: bool = False


class StreamSession:
    """The chaincode side of one ``Connect`` stream (see the module docstring)."""

    def __init__(self, chaincode_id: str, chaincode: Chaincode, executor: Executor, *,
                 response_timeout_s: float = 60.0, name: str = "stream") -> None:
        self.chaincode_id = chaincode_id
        self.name = name
        self._chaincode = chaincode
        self._executor = executor
        self._response_timeout_s = response_timeout_s
        self._outbound: queue.Queue[Msg | None] = queue.Queue()
        self._slots: dict[TxKey, _TxSlot] = {}
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self.registered = threading.Event()
        self.ready = threading.Event()
        self.close_reason = ""
        self._send(Msg(type=T.REGISTER, payload=chaincode_pb2.ChaincodeID(name=chaincode_id).SerializeToString()))

    # --- the single writer ---------------------------------------------------------------------------------
    def _send(self, msg: Msg) -> None:
        if self._closed.is_set():
            log.debug("%s: stream closed, dropping %s for tx %s", self.name, T.Name(msg.type), msg.txid)
            return
        self._outbound.put(msg)

    def outbound(self) -> Iterator[Msg]:
        """Messages for the peer, in order; ends when the session closes. Hand this to gRPC as the response."""
        while True:
            msg = self._outbound.get()
            if msg is None:
                return
            yield msg

    # --- the reader ----------------------------------------------------------------------------------------
    def read(self, inbound: Iterator[Msg]) -> None:
        """Consume the peer's messages until the stream ends, then close the session."""
        reason = "peer closed the stream"
        try:
            for msg in inbound:
                self._dispatch(msg)
        except Exception as exc:  # grpc.RpcError on cancel/disconnect, or a bug in dispatch
            reason = f"stream failed: {type(exc).__name__}: {exc}"
            log.info("%s: %s", self.name, reason)
        finally:
            self.close(reason)

    def _dispatch(self, msg: Msg) -> None:
        kind = msg.type
        if kind == T.KEEPALIVE:
            self._send(msg)  # echoed as Fabric's own shims do; the peer ignores it
        elif kind == T.REGISTERED:
            self.registered.set()
        elif kind == T.READY:
            self.ready.set()
            log.info("%s: registered as %s and ready", self.name, self.chaincode_id)
        elif kind in (T.TRANSACTION, T.INIT):
            self._start_transaction(msg)
        elif kind in (T.RESPONSE, T.ERROR):
            with self._lock:
                slot = self._slots.get((msg.channel_id, msg.txid))
            if slot is None:
                log.warning("%s: %s for unknown tx %s on %s dropped", self.name, T.Name(kind), msg.txid, msg.channel_id)
            else:
                slot.inbox.put(msg)
        else:
            log.warning("%s: unexpected %s from peer (tx %s) ignored", self.name, T.Name(kind), msg.txid)

    # --- transactions ----------------------------------------------------------------------------------------
    def _start_transaction(self, msg: Msg) -> None:
        key = (msg.channel_id, msg.txid)
        with self._lock:
            duplicate = key in self._slots
            if not duplicate:
                self._slots[key] = _TxSlot()
        if duplicate:
            self._send(Msg(type=T.ERROR, txid=msg.txid, channel_id=msg.channel_id,
                           payload=f"transaction {msg.txid} is already running on channel {msg.channel_id}".encode()))
            return
        try:
            self._executor.submit(self._run_transaction, msg)
        except RuntimeError as exc:  # executor shut down
            self._finish(key, Msg(type=T.ERROR, txid=msg.txid, channel_id=msg.channel_id,
                                  payload=f"chaincode is shutting down: {exc}".encode()))

    def _run_transaction(self, msg: Msg) -> None:
        key = (msg.channel_id, msg.txid)
        try:
            chaincode_input = chaincode_pb2.ChaincodeInput()
            chaincode_input.ParseFromString(msg.payload)
            signed = msg.proposal if msg.HasField("proposal") else None
            stub = ChaincodeStub(self, msg.channel_id, msg.txid, chaincode_input, signed,
                                 is_init=msg.type == T.INIT)
            result = self._call_chaincode(stub)
            reply = Msg(type=T.COMPLETED, txid=msg.txid, channel_id=msg.channel_id,
                        payload=result.to_proto().SerializeToString())
            if stub.event is not None:
                reply.chaincode_event.CopyFrom(stub.event)
        except Exception as exc:  # a malformed message: tell the peer rather than leave it waiting
            log.exception("%s: tx %s could not be run", self.name, msg.txid)
            reply = Msg(type=T.ERROR, txid=msg.txid, channel_id=msg.channel_id, payload=str(exc).encode())
        self._finish(key, reply)

    def _call_chaincode(self, stub: ChaincodeStub) -> Response:
        try:
            result = self._chaincode.init(stub) if stub.is_init else self._chaincode.invoke(stub)
        except Exception as exc:
            log.warning("%s: tx %s raised %s: %s", self.name, stub.tx_id, type(exc).__name__, exc)
            return Response(500, str(exc) or type(exc).__name__)
        if not isinstance(result, Response):
            return Response(500, f"chaincode returned {type(result).__name__}, not a Response")
        return result

    def _finish(self, key: TxKey, reply: Msg) -> None:
        with self._lock:
            self._slots.pop(key, None)
        self._send(reply)

    # --- requests from stubs ---------------------------------------------------------------------------------
    def ask(self, channel_id: str, txid: str, msg_type: int, payload: bytes) -> bytes:
        """Send one request for a running transaction and return the payload of the peer's RESPONSE.

        Raises PeerError (the peer sent ERROR), StreamClosedError, ResponseTimeoutError.
        """
        request_name = T.Name(msg_type)
        with self._lock:
            slot = self._slots.get((channel_id, txid))
        if slot is None:
            raise ShimError(f"{request_name} outside a running transaction", channel=channel_id, txid=txid)
        if slot.poisoned:
            raise ResponseTimeoutError(f"{request_name} refused: an earlier request of this transaction timed out",
                                       channel=channel_id, txid=txid)
        if self._closed.is_set():
            raise StreamClosedError(f"{request_name} failed: {self.close_reason}", channel=channel_id, txid=txid)
        self._send(Msg(type=msg_type, txid=txid, channel_id=channel_id, payload=payload))
        try:
            answer = slot.inbox.get(timeout=self._response_timeout_s)
        except queue.Empty:
            slot.poisoned = True
            raise ResponseTimeoutError(f"no answer to {request_name} within {self._response_timeout_s:.0f}s",
                                       channel=channel_id, txid=txid) from None
        if answer is _CLOSED:
            raise StreamClosedError(f"{request_name} failed: {self.close_reason}", channel=channel_id, txid=txid)
        assert isinstance(answer, Msg)
        if answer.type == T.ERROR:
            raise PeerError(request_name, answer.payload.decode("utf-8", errors="replace"),
                            channel=channel_id, txid=txid)
        return bytes(answer.payload)

    # --- end ---------------------------------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    @property
    def in_flight(self) -> int:
        """Transactions currently running on this stream."""
        with self._lock:
            return len(self._slots)

    def close(self, reason: str = "closed") -> None:
        """End the session: stop the writer and fail every waiting transaction (idempotent)."""
        with self._lock:
            if self._closed.is_set():
                return
            self.close_reason = reason
            self._closed.set()
            slots = list(self._slots.values())
        for slot in slots:
            slot.inbox.put(_CLOSED)
        self._outbound.put(None)
        log.info("%s: session closed (%s)", self.name, reason)

