"""A connection to a peer's Fabric Gateway service, acting as one identity.

One :class:`Gateway` holds one ``grpc.aio`` channel; any number of evaluate/endorse/submit/commit-status calls
can be in flight on it at once (``asyncio.gather`` them). Channels, contracts and event streams hang off it::

    async with Gateway(endpoint, signing.identity, signing.signer) as gateway:
        contract = gateway.network("gxchannel").contract("gxtv3")
        result = await contract.submit("TokenomicsContract:Mint", "acct-1", "100", "airdrop")

The fine-grained steps (``contract.prepare`` → ``network.submit`` → ``network.commit_status``) are each
retriable on their own; see :mod:`gxlib.fabric.network` and :mod:`gxlib.fabric.contract`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import grpc
from fabric_protos.gateway import gateway_pb2, gateway_pb2_grpc

from gxlib.fabric.commit import CommitStatus
from gxlib.fabric.commits import CommitStreamSettings, CommitWatcher
from gxlib.fabric.connection import ConnectionSettingsError, PeerEndpoint, peer_endpoints_from_environment
from gxlib.fabric.errors import error_from_rpc
from gxlib.fabric.identity import Identity, Signing, identity_from_environment, load_environment
from gxlib.fabric.network import Network
from gxlib.fabric.proposal import SignedProposal
from gxlib.fabric.signer import Signer, digest
from gxlib.fabric.transaction import PreparedTransaction


@dataclass(frozen=True)
class Timeouts:
    """Deadlines (seconds) per kind of Gateway call."""

    evaluate: float = 10.0
    endorse: float = 30.0
    submit: float = 10.0
    commit_status: float = 60.0


class Gateway:
    """A Gateway connection: endpoint + identity + signer. Open lazily; close with ``await close()``."""

    def __init__(self, endpoint: PeerEndpoint, identity: Identity, signer: Signer, *,
                 timeouts: Timeouts | None = None, commit_stream: CommitStreamSettings | None = None) -> None:
        self.endpoint = endpoint
        self.identity = identity
        self.signer = signer
        self.timeouts = timeouts or Timeouts()
        self.commit_stream = commit_stream or CommitStreamSettings()
        self._channel: grpc.aio.Channel | None = None
        self._stub: gateway_pb2_grpc.GatewayStub | None = None
        self._watchers: dict[str, CommitWatcher] = {}

    @classmethod
    def for_signing(cls, endpoint: PeerEndpoint, signing: Signing, *, timeouts: Timeouts | None = None,
                    commit_stream: CommitStreamSettings | None = None) -> Gateway:
        """A Gateway acting as a loaded identity (see :func:`~gxlib.fabric.identity.identity_from_environment`)."""
        return cls(endpoint, signing.identity, signing.signer, timeouts=timeouts, commit_stream=commit_stream)

    @classmethod
    def from_environment(cls, environment: str | Path | dict[str, Any], identity: str, org: str | None = None,
                         *, timeouts: Timeouts | None = None,
                         commit_stream: CommitStreamSettings | None = None) -> Gateway:
        """A Gateway for the devnet environment (``gx devnet env --json``) acting as ``identity`` (full name, or
        ``super_admin``/``service``/``admin:org1``) through the peer of ``org`` (default: the identity's org)."""
        signing = identity_from_environment(environment, identity)
        env = load_environment(environment)
        org = org or next(i["org"] for i in env["identities"] if i["name"] == signing.name)
        endpoints = peer_endpoints_from_environment(env)
        if org not in endpoints:
            raise ConnectionSettingsError(f"no peer for org {org!r}; peers: {', '.join(endpoints)}")
        return cls(endpoints[org], signing.identity, signing.signer, timeouts=timeouts, commit_stream=commit_stream)

    # --- connection ------------------------------------------------------------------------------------------
    @property
    def channel(self) -> grpc.aio.Channel:
        """The gRPC channel (created on first use, inside the running event loop)."""
        if self._channel is None:
            self._channel = self.endpoint.open_channel()
        return self._channel

    @property
    def _gateway(self) -> gateway_pb2_grpc.GatewayStub:
        if self._stub is None:
            self._stub = gateway_pb2_grpc.GatewayStub(self.channel)
        return self._stub

    def _watcher(self, channel: str) -> CommitWatcher | None:
        if not self.commit_stream.enabled:
            return None
        watcher = self._watchers.get(channel)
        if watcher is None:
            watcher = self._watchers[channel] = CommitWatcher(self.channel, self.endpoint, channel, self.identity,
                                                              self.signer, self.commit_stream)
        return watcher

    async def close(self) -> None:
        watchers, self._watchers = list(self._watchers.values()), {}
        for watcher in watchers:
            await watcher.close()
        if self._channel is not None:
            await self._channel.close()
            self._channel = None
            self._stub = None

    async def __aenter__(self) -> Gateway:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    def commit_stream_live(self, channel: str) -> bool:
        """True while commit statuses on ``channel`` come from its block stream (it opens on the first submit)."""
        watcher = self._watchers.get(channel)
        return watcher is not None and watcher.live

    def network(self, name: str) -> Network:
        """The channel called ``name``."""
        return Network(self, name)

    # --- the four Gateway RPCs ---------------------------------------------------------------------------------
    async def evaluate(self, proposal: SignedProposal, target_organizations: Sequence[str] = ()) -> bytes:
        """Run a proposal on one peer without ordering it; returns the chaincode's payload."""
        request = gateway_pb2.EvaluateRequest(transaction_id=proposal.tx_id, channel_id=proposal.channel,
                                              proposed_transaction=proposal.to_proto(),
                                              target_organizations=list(target_organizations))
        try:
            response = await self._gateway.Evaluate(request, timeout=self.timeouts.evaluate)
        except grpc.aio.AioRpcError as exc:
            raise error_from_rpc(exc, "evaluate", endpoint=self.endpoint.address, tx_id=proposal.tx_id) from exc
        return bytes(response.result.payload)

    async def endorse(self, proposal: SignedProposal,
                      endorsing_organizations: Sequence[str] = ()) -> PreparedTransaction:
        """Collect endorsements for a proposal and sign the resulting transaction (not yet sent to the orderer)."""
        request = gateway_pb2.EndorseRequest(transaction_id=proposal.tx_id, channel_id=proposal.channel,
                                             proposed_transaction=proposal.to_proto(),
                                             endorsing_organizations=list(endorsing_organizations))
        try:
            response = await self._gateway.Endorse(request, timeout=self.timeouts.endorse)
        except grpc.aio.AioRpcError as exc:
            raise error_from_rpc(exc, "endorse", endpoint=self.endpoint.address, tx_id=proposal.tx_id) from exc
        return PreparedTransaction.sign(response.prepared_transaction, self.signer, tx_id=proposal.tx_id,
                                        channel=proposal.channel)

    async def submit(self, transaction: PreparedTransaction) -> None:
        """Send a signed transaction to the ordering service. Safe to repeat with the same envelope."""
        tx_id, channel = transaction.tx_id, transaction.channel
        request = gateway_pb2.SubmitRequest(transaction_id=tx_id, channel_id=channel,
                                            prepared_transaction=transaction.to_proto())
        # Watched from before it is sent, so the block that commits it cannot pass unseen.
        watcher = self._watcher(channel)
        if watcher is not None:
            watcher.track(tx_id)
        try:
            await self._gateway.Submit(request, timeout=self.timeouts.submit)
        except grpc.aio.AioRpcError as exc:
            if watcher is not None:
                watcher.forget(tx_id)
            raise error_from_rpc(exc, "submit", endpoint=self.endpoint.address, tx_id=tx_id) from exc

    async def commit_status(self, channel: str, tx_id: str, timeout: float | None = None) -> CommitStatus:
        """Wait until ``tx_id`` is committed on the Gateway peer and return its validation code and block.

        The peer waits for a transaction it has not seen yet, so this raises
        :class:`~gxlib.fabric.errors.DeadlineExceededError` after ``timeout`` for an unknown ID.

        A VALID transaction sent through this Gateway is usually answered from the channel's block stream
        (:mod:`gxlib.fabric.commits`) without a call of its own; anything else — not tracked, the stream broken or
        behind, an invalidation code — is asked of the peer, whose answer is authoritative, within the same deadline.
        """
        deadline = self.timeouts.commit_status if timeout is None else timeout
        watcher = self._watchers.get(channel)
        if watcher is not None:
            began = time.monotonic()
            reserve = min(self.commit_stream.final_check_s, deadline / 2)
            streamed = await watcher.wait(tx_id, deadline - reserve)
            if streamed is not None and streamed.successful:
                return streamed
            deadline = max(deadline - (time.monotonic() - began), reserve)
        return await self._commit_status_call(channel, tx_id, deadline)

    async def _commit_status_call(self, channel: str, tx_id: str, timeout: float) -> CommitStatus:
        request = gateway_pb2.CommitStatusRequest(transaction_id=tx_id, channel_id=channel,
                                                  identity=self.identity.serialize()).SerializeToString()
        signed = gateway_pb2.SignedCommitStatusRequest(request=request, signature=self.signer.sign(digest(request)))
        try:
            response = await self._gateway.CommitStatus(signed, timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            raise error_from_rpc(exc, "commit status", endpoint=self.endpoint.address, tx_id=tx_id) from exc
        return CommitStatus(tx_id, int(response.result), int(response.block_number))
