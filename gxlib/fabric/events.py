"""Chaincode events read from the peer's block delivery, positioned by block number and transaction index.

Events are taken from full blocks (the peer's ``Deliver`` service), so each one carries its exact position and
its transaction's timestamp, and only transactions the peers validated as VALID yield events. (The Gateway's own
``ChaincodeEvents`` RPC gives neither the transaction index nor the timestamp, which the projector's checkpoint
and lag need.) A stream resumes
from a :class:`~gxlib.fabric.checkpoint.Checkpoint`: it asks for blocks from the checkpoint's block and skips
every transaction at or before the checkpoint's index. After a transport failure it reconnects (with backoff) from
the last event it delivered, so a consumer sees every event once, in ledger order.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

import grpc
from fabric_protos.common import common_pb2
from fabric_protos.orderer import ab_pb2
from fabric_protos.peer import chaincode_event_pb2, events_pb2, events_pb2_grpc, transaction_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from gxlib.fabric.block import BlockTransaction, block_transactions
from gxlib.fabric.checkpoint import Checkpoint, Checkpointer
from gxlib.fabric.connection import PeerEndpoint
from gxlib.fabric.errors import EventsError, TransportError, error_from_rpc
from gxlib.fabric.identity import Identity
from gxlib.fabric.proposal import TransactionContext, now_timestamp
from gxlib.fabric.signer import Signer, digest
from gxlib.fabric.transaction import chaincode_action

log = logging.getLogger(__name__)

_MAX_BLOCK = 2**64 - 1


@dataclass(frozen=True)
class ChaincodeEvent:
    """One chaincode event of a VALID transaction, with where it is on the ledger."""

    block_number: int
    tx_index: int
    tx_id: str
    chaincode: str
    event_name: str
    payload: bytes
    timestamp: datetime

    @property
    def position(self) -> Checkpoint:
        """The checkpoint to store once this event has been handled."""
        return Checkpoint(self.block_number, self.tx_index)


# One event as plain values, cheap to build and to send to another process: block number, transaction index,
# transaction ID, event name, payload, and the transaction's timestamp in seconds since the epoch.
EventTuple = tuple[int, int, str, str, bytes, float]


def _valid_chaincode_events(block: common_pb2.Block, chaincode: str | None
                            ) -> Iterator[tuple[BlockTransaction, chaincode_event_pb2.ChaincodeEvent]]:
    for tx in block_transactions(block):
        if tx.validation_code != transaction_pb2.VALID or not tx.is_endorser_transaction:
            continue
        action = chaincode_action(tx.data)
        if not action.events:
            continue
        event = chaincode_event_pb2.ChaincodeEvent()
        event.ParseFromString(action.events)
        if not event.event_name or (chaincode is not None and event.chaincode_id != chaincode):
            continue
        yield tx, event


def _seconds(stamp: Timestamp) -> float:
    return stamp.seconds + stamp.nanos / 1e9


def events_in_block(block: common_pb2.Block, chaincode: str | None = None) -> list[ChaincodeEvent]:
    """The chaincode events of the VALID transactions in ``block`` (of ``chaincode`` only, if given), in order."""
    return [ChaincodeEvent(block_number=tx.block_number, tx_index=tx.index, tx_id=tx.tx_id or event.tx_id,
                           chaincode=event.chaincode_id, event_name=event.event_name, payload=event.payload,
                           timestamp=datetime.fromtimestamp(_seconds(tx.channel_header.timestamp), tz=UTC))
            for tx, event in _valid_chaincode_events(block, chaincode)]


def event_tuples_in_block(block: common_pb2.Block, chaincode: str) -> list[EventTuple]:
    """The events of ``chaincode`` in ``block`` as :data:`EventTuple` values (what :func:`events_in_block` gives,
    without building objects)."""
    return [(tx.block_number, tx.index, tx.tx_id or event.tx_id, event.event_name, event.payload,
             _seconds(tx.channel_header.timestamp))
            for tx, event in _valid_chaincode_events(block, chaincode)]


def seek_envelope(channel: str, identity: Identity, signer: Signer, start_block: int | None,
                  tls_cert_hash: bytes = b"", stop_block: int | None = None) -> common_pb2.Envelope:
    """A signed request for blocks from ``start_block`` (``None``: the newest) to ``stop_block`` inclusive
    (``None``: forever, waiting for new ones)."""
    context = TransactionContext.new(identity)
    channel_header = common_pb2.ChannelHeader(type=common_pb2.DELIVER_SEEK_INFO, channel_id=channel,
                                              tx_id=context.tx_id, timestamp=now_timestamp(),
                                              tls_cert_hash=tls_cert_hash)
    start = (ab_pb2.SeekPosition(newest=ab_pb2.SeekNewest()) if start_block is None
             else ab_pb2.SeekPosition(specified=ab_pb2.SeekSpecified(number=start_block)))
    stop = ab_pb2.SeekPosition(specified=ab_pb2.SeekSpecified(number=_MAX_BLOCK if stop_block is None
                                                              else stop_block))
    seek = ab_pb2.SeekInfo(start=start, stop=stop, behavior=ab_pb2.SeekInfo.BLOCK_UNTIL_READY)
    payload = common_pb2.Payload(header=common_pb2.Header(channel_header=channel_header.SerializeToString(),
                                                          signature_header=context.signature_header()),
                                 data=seek.SerializeToString()).SerializeToString()
    return common_pb2.Envelope(payload=payload, signature=signer.sign(digest(payload)))


class ChaincodeEventStream:
    """An async iterator of chaincode events from a position; reconnects after transport failures.

    Use ``async for event in stream`` and, once an event is handled, ``checkpointer.save(event.position)`` (or pass
    ``checkpointer`` and call :meth:`checkpoint`). ``close()`` ends it.
    """

    def __init__(self, channel: grpc.aio.Channel, endpoint: PeerEndpoint, channel_name: str, identity: Identity,
                 signer: Signer, chaincode: str | None, *, start: Checkpoint | None = None,
                 start_block: int | None = None, checkpointer: Checkpointer | None = None, reconnect: bool = True,
                 max_backoff_s: float = 10.0) -> None:
        self._stub = events_pb2_grpc.DeliverStub(channel)
        self._endpoint = endpoint
        self._channel_name = channel_name
        self._identity = identity
        self._signer = signer
        self._chaincode = chaincode
        self._checkpointer = checkpointer
        stored = checkpointer.checkpoint if checkpointer else None
        # The last position handed out (events at or before it are never delivered again).
        self._position: Checkpoint | None = stored or start or (
            Checkpoint.start_of(start_block) if start_block is not None else None)
        self._reconnect = reconnect
        self._max_backoff_s = max_backoff_s
        self._call: grpc.aio.StreamStreamCall | None = None
        self._closed = False
        self.reconnects = 0

    @property
    def position(self) -> Checkpoint | None:
        return self._position

    def checkpoint(self, event: ChaincodeEvent) -> None:
        """Store ``event`` as handled in the stream's checkpointer."""
        if self._checkpointer is None:
            raise EventsError("this event stream has no checkpointer", code=grpc.StatusCode.FAILED_PRECONDITION)
        self._checkpointer.save(event.position)

    def close(self) -> None:
        self._closed = True
        if self._call is not None:
            self._call.cancel()

    def __aiter__(self) -> AsyncIterator[ChaincodeEvent]:
        return self._events()

    async def _events(self) -> AsyncIterator[ChaincodeEvent]:
        failures = 0
        while not self._closed:
            try:
                async for block in self._blocks():
                    failures = 0
                    for event in events_in_block(block, self._chaincode):
                        if self._closed:
                            return
                        if self._position is not None and self._position.is_after(event.block_number,
                                                                                   event.tx_index):
                            continue
                        self._position = event.position
                        yield event
                    # A block fully read: a reconnect may start at the next one.
                    block_end = Checkpoint(block.header.number, len(block.data.data) - 1)
                    if self._position is None or self._position < block_end:
                        self._position = block_end
            except TransportError as exc:
                if self._closed or not self._reconnect:
                    raise
                failures += 1
                self.reconnects += 1
                delay = min(self._max_backoff_s, 0.2 * 2 ** min(failures, 8)) * (0.5 + random.random() / 2)
                log.warning("chaincode event stream from %s broke (%s); reconnecting in %.1fs from %s",
                            self._endpoint.address, exc.code.name, delay, self._position)
                await asyncio.sleep(delay)

    async def _blocks(self) -> AsyncIterator[common_pb2.Block]:
        start_block = None if self._position is None else self._position.block_number
        request = seek_envelope(self._channel_name, self._identity, self._signer, start_block,
                                self._endpoint.tls_cert_hash)
        call = self._stub.Deliver()
        self._call = call
        try:
            async for block in _deliver(call, request, self._endpoint, self._channel_name):
                yield block
        except (grpc.aio.AioRpcError, asyncio.CancelledError):
            if self._closed:
                return
            raise


