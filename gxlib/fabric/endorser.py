"""Proposals sent straight to one peer's Endorser service, bypassing the Gateway.

Needed for what is peer-local rather than a channel transaction — installing a chaincode package and asking which
packages a peer has installed — where the caller must pick the peer and act as that peer's org admin.
"""

from __future__ import annotations

import grpc
from fabric_protos.peer import peer_pb2_grpc, proposal_response_pb2

from gxlib.fabric.connection import PeerEndpoint
from gxlib.fabric.errors import ProposalResponseError, error_from_rpc
from gxlib.fabric.proposal import SignedProposal

SUCCESS_LIMIT = 400  # Fabric: status < 400 is success (200), >= 400 an error (500 from chaincode)


class Endorser:
    """The Endorser service of one peer, over its own ``grpc.aio`` channel."""

    def __init__(self, endpoint: PeerEndpoint, timeout: float = 120.0) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self._channel: grpc.aio.Channel | None = None

    @property
    def peer_name(self) -> str:
        return self.endpoint.name or self.endpoint.address

    async def process(self, proposal: SignedProposal, operation: str) -> bytes:
        """Send ``proposal``; return the chaincode's response payload or raise ProposalResponseError."""
        if self._channel is None:
            self._channel = self.endpoint.open_channel()
        stub = peer_pb2_grpc.EndorserStub(self._channel)
        try:
            response: proposal_response_pb2.ProposalResponse = await stub.ProcessProposal(
                proposal.to_proto(), timeout=self.timeout)
        except grpc.aio.AioRpcError as exc:
            raise error_from_rpc(exc, operation, endpoint=self.endpoint.address, tx_id=proposal.tx_id) from exc
        status = response.response.status
        if status >= SUCCESS_LIMIT:
            raise ProposalResponseError(self.peer_name, operation, status, response.response.message,
                                        tx_id=proposal.tx_id)
        return bytes(response.response.payload)

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = None
