"""A protocol-level fake Fabric peer: dials a chaincode server over real gRPC and plays the peer's side.

It behaves like Fabric 2.5's chaincode handler where it matters for the shim: REGISTER → REGISTERED, READY;
TRANSACTION/INIT out, COMPLETED/ERROR back; state requests answered concurrently and possibly out of order
(the real peer answers each on its own goroutine); range queries in batches with QUERY_STATE_NEXT; a second
request for a transaction that already has one pending is recorded as a protocol violation (the real peer
drops it, leaving the chaincode stuck).
"""

from __future__ import annotations

import datetime as dt
import queue
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import grpc
from fabric_protos.common import common_pb2
from fabric_protos.ledger.queryresult import kv_query_result_pb2
from fabric_protos.msp import identities_pb2
from fabric_protos.peer import chaincode_pb2, proposal_pb2, proposal_response_pb2
from fabric_protos.peer import chaincode_shim_pb2 as shim_pb2
from fabric_protos.peer import chaincode_shim_pb2_grpc as shim_grpc

Msg = shim_pb2.ChaincodeMessage
T = Msg.Type


@dataclass
class Result:
    """What the chaincode answered for one transaction."""

    type: int
    response: proposal_response_pb2.Response
    event: tuple[str, bytes] | None
    raw: Msg


@dataclass
class _Tx:
    done: threading.Event = field(default_factory=threading.Event)
    result: Result | None = None
    pending: bool = False
    writes: dict[str, bytes | None] = field(default_factory=dict)


def signed_proposal(creator_msp: str, cert_pem: bytes, *, txid: str, channel: str,
                    timestamp: dt.datetime | None = None,
                    transient: dict[str, bytes] | None = None) -> proposal_pb2.SignedProposal:
    """A signed proposal as a client would send it (the signature is not checked by the shim)."""
    when = timestamp or dt.datetime.now(dt.UTC)
    channel_header = common_pb2.ChannelHeader(type=common_pb2.ENDORSER_TRANSACTION, channel_id=channel, tx_id=txid)
    channel_header.timestamp.FromDatetime(when)
    creator = identities_pb2.SerializedIdentity(mspid=creator_msp, id_bytes=cert_pem).SerializeToString()
    header = common_pb2.Header(channel_header=channel_header.SerializeToString(),
                               signature_header=common_pb2.SignatureHeader(creator=creator,
                                                                           nonce=b"n" * 24).SerializeToString())
    payload = proposal_pb2.ChaincodeProposalPayload(TransientMap=transient or {})
    proposal = proposal_pb2.Proposal(header=header.SerializeToString(), payload=payload.SerializeToString())
    return proposal_pb2.SignedProposal(proposal_bytes=proposal.SerializeToString(), signature=b"sig")