async def read_blocks(channel: grpc.aio.Channel, endpoint: PeerEndpoint, channel_name: str, identity: Identity,
                      signer: Signer, start_block: int, stop_block: int) -> AsyncIterator[common_pb2.Block]:
    """Blocks ``start_block``..``stop_block`` (inclusive) of a channel from a peer, waiting for ones not yet cut."""
    request = seek_envelope(channel_name, identity, signer, start_block, endpoint.tls_cert_hash, stop_block)
    call = events_pb2_grpc.DeliverStub(channel).Deliver()
    async for block in _deliver(call, request, endpoint, channel_name):
        yield block
        if block.header.number >= stop_block:
            return


async def _deliver(call: grpc.aio.StreamStreamCall[common_pb2.Envelope, events_pb2.DeliverResponse],
                   request: common_pb2.Envelope, endpoint: PeerEndpoint,
                   channel_name: str) -> AsyncIterator[common_pb2.Block]:
    try:
        await call.write(request)
        while True:
            answer = await call.read()
            if answer is grpc.aio.EOF:
                raise error_from_rpc(_Ended(), "events", endpoint=endpoint.address)
            # read() is typed `object | DeliverResponse` (EOF is a bare object); past the check it is a response.
            response = cast(events_pb2.DeliverResponse, answer)
            kind = response.WhichOneof("Type")
            if kind == "block":
                yield response.block
            elif kind == "status":
                if response.status == common_pb2.SUCCESS:
                    return
                status = common_pb2.Status.Name(response.status)
                raise EventsError(f"block delivery from {endpoint.address} on channel {channel_name} ended with "
                                  f"status {status}", code=grpc.StatusCode.ABORTED, server_message=status)
    except grpc.aio.AioRpcError as exc:
        if exc.code() is grpc.StatusCode.CANCELLED:
            raise
        raise error_from_rpc(exc, "events", endpoint=endpoint.address) from exc
    finally:
        call.cancel()


class _Ended(grpc.RpcError):
    """The server closed the stream without a status (treated like an unavailable peer, so it reconnects)."""

    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.UNAVAILABLE

    def details(self) -> str:
        return "the block stream ended"
