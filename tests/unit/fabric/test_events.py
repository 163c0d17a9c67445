"""Chaincode events from blocks, and the event stream's resume/reconnect logic against a fake peer on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
from fabric_protos.common import common_pb2
from fabric_protos.orderer import ab_pb2
from fabric_protos.peer import events_pb2, events_pb2_grpc, transaction_pb2

from gxlib.fabric.block import block_transactions
from gxlib.fabric.checkpoint import Checkpoint, FileCheckpointer
from gxlib.fabric.connection import PeerEndpoint
from gxlib.fabric.events import ChaincodeEvent, ChaincodeEventStream, events_in_block
from gxlib.fabric.signer import EcdsaSigner

from .builders import block, endorsed_envelope, key_pem, new_identity, new_key, self_signed_cert

VALID, MVCC = transaction_pb2.VALID, transaction_pb2.MVCC_READ_CONFLICT


def _ledger() -> list[common_pb2.Block]:
    def ev(tx: str, cc: str = "gx", name: str = "E") -> common_pb2.Envelope:
        return endorsed_envelope(tx, chaincode=cc, event=(name, tx.encode()))

    return [
        block(0, [endorsed_envelope("config")], [VALID]),
        block(1, [ev("b1t0"), ev("b1t1")], [VALID, VALID]),
        # invalid tx, another chaincode's event, a tx without an event, then ours
        block(2, [ev("b2t0"), ev("b2t1", cc="other"), endorsed_envelope("b2t2"), ev("b2t3")],
              [MVCC, VALID, VALID, VALID]),
        block(3, [ev("b3t0")], [VALID]),
        block(4, [ev("b4t0"), ev("b4t1")], [VALID, VALID]),
    ]


def _positions(events: list[ChaincodeEvent]) -> list[tuple[int, int, str]]:
    return [(e.block_number, e.tx_index, e.tx_id) for e in events]


def test_only_valid_transactions_of_the_chaincode_yield_events_with_their_position_and_timestamp() -> None:
    events = events_in_block(_ledger()[2], "gx")
    assert _positions(events) == [(2, 3, "b2t3")]
    assert events[0].payload == b"b2t3" and events[0].event_name == "E"
    assert events[0].timestamp.timestamp() == 1_700_000_000
    assert events[0].position == Checkpoint(2, 3)
    assert _positions(events_in_block(_ledger()[2], None)) == [(2, 1, "b2t1"), (2, 3, "b2t3")]
    assert [t.validation_code_name for t in block_transactions(_ledger()[2])] == ["MVCC_READ_CONFLICT", "VALID",
                                                                                "VALID", "VALID"]


class FakePeer(events_pb2_grpc.DeliverServicer):
    """Serves the ledger from the requested block; drops the first connection after ``drop_after`` blocks."""

    def __init__(self, ledger: list[common_pb2.Block], drop_after: int | None) -> None:
        self.ledger = ledger
        self.drop_after = drop_after
        self.seeks: list[int] = []

    async def Deliver(self, request_iterator: AsyncIterator[common_pb2.Envelope],
                      context: grpc.aio.ServicerContext) -> AsyncIterator[events_pb2.DeliverResponse]:
        envelope = await request_iterator.__anext__()
        payload = common_pb2.Payload()
        payload.ParseFromString(envelope.payload)
        seek = ab_pb2.SeekInfo()
        seek.ParseFromString(payload.data)
        start = seek.start.specified.number
        self.seeks.append(start)
        for sent, blk in enumerate(self.ledger[start:]):
            if self.drop_after is not None and sent == self.drop_after:
                self.drop_after = None
                await context.abort(grpc.StatusCode.UNAVAILABLE, "peer going down")
            yield events_pb2.DeliverResponse(block=blk)
        await asyncio.Event().wait()  # like a peer waiting for the next block


@pytest.fixture()
def tls_pair() -> tuple[bytes, bytes]:
    key = new_key()
    return key_pem(key), self_signed_cert(key, "peer0.test.local", ("peer0.test.local",), ca=True)


async def _serve(peer: FakePeer, tls_pair: tuple[bytes, bytes]) -> tuple[grpc.aio.Server, int]:
    server = grpc.aio.server()
    events_pb2_grpc.add_DeliverServicer_to_server(peer, server)
    port = server.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials([tls_pair]))
    await server.start()
    return server, port


async def _take(stream: ChaincodeEventStream, count: int, on_event=None) -> list[ChaincodeEvent]:
    got: list[ChaincodeEvent] = []

    async def consume() -> None:
        async for event in stream:
            got.append(event)
            if on_event:
                on_event(event)
            if len(got) == count:
                stream.close()

    await asyncio.wait_for(consume(), timeout=20)
    return got


def _stream(port: int, cert: bytes, **kwargs) -> ChaincodeEventStream:
    endpoint = PeerEndpoint(f"127.0.0.1:{port}", cert, "peer0.test.local")
    identity, key = new_identity()
    return ChaincodeEventStream(endpoint.open_channel(), endpoint, "ch", identity, EcdsaSigner(key), "gx", **kwargs)


def test_a_dropped_connection_resumes_after_the_last_event_without_loss_or_repeats(tls_pair) -> None:
    peer = FakePeer(_ledger(), drop_after=2)  # drops after blocks 1 and 2

    async def run() -> tuple[ChaincodeEventStream, list[ChaincodeEvent]]:
        server, port = await _serve(peer, tls_pair)
        try:
            stream = _stream(port, tls_pair[1], start=Checkpoint(1, 0))
            return stream, await _take(stream, 4)
        finally:
            await server.stop(None)

    stream, events = asyncio.run(run())
    assert _positions(events) == [(1, 1, "b1t1"), (2, 3, "b2t3"), (3, 0, "b3t0"), (4, 0, "b4t0")]
    assert stream.reconnects == 1
    assert peer.seeks == [1, 2]  # reconnected at the block of the last event, skipping what it had delivered


def test_a_restarted_consumer_continues_from_its_file_checkpoint(tls_pair, tmp_path) -> None:
    peer = FakePeer(_ledger(), drop_after=None)
    path = tmp_path / "events.checkpoint"

    async def run() -> tuple[list[ChaincodeEvent], list[ChaincodeEvent]]:
        server, port = await _serve(peer, tls_pair)
        try:
            first = FileCheckpointer(path)
            before = await _take(_stream(port, tls_pair[1], start_block=0, checkpointer=first), 3,
                                 lambda e: first.save(e.position))
            second = FileCheckpointer(path)  # a new process reading the same file
            return before, await _take(_stream(port, tls_pair[1], start_block=0, checkpointer=second), 2)
        finally:
            await server.stop(None)

    before, after = asyncio.run(run())
    assert _positions(before) == [(1, 0, "b1t0"), (1, 1, "b1t1"), (2, 3, "b2t3")]
    assert _positions(after) == [(3, 0, "b3t0"), (4, 0, "b4t0")]
    assert peer.seeks == [0, 2]