class FakePeer:
    """Connects to ``address`` and serves one chaincode stream; see the module docstring."""

    def __init__(self, address: str, *, channel_options: list[tuple[str, int]] | None = None,
                 batch_size: int = 3, shuffle: bool = True, respond: bool = True,
                 credentials: grpc.ChannelCredentials | None = None) -> None:
        self.state: dict[str, bytes] = {}
        self.registered_name: str | None = None
        self.violations: list[str] = []
        self.received: list[Msg] = []
        self.keepalives = 0
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.respond = respond  # False: never answer state requests (to strand transactions)
        self.error_for: Callable[[Msg], str | None] = lambda msg: None
        self.stream_error: BaseException | None = None
        self.ready = threading.Event()
        self.ended = threading.Event()
        self._txs: dict[tuple[str, str], _Tx] = {}
        self._iters: dict[str, list[bytes]] = {}
        self._lock = threading.Lock()
        self._outbox: queue.Queue[Msg | None] = queue.Queue()
        self._pool = ThreadPoolExecutor(16)
        self._channel = (grpc.secure_channel(address, credentials, options=channel_options or []) if credentials
                         else grpc.insecure_channel(address, options=channel_options or []))
        self._call = shim_grpc.ChaincodeStub(self._channel).Connect(self._requests())
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    # --- stream plumbing -----------------------------------------------------------------------------------
    def _requests(self) -> Iterator[Msg]:
        while True:
            msg = self._outbox.get()
            if msg is None:
                return
            yield msg

    def send(self, msg: Msg) -> None:
        self._outbox.put(msg)

    def _read(self) -> None:
        try:
            for msg in self._call:
                self.received.append(msg)
                self._handle(msg)
        except grpc.RpcError as exc:
            self.stream_error = exc
        finally:
            self.ended.set()

    def close(self) -> None:
        """Drop the connection abruptly, as a peer that restarts does."""
        self._call.cancel()
        self._channel.close()
        self._outbox.put(None)
        self._pool.shutdown(wait=False, cancel_futures=True)

    # --- the peer's side of the protocol ---------------------------------------------------------------------
    def _handle(self, msg: Msg) -> None:
        if msg.type == T.REGISTER:
            self.registered_name = chaincode_pb2.ChaincodeID.FromString(msg.payload).name
            self.send(Msg(type=T.REGISTERED))
            self.send(Msg(type=T.READY))
            self.ready.set()
        elif msg.type == T.KEEPALIVE:
            self.keepalives += 1
        elif msg.type in (T.COMPLETED, T.ERROR):
            tx = self._txs.get((msg.channel_id, msg.txid))
            if tx is None:
                self.violations.append(f"{T.Name(msg.type)} for unknown tx {msg.txid}")
                return
            response = proposal_response_pb2.Response()
            if msg.type == T.COMPLETED:
                response.ParseFromString(msg.payload)
            event = (msg.chaincode_event.event_name, bytes(msg.chaincode_event.payload)) \
                if msg.HasField("chaincode_event") else None
            tx.result = Result(msg.type, response, event, msg)
            if msg.type == T.COMPLETED and response.status < 400:
                with self._lock:
                    for key, value in tx.writes.items():
                        if value is None:
                            self.state.pop(key, None)
                        else:
                            self.state[key] = value
            tx.done.set()
        else:
            key = (msg.channel_id, msg.txid)
            with self._lock:
                tx = self._txs.get(key)
                if tx is None:
                    self.violations.append(f"{T.Name(msg.type)} outside a transaction ({msg.txid})")
                    return
                if tx.pending:
                    self.violations.append(f"second concurrent request {T.Name(msg.type)} for tx {msg.txid}")
                    return
                tx.pending = True
            if self.respond:
                self._pool.submit(self._answer, msg, tx)

    def _answer(self, msg: Msg, tx: _Tx) -> None:
        if self.shuffle:
            time.sleep(random.uniform(0, 0.01))
        try:
            reply = self._reply(msg, tx)
        except Exception as exc:  # a bug in the fake; make it visible
            self.violations.append(f"fake peer failed on {T.Name(msg.type)}: {exc!r}")
            reply = Msg(type=T.ERROR, payload=str(exc).encode(), txid=msg.txid, channel_id=msg.channel_id)
        with self._lock:
            tx.pending = False
        self.send(reply)

    def _reply(self, msg: Msg, tx: _Tx) -> Msg:
        def answer(payload: bytes = b"") -> Msg:
            return Msg(type=T.RESPONSE, payload=payload, txid=msg.txid, channel_id=msg.channel_id)

        refusal = self.error_for(msg)
        if refusal is not None:
            return Msg(type=T.ERROR, payload=refusal.encode(), txid=msg.txid, channel_id=msg.channel_id)
        if msg.type == T.GET_STATE:
            key = shim_pb2.GetState.FromString(msg.payload).key
            with self._lock:
                return answer(self.state.get(key, b""))
        if msg.type == T.PUT_STATE:
            put = shim_pb2.PutState.FromString(msg.payload)
            tx.writes[put.key] = bytes(put.value)
            return answer()
        if msg.type == T.DEL_STATE:
            tx.writes[shim_pb2.DelState.FromString(msg.payload).key] = None
            return answer()
        if msg.type == T.GET_STATE_BY_RANGE:
            request = shim_pb2.GetStateByRange.FromString(msg.payload)
            with self._lock:
                keys = sorted(k for k in self.state if k >= request.startKey and
                              (not request.endKey or k < request.endKey))
                rows = [kv_query_result_pb2.KV(namespace="cc", key=k, value=self.state[k]).SerializeToString()
                        for k in keys]
            iter_id = uuid.uuid4().hex
            self._iters[iter_id] = rows
            return answer(self._batch(iter_id).SerializeToString())
        if msg.type == T.QUERY_STATE_NEXT:
            iter_id = shim_pb2.QueryStateNext.FromString(msg.payload).id
            if iter_id not in self._iters:
                return Msg(type=T.ERROR, payload=b"query iterator not found", txid=msg.txid,
                           channel_id=msg.channel_id)
            return answer(self._batch(iter_id).SerializeToString())
        if msg.type == T.INVOKE_CHAINCODE:
            spec = chaincode_pb2.ChaincodeSpec.FromString(msg.payload)
            if spec.chaincode_id.name == self.registered_name or spec.chaincode_id.name.startswith("self"):
                return Msg(type=T.ERROR, payload=f"txid: {msg.txid}({msg.channel_id}) exists".encode(),
                           txid=msg.txid, channel_id=msg.channel_id)
            callee = proposal_response_pb2.Response(status=200, payload=b"|".join(spec.input.args))
            inner = Msg(type=T.COMPLETED, payload=callee.SerializeToString(), txid=msg.txid,
                        channel_id=msg.channel_id)
            return answer(inner.SerializeToString())
        if msg.type == T.QUERY_STATE_CLOSE:
            iter_id = shim_pb2.QueryStateClose.FromString(msg.payload).id
            self._iters.pop(iter_id, None)
            return answer(shim_pb2.QueryResponse(id=iter_id).SerializeToString())
        return Msg(type=T.ERROR, payload=f"fake peer does not handle {T.Name(msg.type)}".encode(),
                   txid=msg.txid, channel_id=msg.channel_id)

    def _batch(self, iter_id: str) -> shim_pb2.QueryResponse:
        rows = self._iters[iter_id]
        batch, rest = rows[:self.batch_size], rows[self.batch_size:]
        self._iters[iter_id] = rest
        if not rest:
            self._iters.pop(iter_id)
        return shim_pb2.QueryResponse(results=[shim_pb2.QueryResultBytes(resultBytes=r) for r in batch],
                                      has_more=bool(rest), id=iter_id)

    # --- driving transactions ----------------------------------------------------------------------------------
    def start_tx(self, *args: str | bytes, channel: str = "ch", txid: str | None = None, init: bool = False,
                 proposal: proposal_pb2.SignedProposal | None = None) -> tuple[str, str]:
        """Send a TRANSACTION (or INIT) and return its (channel, txid); wait with :meth:`result`."""
        txid = txid or uuid.uuid4().hex
        key = (channel, txid)
        self._txs[key] = _Tx()
        chaincode_input = chaincode_pb2.ChaincodeInput(args=[a.encode() if isinstance(a, str) else a for a in args])
        msg = Msg(type=T.INIT if init else T.TRANSACTION, payload=chaincode_input.SerializeToString(), txid=txid,
                  channel_id=channel)
        if proposal is not None:
            msg.proposal.CopyFrom(proposal)
        self.send(msg)
        return key

    def result(self, key: tuple[str, str], timeout_s: float = 10.0) -> Result:
        tx = self._txs[key]
        if not tx.done.wait(timeout_s):
            raise TimeoutError(f"no COMPLETED/ERROR for tx {key[1]} on {key[0]} within {timeout_s}s")
        assert tx.result is not None
        return tx.result

    def invoke(self, *args: str | bytes, **kwargs: object) -> Result:
        return self.result(self.start_tx(*args, **kwargs))  # type: ignore[arg-type]
