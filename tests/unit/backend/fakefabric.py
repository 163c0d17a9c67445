"""A fake Fabric behind the TxGateway protocol, with a ledger that enforces Fabric's once-per-tx-ID rule and
hooks to inject faults (transport failures, MVCC invalidation, endorsement rejection, crashes)."""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from gxlib.backend.txgateway import (
    EndorsementRejectedError,
    PreparedTx,
    TransportError,
    TxRequest,
    TxState,
    TxStatus,
)


class Crash(BaseException):
    """The submitter process dies here (BaseException: no handler in the submitter may swallow it)."""


Fault = Callable[[], None]


def transport_down() -> None:
    raise TransportError("connection refused", code="UNAVAILABLE")


def deadline() -> None:
    raise TransportError("deadline exceeded", code="DEADLINE_EXCEEDED")


def crash() -> None:
    raise Crash()


@dataclass
class LedgerTx:
    tx_id: str
    command_id: str
    function: str
    args: tuple[str, ...]
    block_number: int
    code: str


@dataclass
class FakeFabric:
    """Implements TxGateway. ``faults[step]`` is a queue of faults raised before the step runs
    (steps: prepare, submit, status, after_submit, after_commit)."""

    reject: Callable[[TxRequest], str | None] = lambda request: None
    mvcc_next: int = 0  # the next N submitted transactions are invalidated with MVCC_READ_CONFLICT
    unknown_status_next: int = 0  # the next N status answers are UNKNOWN (the peer has not seen the block yet)
    submit_latency_s: float = 0.0
    faults: dict[str, list[Fault]] = field(default_factory=lambda: defaultdict(list))
    ledger: dict[str, LedgerTx] = field(default_factory=dict)  # tx_id → first committed tx with that ID
    calls: Counter[str] = field(default_factory=Counter)
    duplicate_submissions: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    _blocks: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _prepared: dict[str, TxRequest] = field(default_factory=dict)

    def _fault(self, step: str) -> None:
        queue = self.faults[step]
        if queue:
            queue.pop(0)()

    async def prepare(self, request: TxRequest) -> PreparedTx:
        self.calls["prepare"] += 1
        self._fault("prepare")
        message = self.reject(request)
        if message is not None:
            raise EndorsementRejectedError(message, command_id=request.command_id)
        tx_id = uuid.uuid4().hex
        self._prepared[tx_id] = request
        envelope = json.dumps({"tx_id": tx_id, "command_id": request.command_id, "function": request.function,
                               "args": list(request.args), "identity": request.identity.value}).encode()
        return PreparedTx(tx_id, envelope)

    async def submit(self, prepared: PreparedTx) -> None:
        self.calls["submit"] += 1
        self._fault("submit")
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.submit_latency_s:
                await asyncio.sleep(self.submit_latency_s)
        finally:
            self.in_flight -= 1
        body = json.loads(prepared.envelope)
        assert body["tx_id"] == prepared.tx_id
        if prepared.tx_id in self.ledger:
            self.duplicate_submissions += 1  # Fabric marks the copy DUPLICATE_TXID; the first one stands
        else:
            code = "VALID"
            if self.mvcc_next > 0:
                self.mvcc_next -= 1
                code = "MVCC_READ_CONFLICT"
            self.ledger[prepared.tx_id] = LedgerTx(prepared.tx_id, body["command_id"], body["function"],
                                                   tuple(body["args"]), next(self._blocks), code)
        self._fault("after_submit")

    async def status(self, tx_id: str, timeout_s: float) -> TxStatus:
        self.calls["status"] += 1
        self._fault("status")
        tx = self.ledger.get(tx_id)
        if tx is None or self.unknown_status_next > 0:
            self.unknown_status_next = max(0, self.unknown_status_next - 1)
            return TxStatus(tx_id, TxState.UNKNOWN)
        self._fault("after_commit")
        if tx.code == "VALID":
            return TxStatus(tx_id, TxState.COMMITTED, tx.block_number, "VALID")
        return TxStatus(tx_id, TxState.INVALID, tx.block_number, tx.code)

    def valid_effects(self) -> Counter[str]:
        """How many VALID transactions each command has on the ledger (exactly once means 1)."""
        return Counter(tx.command_id for tx in self.ledger.values() if tx.code == "VALID")
