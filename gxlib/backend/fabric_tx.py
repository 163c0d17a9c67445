"""The submitter's :class:`~gxlib.backend.txgateway.TxGateway` over gxlib's Fabric Gateway client.

One Gateway connection per Fabric identity (super admin, service), opened lazily inside the running event loop
and shared by every in-flight command. Endorsement returns the signed envelope with its tx ID (stored in the
outbox before the first submit); submit sends that stored envelope; status asks the peer by tx ID.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import grpc

from gxlib.backend.commands import FabricIdentity
from gxlib.backend.txgateway import (
    EndorsementMismatchError,
    EndorsementRejectedError,
    PreparedTx,
    TransportError,
    TxRequest,
    TxState,
    TxStatus,
)
from gxlib.fabric import errors as fabric_errors
from gxlib.fabric.commit import validation_code_name
from gxlib.fabric.gateway import Gateway, Timeouts
from gxlib.fabric.transaction import PreparedTransaction

# Which devnet identity (see `gx devnet env --json` roles) signs for each of the submitter's identities.
DEFAULT_IDENTITIES: Mapping[FabricIdentity, str] = {
    FabricIdentity.SUPER_ADMIN: "super_admin",
    FabricIdentity.SERVICE: "service",
}


def _transport(exc: fabric_errors.RpcFailure, request_id: str | None, tx_id: str | None) -> TransportError:
    code = "DEADLINE_EXCEEDED" if exc.code is grpc.StatusCode.DEADLINE_EXCEEDED else "UNAVAILABLE"
    return TransportError(exc.message.splitlines()[0], code=code, command_id=request_id, tx_id=tx_id)


class FabricTxGateway:
    """TxGateway for one channel and chaincode, signing as the devnet's identities."""

    def __init__(self, environment: dict[str, Any], channel: str, chaincode: str, *,
                 identities: Mapping[FabricIdentity, str] = DEFAULT_IDENTITIES,
                 timeouts: Timeouts | None = None) -> None:
        self.environment = environment
        self.channel = channel
        self.chaincode = chaincode
        self.identities = dict(identities)
        self.timeouts = timeouts
        self._gateways: dict[FabricIdentity, Gateway] = {}

    def _gateway(self, identity: FabricIdentity) -> Gateway:
        if identity not in self._gateways:
            self._gateways[identity] = Gateway.from_environment(self.environment, self.identities[identity],
                                                                timeouts=self.timeouts)
        return self._gateways[identity]

    async def prepare(self, request: TxRequest) -> PreparedTx:
        contract = self._gateway(request.identity).network(self.channel).contract(self.chaincode)
        proposal = contract.new_proposal(request.function, *request.args)
        try:
            transaction = await contract.endorse(proposal)
        except fabric_errors.TransportError as exc:
            raise _transport(exc, request.command_id, proposal.tx_id) from exc
        except fabric_errors.EndorseError as exc:
            if exc.payloads_differ:
                raise EndorsementMismatchError(exc.message.splitlines()[0], command_id=request.command_id,
                                               tx_id=proposal.tx_id) from exc
            if exc.chaincode_status is None:
                # No chaincode answer at all (no peer could endorse): nothing was decided, so retry later.
                raise TransportError(exc.message.splitlines()[0], code="UNAVAILABLE",
                                     command_id=request.command_id, tx_id=proposal.tx_id) from exc
            raise EndorsementRejectedError(exc.chaincode_message, command_id=request.command_id,
                                           tx_id=proposal.tx_id, status=exc.chaincode_status) from exc
        return PreparedTx(transaction.tx_id, transaction.to_bytes())

    async def submit(self, prepared: PreparedTx) -> None:
        transaction = PreparedTransaction.from_bytes(prepared.envelope)
        try:
            await self._gateway(FabricIdentity.SERVICE).network(self.channel).submit(transaction)
        except fabric_errors.RpcFailure as exc:
            # Nothing reached the ledger when submit fails; re-sending the same envelope later is safe.
            raise _transport(exc, None, prepared.tx_id) from exc

    async def status(self, tx_id: str, timeout_s: float) -> TxStatus:
        network = self._gateway(FabricIdentity.SERVICE).network(self.channel)
        try:
            status = await network.commit_status(tx_id, timeout=timeout_s)
        except fabric_errors.DeadlineExceededError:
            return TxStatus(tx_id, TxState.UNKNOWN)
        except fabric_errors.RpcFailure as exc:
            raise _transport(exc, None, tx_id) from exc
        code = validation_code_name(status.code)
        state = TxState.COMMITTED if status.successful else TxState.INVALID
        return TxStatus(tx_id, state, status.block_number, code)

    async def close(self) -> None:
        for gateway in self._gateways.values():
            await gateway.close()
        self._gateways.clear()
