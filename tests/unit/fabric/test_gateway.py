"""The Gateway client's requests and answers, against a fake Gateway service on loopback TLS."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from fabric_protos.common import common_pb2
from fabric_protos.gateway import gateway_pb2, gateway_pb2_grpc
from fabric_protos.peer import chaincode_pb2, proposal_pb2, proposal_response_pb2, transaction_pb2
from google.protobuf import any_pb2
from google.rpc import status_pb2

from gxlib.fabric.bench import bench_submits, percentile
from gxlib.fabric.connection import PeerEndpoint
from gxlib.fabric.errors import CommitError, EndorseError
from gxlib.fabric.gateway import Gateway
from gxlib.fabric.proposal import transaction_id
from gxlib.fabric.signer import EcdsaSigner, digest
from gxlib.fabric.sync import SyncGateway

from .builders import endorsed_envelope, key_pem, new_identity, new_key, self_signed_cert

T = TypeVar("T")


class FakeGateway(gateway_pb2_grpc.GatewayServicer):
    """Checks every request the way a peer would (tx ID, signatures) and answers from a script."""

    def __init__(self, public_key: ec.EllipticCurvePublicKey) -> None:
        self.public_key = public_key
        self.commit_codes: dict[str, int] = {}
        self.submitted: list[common_pb2.Envelope] = []

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
        return gateway_pb2.SubmitResponse()

    async def CommitStatus(self, request, context):
        self._verify(request.request, request.signature)
        inner = gateway_pb2.CommitStatusRequest()
        inner.ParseFromString(request.request)
        return gateway_pb2.CommitStatusResponse(result=self.commit_codes.get(inner.transaction_id, 0), block_number=7)


def _with_gateway(body: Callable[[Gateway, FakeGateway], Awaitable[T]]) -> T:
    identity, key = new_identity()
    tls_key = new_key()
    cert = self_signed_cert(tls_key, "peer0.test.local", ("peer0.test.local",), ca=True)
    fake = FakeGateway(key.public_key())

    async def run() -> T:
        server = grpc.aio.server()
        gateway_pb2_grpc.add_GatewayServicer_to_server(fake, server)
        port = server.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials([(key_pem(tls_key), cert)]))
        await server.start()
        try:
            endpoint = PeerEndpoint(f"127.0.0.1:{port}", cert, "peer0.test.local")
            async with Gateway(endpoint, identity, EcdsaSigner(key)) as gateway:
                return await body(gateway, fake)
        finally:
            await server.stop(None)

    return asyncio.run(run())


def test_submit_endorses_sends_the_signed_envelope_and_waits_for_a_valid_commit() -> None:
    async def body(gateway: Gateway, fake: FakeGateway) -> None:
        contract = gateway.network("ch").contract("cc", "Token")
        result = await contract.submit("Mint", "acct", "5")
        assert result.result == b"endorsed:5"
        assert (result.status.code_name, result.status.block_number) == ("VALID", 7)
        assert len(fake.submitted) == 1
        assert await contract.evaluate("Balance", "acct") == b"Token:Balance|acct"

    _with_gateway(body)


def test_many_submits_share_one_connection_concurrently() -> None:
    async def body(gateway: Gateway, fake: FakeGateway) -> None:
        contract = gateway.network("ch").contract("cc")
        results = await asyncio.gather(*(contract.submit("Put", str(i)) for i in range(50)))
        assert len({r.tx_id for r in results}) == 50 and len(fake.submitted) == 50

    _with_gateway(body)


def test_an_invalidated_transaction_raises_commit_error_and_a_rejection_raises_endorse_error() -> None:
    async def body(gateway: Gateway, fake: FakeGateway) -> None:
        contract = gateway.network("ch").contract("cc")
        prepared = await contract.prepare("Put", "k")
        fake.commit_codes[prepared.tx_id] = transaction_pb2.MVCC_READ_CONFLICT
        with pytest.raises(CommitError) as commit:
            await contract.submit_prepared(prepared)
        assert (commit.value.code, commit.value.tx_id) == ("MVCC_READ_CONFLICT", prepared.tx_id)
        with pytest.raises(EndorseError) as endorse:
            await contract.submit("Fail", "remark cannot be empty")
        assert endorse.value.chaincode_message == "remark cannot be empty"
        assert endorse.value.details[0].address == "peer0:7051"

    _with_gateway(body)


def test_the_sync_facade_runs_on_its_own_loop_and_returns_plain_results() -> None:
    async def body(gateway: Gateway, fake: FakeGateway) -> None:
        def blocking() -> bytes:
            with SyncGateway(gateway.endpoint, gateway.identity, gateway.signer) as sync:
                contract = sync.network("ch").contract("cc")
                assert contract.submit("Put", "x").status.successful
                return contract.evaluate("Get", "x")

        # From another thread: the fake server needs this loop free while the facade blocks.
        assert await asyncio.to_thread(blocking) == b"Get|x"

    _with_gateway(body)


def test_bench_counts_every_committed_submit_and_reports_latency_percentiles() -> None:
    async def body(gateway: Gateway, fake: FakeGateway) -> None:
        contract = gateway.network("ch").contract("cc")
        result = await bench_submits(contract, "Put", lambda n: (f"k{n}", "v"), concurrency=4, seconds=0.3)
        assert result.committed == len(fake.submitted) > 0 and result.failed == 0
        assert 0 < result.p50_ms <= result.p95_ms <= result.p99_ms
        assert result.to_json()["concurrency"] == 4

    _with_gateway(body)


def test_percentile_is_nearest_rank() -> None:
    assert percentile([5, 1, 3, 2, 4], 0.5) == 3
    assert percentile(list(range(1, 101)), 0.95) == 95
    assert percentile([], 0.99) == 0.0
