"""A fake Gateway service on loopback TLS that checks every request the way a peer would, and a runner that
connects a real :class:`~gxlib.fabric.gateway.Gateway` to it (shared by the Gateway and the benchmark tests)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from fabric_protos.common import common_pb2
from fabric_protos.gateway import gateway_pb2, gateway_pb2_grpc
from fabric_protos.peer import chaincode_pb2, events_pb2, events_pb2_grpc, proposal_pb2, proposal_response_pb2
from google.protobuf import any_pb2
from google.rpc import status_pb2

from gxlib.fabric.connection import PeerEndpoint
from gxlib.fabric.gateway import Gateway
from gxlib.fabric.proposal import transaction_id
from gxlib.fabric.signer import EcdsaSigner, digest

from .builders import endorsed_envelope, key_pem, new_identity, new_key, self_signed_cert

T = TypeVar("T")


class FakeGateway(gateway_pb2_grpc.GatewayServicer):
    """Checks every request the way a peer would (tx ID, signatures) and answers from a script."""

    def __init__(self, public_key: ec.EllipticCurvePublicKey) -> None:
        self.public_key = public_key
        self.commit_codes: dict[str, int] = {}
        self.submitted: list[common_pb2.Envelope] = []
        self.commit_status_calls = 0
        self.deliver: FakeDeliver | None = None

    def _verify(self, message: bytes, signature: bytes) -> None:
        self.public_key.verify(signature, digest(message), ec.ECDSA(Prehashed(hashes.SHA256())))

    def _open(self, signed: proposal_pb2.SignedProposal, tx_id: str) -> list[bytes]:
        self._verify(signed.proposal_bytes, signed.signature)
        proposal = proposal_pb2.Proposal()
        proposal.ParseFromString(signed.proposal_bytes)
        header = common_pb2.Header()
        header.ParseFromString(proposal.header)
        signature_header = common_pb2.SignatureHeader()
        signature_header.ParseFromString(header.signature_header)
        assert transaction_id(signature_header.nonce, signature_header.creator) == tx_id
        payload = proposal_pb2.ChaincodeProposalPayload()
        payload.ParseFromString(proposal.payload)
        spec = chaincode_pb2.ChaincodeInvocationSpec()
        spec.ParseFromString(payload.input)
        return list(spec.chaincode_spec.input.args)

    async def Evaluate(self, request, context):
        args = self._open(request.proposed_transaction, request.transaction_id)
        return gateway_pb2.EvaluateResponse(result=proposal_response_pb2.Response(status=200,
                                                                                  payload=b"|".join(args)))

    async def Endorse(self, request, context):
        args = self._open(request.proposed_transaction, request.transaction_id)
        if args[0] == b"Fail":
            status = status_pb2.Status(code=grpc.StatusCode.ABORTED.value[0], message="failed to endorse")
            packed = any_pb2.Any()
            packed.Pack(gateway_pb2.ErrorDetail(address="peer0:7051", msp_id="Org1MSP",
                                                message="chaincode response 500, " + args[1].decode()))
            status.details.append(packed)
            await context.abort(grpc.StatusCode.ABORTED, "failed to endorse transaction, see attached details",
                                trailing_metadata=(("grpc-status-details-bin", status.SerializeToString()),))
        return gateway_pb2.EndorseResponse(prepared_transaction=endorsed_envelope(
            request.transaction_id, channel=request.channel_id, result=b"endorsed:" + args[-1]))

    async def Submit(self, request, context):
        envelope = request.prepared_transaction
        self._verify(envelope.payload, envelope.signature)
        self.submitted.append(envelope)
        if self.deliver is not None:
            self.deliver.ordered(request.transaction_id, self.commit_codes.get(request.transaction_id, 0))
        return gateway_pb2.SubmitResponse()

    async def CommitStatus(self, request, context):
        self.commit_status_calls += 1
        self._verify(request.request, request.signature)
        inner = gateway_pb2.CommitStatusRequest()
        inner.ParseFromString(request.request)
        return gateway_pb2.CommitStatusResponse(result=self.commit_codes.get(inner.transaction_id, 0), block_number=7)


class FakeDeliver(events_pb2_grpc.DeliverServicer):
    """Filtered block delivery: the newest block (number 100) at once, then one block per ordered transaction
    (block 101, 102, …) unless ``hold`` — ``cut()`` then sends what is held; ``stream_codes`` overrides the code the
    stream reports for a tx ID (the ledger's stays in ``FakeGateway.commit_codes``); ``break_streams()`` aborts."""

    def __init__(self, public_key: ec.EllipticCurvePublicKey) -> None:
        self.public_key = public_key
        self.hold = False
        self.stream_codes: dict[str, int] = {}
        self.streams_opened = 0
        self._held: list[events_pb2.FilteredTransaction] = []
        self._next_block = 101
        self._queues: list[asyncio.Queue[events_pb2.FilteredBlock | None]] = []

    def ordered(self, tx_id: str, code: int) -> None:
        self._held.append(events_pb2.FilteredTransaction(
            txid=tx_id, type=common_pb2.ENDORSER_TRANSACTION, tx_validation_code=self.stream_codes.get(tx_id, code)))
        if not self.hold:
            self.cut()

    def cut(self) -> None:
        block = events_pb2.FilteredBlock(channel_id="ch", number=self._next_block, filtered_transactions=self._held)
        self._held, self._next_block = [], self._next_block + 1
        for queue in self._queues:
            queue.put_nowait(block)

    def break_streams(self) -> None:
        for queue in self._queues:
            queue.put_nowait(None)

    async def DeliverFiltered(self, request_iterator, context):
        seek = await anext(aiter(request_iterator))
        self.public_key.verify(seek.signature, digest(seek.payload), ec.ECDSA(Prehashed(hashes.SHA256())))
        self.streams_opened += 1
        queue: asyncio.Queue[events_pb2.FilteredBlock | None] = asyncio.Queue()
        self._queues.append(queue)
        try:
            yield events_pb2.DeliverResponse(filtered_block=events_pb2.FilteredBlock(channel_id="ch", number=100))
            while (block := await queue.get()) is not None:
                yield events_pb2.DeliverResponse(filtered_block=block)
            await context.abort(grpc.StatusCode.UNAVAILABLE, "peer going away")
        finally:
            self._queues.remove(queue)


def with_gateway(body: Callable[[Gateway, FakeGateway], Awaitable[T]], *, deliver: bool = False,
                 gateway_options: dict[str, Any] | None = None,
                 server_options: list[tuple[str, Any]] | None = None) -> T:
    """Run ``body`` against a fake Gateway service (with filtered block delivery if ``deliver``: ``fake.deliver``;
    ``server_options``: gRPC options of the fake's server)."""
    identity, key = new_identity()
    tls_key = new_key()
    cert = self_signed_cert(tls_key, "peer0.test.local", ("peer0.test.local",), ca=True)
    fake = FakeGateway(key.public_key())
    if deliver:
        fake.deliver = FakeDeliver(key.public_key())

    async def run() -> T:
        server = grpc.aio.server(options=server_options)
        gateway_pb2_grpc.add_GatewayServicer_to_server(fake, server)
        if fake.deliver is not None:
            events_pb2_grpc.add_DeliverServicer_to_server(fake.deliver, server)
        port = server.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials([(key_pem(tls_key), cert)]))
        await server.start()
        try:
            endpoint = PeerEndpoint(f"127.0.0.1:{port}", cert, "peer0.test.local")
            async with Gateway(endpoint, identity, EcdsaSigner(key), **(gateway_options or {})) as gateway:
                return await body(gateway, fake)
        finally:
            await server.stop(None)

    return asyncio.run(run())
