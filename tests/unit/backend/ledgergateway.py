"""A TxGateway whose 'Fabric' is the real GX chaincode on an in-memory ledger, and an EventSource over the
events it commits: the whole command → ledger → event → read model path in one process."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

from gxlib.backend.commands import FabricIdentity
from gxlib.backend.eventsource import ChaincodeEvent, Checkpoint
from gxlib.backend.txgateway import EndorsementRejectedError, PreparedTx, TxRequest, TxState, TxStatus
from gxshim.inmemory import InMemoryLedger


class LedgerGateway:
    """prepare = simulate on the chaincode (a chaincode error is an endorsement rejection); submit = commit,
    once per tx ID; status = by tx ID. Each committed tx is its own block."""

    def __init__(self, ledger: InMemoryLedger, callers: Any) -> None:
        self.ledger = ledger
        self.callers = callers
        self.committed: dict[str, int] = {}  # tx ID → block number
        self.events: list[ChaincodeEvent] = []
        self.submits = 0

    def _caller(self, identity: FabricIdentity) -> Any:
        return self.callers.super_admin if identity is FabricIdentity.SUPER_ADMIN else self.callers.service

    async def prepare(self, request: TxRequest) -> PreparedTx:
        simulated = self.ledger.evaluate(self._caller(request.identity), request.function, *request.args)
        if not simulated.ok:
            raise EndorsementRejectedError(simulated.response.message, command_id=request.command_id)
        tx_id = uuid.uuid4().hex
        envelope = json.dumps({"function": request.function, "args": list(request.args),
                               "identity": request.identity.value}).encode()
        return PreparedTx(tx_id, envelope)

    async def submit(self, prepared: PreparedTx) -> None:
        self.submits += 1
        if prepared.tx_id in self.committed:
            return  # DUPLICATE_TXID: the first one stands
        body = json.loads(prepared.envelope)
        outcome = self.ledger.submit(self._caller(FabricIdentity(body["identity"])), body["function"], *body["args"])
        block = len(self.committed) + 1
        self.committed[prepared.tx_id] = block
        if outcome.ok and outcome.event_name and outcome.event_payload is not None:
            self.events.append(ChaincodeEvent(block, 0, prepared.tx_id, outcome.event_name, outcome.event_payload))

    async def status(self, tx_id: str, timeout_s: float) -> TxStatus:
        block = self.committed.get(tx_id)
        if block is None:
            return TxStatus(tx_id, TxState.UNKNOWN)
        return TxStatus(tx_id, TxState.COMMITTED, block, "VALID")

    async def events_after(self, after: Checkpoint | None) -> AsyncIterator[ChaincodeEvent]:
        for event in list(self.events):
            if after is None or event.position > after.position:
                yield event
