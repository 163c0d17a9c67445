"""The chaincode's view of one transaction: its input, its creator, and the ledger calls it makes on the peer.

A stub is created by the runtime for every TRANSACTION/INIT message and used on one worker thread. Every state
call is a request on the shared stream that waits for the peer's answer to this transaction (routed by channel
and transaction ID); an ERROR answer raises :class:`~gxshim.errors.PeerError`.

Private data (collections) is not supported by this runtime.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Generic, Protocol, Self, TypeVar

from fabric_protos.common import common_pb2
from fabric_protos.ledger.queryresult import kv_query_result_pb2
from fabric_protos.peer import chaincode_event_pb2, chaincode_pb2, proposal_pb2, proposal_response_pb2
from fabric_protos.peer import chaincode_shim_pb2 as shim_pb2

from gxshim import keys
from gxshim.errors import ChaincodeError, PeerError, ShimError
from gxshim.identity import ClientIdentity
from gxshim.response import Response

MsgType = shim_pb2.ChaincodeMessage.Type
R = TypeVar("R")


class PeerLink(Protocol):
    """How a stub reaches the peer: send one request for (channel, txid) and wait for its RESPONSE payload."""

    def ask(self, channel_id: str, txid: str, msg_type: int, payload: bytes) -> bytes: ...


class ReadOnlyError(ChaincodeError):
    """A write was attempted in a function that is declared evaluate-only."""


@dataclass(frozen=True)
class KV:
    """One result of a range query."""

    key: str
    value: bytes
    namespace: str = ""


@dataclass(frozen=True)
class KeyModification:
    """One committed change of a key, from :meth:`ChaincodeStub.get_history_for_key`."""

    tx_id: str
    value: bytes
    timestamp: dt.datetime
    is_delete: bool


@dataclass(frozen=True)
class PageInfo:
    """What the peer says about one page of a paginated range query."""

    fetched_records_count: int
    bookmark: str


class _ResultIterator(Generic[R]):
    """Results of a query, fetched from the peer batch by batch (QUERY_STATE_NEXT) as you iterate.

    Use it as a context manager (or call :meth:`close`) so that an iterator you stop early is closed on the peer
    (QUERY_STATE_CLOSE); the peer also closes every open iterator when the transaction completes.
    """

    def __init__(self, stub: ChaincodeStub, first: shim_pb2.QueryResponse) -> None:
        self._stub = stub
        self._response = first
        self._index = 0
        self._closed = False

    def _decode(self, raw: bytes) -> R:
        raise NotImplementedError

    def __iter__(self) -> Iterator[R]:
        return self

    def __next__(self) -> R:
        while self._index >= len(self._response.results):
            if self._closed or not self._response.has_more:
                self._closed = True
                raise StopIteration
            request = shim_pb2.QueryStateNext(id=self._response.id)
            self._response = self._stub._ask_query(MsgType.QUERY_STATE_NEXT, request.SerializeToString())
            self._index = 0
        raw = self._response.results[self._index].resultBytes
        self._index += 1
        return self._decode(raw)

    def close(self) -> None:
        """Release the iterator on the peer if it still has results there (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self._response.has_more:
            request = shim_pb2.QueryStateClose(id=self._response.id)
            self._stub._ask_query(MsgType.QUERY_STATE_CLOSE, request.SerializeToString())

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class StateQueryIterator(_ResultIterator[KV]):
    """Keys and values of a range query, in key order (see :class:`_ResultIterator` for batching and close)."""

    def _decode(self, raw: bytes) -> KV:
        kv = kv_query_result_pb2.KV()
        kv.ParseFromString(raw)
        return KV(kv.key, bytes(kv.value), kv.namespace)


class HistoryQueryIterator(_ResultIterator[KeyModification]):
    """Committed changes of one key, newest first (as the peer lists them)."""

    def _decode(self, raw: bytes) -> KeyModification:
        mod = kv_query_result_pb2.KeyModification()
        mod.ParseFromString(raw)
        when = dt.datetime.fromtimestamp(mod.timestamp.seconds, tz=dt.UTC) + dt.timedelta(
            microseconds=mod.timestamp.nanos // 1000)
        return KeyModification(mod.tx_id, bytes(mod.value), when, mod.is_delete)


class ChaincodeStub:
    """One transaction as the chaincode sees it (see the module docstring for threading and errors)."""

    def __init__(self, link: PeerLink, channel_id: str, tx_id: str, chaincode_input: chaincode_pb2.ChaincodeInput,
                 signed_proposal: proposal_pb2.SignedProposal | None, *, is_init: bool = False) -> None:
        self._link = link
        self.channel_id = channel_id
        self.tx_id = tx_id
        self.is_init = is_init
        self.args: list[bytes] = [bytes(a) for a in chaincode_input.args]
        self.decorations: dict[str, bytes] = {k: bytes(v) for k, v in chaincode_input.decorations.items()}
        self.signed_proposal = signed_proposal
        self.read_only = False
        self._event: chaincode_event_pb2.ChaincodeEvent | None = None

    # --- input ---------------------------------------------------------------------------------------------
    @cached_property
    def string_args(self) -> list[str]:
        """The arguments decoded as UTF-8 (undecodable bytes are replaced)."""
        return [a.decode("utf-8", errors="replace") for a in self.args]

    @property
    def function(self) -> str:
        """The first argument (the function name), or "" when there are no arguments."""
        return self.string_args[0] if self.args else ""

    @property
    def parameters(self) -> list[str]:
        """The arguments after the function name."""
        return self.string_args[1:]

    # --- the proposal: creator, time, transient data -----------------------------------------------------------
    @cached_property
    def _proposal(self) -> proposal_pb2.Proposal:
        if self.signed_proposal is None:
            raise ShimError("the transaction carries no signed proposal", channel=self.channel_id, txid=self.tx_id)
        proposal = proposal_pb2.Proposal()
        proposal.ParseFromString(self.signed_proposal.proposal_bytes)
        return proposal

    @cached_property
    def _header(self) -> common_pb2.Header:
        header = common_pb2.Header()
        header.ParseFromString(self._proposal.header)
        return header

    @cached_property
    def _channel_header(self) -> common_pb2.ChannelHeader:
        channel_header = common_pb2.ChannelHeader()
        channel_header.ParseFromString(self._header.channel_header)
        return channel_header

    @cached_property
    def creator_bytes(self) -> bytes:
        """The marshalled ``msp.SerializedIdentity`` of the submitter."""
        signature_header = common_pb2.SignatureHeader()
        signature_header.ParseFromString(self._header.signature_header)
        return bytes(signature_header.creator)

    @cached_property
    def creator(self) -> ClientIdentity:
        """The submitter: MSP ID, certificate, OUs and Fabric CA attributes."""
        return ClientIdentity.from_serialized(self.creator_bytes)

    @cached_property
    def tx_timestamp(self) -> dt.datetime:
        """The client-chosen transaction time from the channel header (UTC); the same on every endorser."""
        ts = self._channel_header.timestamp
        return dt.datetime.fromtimestamp(ts.seconds, tz=dt.UTC) + dt.timedelta(microseconds=ts.nanos // 1000)

    @property
    def tx_timestamp_seconds(self) -> int:
        """The transaction time as whole Unix seconds (what event payloads carry)."""
        return int(self._channel_header.timestamp.seconds)

    @cached_property
    def transient(self) -> dict[str, bytes]:
        """The proposal's transient map: data the client sent that does not go into the transaction."""
        payload = proposal_pb2.ChaincodeProposalPayload()
        payload.ParseFromString(self._proposal.payload)
        return {k: bytes(v) for k, v in payload.TransientMap.items()}

    # --- state -------------------------------------------------------------------------------------------------
    def _ask(self, msg_type: int, payload: bytes) -> bytes:
        return self._link.ask(self.channel_id, self.tx_id, msg_type, payload)

    def _ask_query(self, msg_type: int, payload: bytes) -> shim_pb2.QueryResponse:
        response = shim_pb2.QueryResponse()
        response.ParseFromString(self._ask(msg_type, payload))
        return response

    def _check_writable(self, action: str) -> None:
        if self.read_only:
            raise ReadOnlyError(f"{action} is not allowed: {self.function or 'this function'} is evaluate-only")

    def get_state(self, key: str) -> bytes | None:
        """The value of ``key`` as this transaction sees it (its own writes are not visible), None if absent."""
        if not key:
            raise keys.InvalidKeyError("key must not be empty")
        value = self._ask(MsgType.GET_STATE, shim_pb2.GetState(key=key).SerializeToString())
        return value or None

    def put_state(self, key: str, value: bytes | str) -> None:
        """Write ``key``; the write takes effect when the transaction commits. An empty value deletes the key."""
        self._check_writable(f"put_state({key!r})")
        if not key:
            raise keys.InvalidKeyError("key must not be empty")
        data = value.encode("utf-8") if isinstance(value, str) else bytes(value)
        self._ask(MsgType.PUT_STATE, shim_pb2.PutState(key=key, value=data).SerializeToString())

    def del_state(self, key: str) -> None:
        """Delete ``key`` when the transaction commits."""
        self._check_writable(f"del_state({key!r})")
        if not key:
            raise keys.InvalidKeyError("key must not be empty")
        self._ask(MsgType.DEL_STATE, shim_pb2.DelState(key=key).SerializeToString())

    def _range(self, start: str, end: str, metadata: bytes = b"") -> shim_pb2.QueryResponse:
        request = shim_pb2.GetStateByRange(startKey=start, endKey=end, metadata=metadata)
        return self._ask_query(MsgType.GET_STATE_BY_RANGE, request.SerializeToString())

    @staticmethod
    def _simple_range(start: str, end: str) -> tuple[str, str]:
        keys.check_simple_key(start, allow_empty=True)
        keys.check_simple_key(end, allow_empty=True)
        return start or keys.EMPTY_KEY_SUBSTITUTE, end

    def get_state_by_range(self, start: str, end: str) -> StateQueryIterator:
        """Simple keys in ``[start, end)`` in key order; "" for either bound means open-ended."""
        return StateQueryIterator(self, self._range(*self._simple_range(start, end)))

    def _paged(self, start: str, end: str, page_size: int, bookmark: str) -> tuple[StateQueryIterator, PageInfo]:
        if page_size <= 0:
            raise ChaincodeError(f"page_size must be positive, got {page_size}")
        metadata = shim_pb2.QueryMetadata(pageSize=page_size, bookmark=bookmark).SerializeToString()
        response = self._range(start, end, metadata)
        info = shim_pb2.QueryResponseMetadata()
        info.ParseFromString(response.metadata)
        return StateQueryIterator(self, response), PageInfo(info.fetched_records_count, info.bookmark)

    def get_state_by_range_with_pagination(self, start: str, end: str, page_size: int,
                                           bookmark: str = "") -> tuple[StateQueryIterator, PageInfo]:
        """One page of at most ``page_size`` simple keys in ``[start, end)``, resuming after ``bookmark``.

        The peer allows paginated queries only in transactions that write nothing (evaluate them).
        """
        return self._paged(*self._simple_range(start, end), page_size, bookmark)

    def get_state_by_partial_composite_key(self, object_type: str, attributes: list[str]) -> StateQueryIterator:
        """Every composite key of ``object_type`` whose leading attributes are ``attributes``."""
        return StateQueryIterator(self, self._range(*keys.partial_composite_range(object_type, attributes)))

    def get_state_by_partial_composite_key_with_pagination(
            self, object_type: str, attributes: list[str], page_size: int,
            bookmark: str = "") -> tuple[StateQueryIterator, PageInfo]:
        """A page of :meth:`get_state_by_partial_composite_key` (evaluate-only, like every paginated query)."""
        return self._paged(*keys.partial_composite_range(object_type, attributes), page_size, bookmark)

    def get_history_for_key(self, key: str) -> HistoryQueryIterator:
        """Every committed change of ``key`` (needs the peer's history database, on by default)."""
        if not key:
            raise keys.InvalidKeyError("key must not be empty")
        request = shim_pb2.GetHistoryForKey(key=key)
        return HistoryQueryIterator(self, self._ask_query(MsgType.GET_HISTORY_FOR_KEY, request.SerializeToString()))

    create_composite_key = staticmethod(keys.create_composite_key)
    split_composite_key = staticmethod(keys.split_composite_key)

    # --- other chaincodes -------------------------------------------------------------------------------------
    def invoke_chaincode(self, name: str, args: list[bytes | str], channel: str = "") -> Response:
        """Call chaincode ``name`` (on ``channel``, default this one) inside this transaction.

        Returns the callee's response (check ``.ok``). Raises PeerError when the peer refuses the call — as it
        does for a chaincode calling itself (``txid ... exists``): share code instead of re-entering.
        """
        target = f"{name}/{channel}" if channel else name
        spec = chaincode_pb2.ChaincodeSpec(
            chaincode_id=chaincode_pb2.ChaincodeID(name=target),
            input=chaincode_pb2.ChaincodeInput(args=[a.encode("utf-8") if isinstance(a, str) else a for a in args]))
        raw = self._ask(MsgType.INVOKE_CHAINCODE, spec.SerializeToString())
        inner = shim_pb2.ChaincodeMessage()
        inner.ParseFromString(raw)
        if inner.type != MsgType.COMPLETED:
            raise PeerError("INVOKE_CHAINCODE", inner.payload.decode("utf-8", errors="replace"),
                            channel=self.channel_id, txid=self.tx_id)
        result = proposal_response_pb2.Response()
        result.ParseFromString(inner.payload)
        return Response(result.status, result.message, bytes(result.payload))

    # --- events ------------------------------------------------------------------------------------------------
    def set_event(self, name: str, payload: bytes | str) -> None:
        """Attach the transaction's chaincode event. A transaction carries one event: a later call replaces it."""
        if not name:
            raise ChaincodeError("event name must not be empty")
        data = payload.encode("utf-8") if isinstance(payload, str) else bytes(payload)
        self._event = chaincode_event_pb2.ChaincodeEvent(event_name=name, payload=data)

    @property
    def event(self) -> chaincode_event_pb2.ChaincodeEvent | None:
        """The event set so far (what goes into the COMPLETED message), or None."""
        return self._event
